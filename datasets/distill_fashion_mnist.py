from benchmark_utils.data.mnist_family import TorchvisionDistillation


class Dataset(TorchvisionDistillation):
    """Dataset distillation on Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017):
    learnt images (one per class by default, starting from real ones) on
    which a classifier (the 784-300-10 perceptron, or the linear softmax) is
    trained, judged by its loss on the real training images. Downloaded by
    torchvision (`benchopt prepare . -d distill_fashion_mnist`)."""

    name = "distill_fashion_mnist"
    torchvision_name = "FashionMNIST"
    requirements = ["pip::torchvision"]
    parameters = {
        "n_train": [60000],
        "images_per_class": [1],
        "init": ["real"],
        "model": ["mlp"],
        "n_hidden": [300],
        "reg": [0.01],
    }
    test_parameters = {
        "n_train": [40],
        "init": ["noise"],
        "n_hidden": [10],
    }
