from benchmark_utils.data.mnist_family import TorchvisionHyperCleaning


class Dataset(TorchvisionHyperCleaning):
    """Data hyper-cleaning on Fashion-MNIST (Xiao, Rasul and Vollgraf,
    2017): a linear classifier trained on partly corrupted labels, one
    learnt weight per training sample (LancBiO paper, Section 4.2).
    Downloaded by torchvision
    (`benchopt prepare . -d hyperclean_fashion_mnist`)."""

    name = "hyperclean_fashion_mnist"
    torchvision_name = "FashionMNIST"
    requirements = ["pip::torchvision"]
    parameters = {
        "corruption_rate": [0.5, 0.8],
        "n_train, n_val": [(5000, 5000)],
        "reg": [0.01],
    }
    test_parameters = {
        "corruption_rate": [0.5],
        "n_train, n_val": [(20, 10)],
    }
