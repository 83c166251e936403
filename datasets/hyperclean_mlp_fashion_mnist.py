from benchmark_utils.data.mnist_family import TorchvisionMLPHyperCleaning


class Dataset(TorchvisionMLPHyperCleaning):
    """Data hyper-cleaning of a multilayer perceptron (784-300-10, tanh) on
    Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): the split, corruption
    and sample weights of hyperclean_fashion_mnist, a lower level that is
    not convex. Downloaded by torchvision (`benchopt prepare . -d
    hyperclean_mlp_fashion_mnist`)."""

    name = "hyperclean_mlp_fashion_mnist"
    torchvision_name = "FashionMNIST"
    requirements = ["pip::torchvision"]
    parameters = {
        "corruption_rate": [0.5, 0.8],
        "n_train, n_val": [(5000, 5000)],
        "n_hidden": [300],
        "reg": [0.01],
    }
    test_parameters = {
        "corruption_rate": [0.5],
        "n_train, n_val": [(20, 10)],
        "n_hidden": [10],
    }
