from benchmark_utils.data import BilevelDataset
from benchmark_utils.problems.quadratic_samples import SampleQuadraticProblem


class Dataset(BilevelDataset):
    """Quadratic bilevel problem whose g and f are means over training and
    validation samples, with closed-form y*(x), v*(x) and hypergradient:
    the sanity check of minibatch methods."""

    name = "quadratic_samples"
    parameters = {
        "dim_x, dim_y": [(50, 100)],
        "n_train, n_val": [(1000, 500)],
        "kappa": [100.0],
    }
    test_parameters = {
        "dim_x, dim_y": [(10, 20)],
        "n_train, n_val": [(50, 30)],
        "kappa": [10.0],
    }

    def build_problem(self):
        return SampleQuadraticProblem(
            dim_x=self.dim_x, dim_y=self.dim_y, n_train=self.n_train,
            n_val=self.n_val, kappa=self.kappa,
            seed=self.get_seed(use_repetition=True))
