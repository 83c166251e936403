from benchopt import BaseDataset

from benchmark_utils.problems.synthetic import SyntheticProblem


class Dataset(BaseDataset):
    """The LancBiO paper's synthetic problem (Section 4.1): an ill-conditioned
    lower level (condition number about kappa) with trigonometric and
    log-sum-exp couplings between x and y."""

    name = "synthetic"
    parameters = {
        "n": [1000],
        "kappa": [1e5],
    }
    test_parameters = {"n": [50], "kappa": [100.0]}

    def get_data(self):
        problem = SyntheticProblem(n=self.n, kappa=self.kappa,
                                   seed=self.get_seed(use_repetition=True))
        return dict(problem=problem)
