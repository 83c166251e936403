from benchmark_utils.data.mnist_family import TorchvisionMLPHyperCleaning


class Dataset(TorchvisionMLPHyperCleaning):
    """Data hyper-cleaning of a multilayer perceptron (784-300-10, tanh) on
    MNIST (LeCun, Cortes and Burges): the split, corruption and sample
    weights of hyperclean_mnist, a lower level that is not convex.
    Downloaded by torchvision (`benchopt prepare . -d
    hyperclean_mlp_mnist`)."""

    name = "hyperclean_mlp_mnist"
    torchvision_name = "MNIST"
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
