from benchmark_utils.data import BilevelDataset
from benchmark_utils.problems.synthetic import SyntheticProblem


class Dataset(BilevelDataset):
    """The LancBiO paper's synthetic problem (Section 4.1): an ill-conditioned
    lower level (condition number about kappa) with trigonometric and
    log-sum-exp couplings between x and y."""

    name = "synthetic"
    parameters = {
        "n": [1000],
        "kappa": [1e5],
    }
    test_parameters = {"n": [50], "kappa": [100.0]}

    def build_problem(self):
        return SyntheticProblem(n=self.n, kappa=self.kappa,
                                seed=self.get_seed(use_repetition=True))
