"""Every solver on every problem family, tiny, in full batch and on
minibatches: the runs that tests/test_device_placement.py and
tests/test_host_reads.py go through.

Each solver runs at its defaults (AmIGO once per inner solver), but for
the few parameters that would keep a branch out of reach within a few
iterations (``REACH``): LancBiO's subspace grows to its largest dimension
and restarts within two iterations, SRBA and VRBO make a full pass every
second iteration, ITD truncates its back-propagation, and the inner and
Neumann loops are short, so that every line of a step runs in a window of
four iterations.
"""
import pytest
from benchopt.utils.parametrized_name_mixin import product_param
from benchopt.utils.run_context import RunContext
from conftest import (BENCHMARK, small_hypercleaning_problem,
                      small_regsel_problem)

from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.quadratic_samples import SampleQuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem
from benchmark_utils.testing.host_reads import solver_reads_spec

#: Samples per minibatch: 8 of the 20 to 40 training samples of the tiny
#: problems below, so that an epoch ends within a window and its last
#: batch is partial.
BATCH_SIZE = 8
#: Parameters that bring every branch of a step within a few iterations.
REACH = {
    "LancBiO": dict(subspace_dim=1, max_subspace_dim=2, subspace_growth=2.0,
                    growth_every=1),
    "SRBA": dict(period=2),
    "VRBO": dict(period=2, n_inner_steps=2, n_neumann_steps=2),
    "ITD": dict(n_inner_steps=3, n_backprop_steps=2),
    "stocBiO": dict(n_inner_steps=2, n_neumann_steps=2),
    "BSA": dict(n_inner_steps=2, n_neumann_steps=2),
    "STABLE": dict(n_neumann_steps=2),
    "MRBO": dict(n_neumann_steps=2),
    "SUSTAIN": dict(n_neumann_steps=2),
    "TTSA": dict(n_neumann_steps=2),
    "F2SA": dict(n_inner_steps=2),
    "BOME": dict(n_inner_steps=2),
}


#: The problem families, and those whose f and g are means over samples.
FAMILIES = ("quadratic", "quadratic_samples", "synthetic", "hypercleaning",
            "regsel_dense", "regsel_sparse")
WITH_SAMPLES = ("quadratic_samples", "hypercleaning", "regsel_dense",
                "regsel_sparse")


def problem_families():
    """One tiny problem of each family: name -> problem (on the CPU)."""
    return {
        "quadratic": QuadraticProblem(dim_x=4, dim_y=6, kappa=10.0, seed=0),
        "quadratic_samples": SampleQuadraticProblem(
            dim_x=4, dim_y=6, n_train=20, n_val=12, kappa=10.0, seed=0),
        "synthetic": SyntheticProblem(n=8, kappa=10.0, seed=0),
        "hypercleaning": small_hypercleaning_problem(),
        # Two classes (one column, the logistic loss) dense, three classes
        # (the cross-entropy) sparse.
        "regsel_dense": small_regsel_problem(2, dense=True),
        "regsel_sparse": small_regsel_problem(3),
    }


def solver_cases():
    """``pytest.param``s of (problem family, solver name, parameters):
    every solver instance at its defaults (with :data:`REACH`), in full
    batch on every family and on minibatches of :data:`BATCH_SIZE` on
    those with samples, for a solver that has a minibatch version
    (``SolverReads.minibatch``: all but AID-exact)."""
    cases = []
    for solver_class in sorted(BENCHMARK.get_solvers(),
                               key=lambda s: s.name.lower()):
        for defaults in product_param(solver_class.parameters):
            params = {**defaults, **REACH.get(solver_class.name, {})}
            variant = ([defaults["inner_solver"]] if "inner_solver"
                       in defaults else [])
            for family in FAMILIES:
                batch_sizes = ["full"]
                if family in WITH_SAMPLES and solver_reads_spec(
                        solver_class.name).minibatch:
                    batch_sizes.append(BATCH_SIZE)
                for batch_size in batch_sizes:
                    label = "-".join([family, solver_class.name, *variant,
                                      str(batch_size)])
                    cases.append(pytest.param(
                        family, solver_class.name,
                        {**params, "batch_size": batch_size}, id=label))
    return cases


def set_up_solver(name, params, objective):
    """Solver ``name`` with ``params``, set up on ``objective`` as
    benchopt's runner sets it up (repetition 0, seed 0)."""
    solver = next(s for s in BENCHMARK.get_solvers()
                  if s.name == name).get_instance(**params)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    return solver


class Iterations:
    """A callback that lets ``n`` outer iterations run."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self):
        self.calls += 1
        return self.calls <= self.n
