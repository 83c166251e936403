from benchmark_utils.data import BilevelDataset
from benchmark_utils.problems.quadratic import QuadraticProblem


class Dataset(BilevelDataset):
    """Strongly convex quadratic bilevel problem with closed-form y*(x),
    v*(x) and hypergradient: the benchmark's sanity check."""

    name = "quadratic"
    parameters = {
        "dim_x, dim_y": [(50, 100)],
        "kappa": [100.0],
    }
    test_parameters = {"dim_x, dim_y": [(10, 20)], "kappa": [10.0]}

    def build_problem(self):
        return QuadraticProblem(dim_x=self.dim_x, dim_y=self.dim_y,
                                kappa=self.kappa,
                                seed=self.get_seed(use_repetition=True))
