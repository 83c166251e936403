from benchmark_utils.data.mnist_family import TorchvisionHyperCleaning


class Dataset(TorchvisionHyperCleaning):
    """Data hyper-cleaning on Kuzushiji-MNIST (Clanuwat et al., 2018): a linear
    classifier trained on partly corrupted labels, one learnt weight per
    training sample (LancBiO paper, Section 4.2). Downloaded by torchvision
    (`benchopt prepare . -d hyperclean_kmnist`)."""

    name = "hyperclean_kmnist"
    torchvision_name = "KMNIST"
    requirements = ["pip::torchvision"]
    parameters = {
        "corruption_rate": [0.2, 0.6],
        "n_train, n_val": [(5000, 5000)],
        "reg": [0.01],
    }
    test_parameters = {
        "corruption_rate": [0.5],
        "n_train, n_val": [(20, 10)],
    }
