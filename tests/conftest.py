"""Shared helpers of the test suite.

The benchmark is loaded once through benchopt (``Benchmark``), which also
registers ``benchmark_utils``; solvers and datasets are reached by name, as
benchopt's own runner reaches them.
"""
from pathlib import Path

import pytest
import torch
from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = Benchmark(ROOT)

from benchmark_utils.problems.hypercleaning import (  # noqa: E402
    build_hypercleaning_problem)
from benchmark_utils.problems.quadratic import QuadraticProblem  # noqa: E402
from benchmark_utils.problems.quadratic_samples import (  # noqa: E402
    SampleQuadraticProblem)
from benchmark_utils.problems.regsel import build_regsel_problem  # noqa: E402
# benchmark_utils is registered by Benchmark(...) above.
from benchmark_utils.testing.libsvm_files import random_documents  # noqa: E402

torch.set_default_dtype(torch.float64)


def get_solver_class(name):
    return next(s for s in BENCHMARK.get_solvers() if s.name == name)


def get_dataset_class(name):
    return next(d for d in BENCHMARK.get_datasets() if d.name == name)


def make_objective(problem, **params):
    """The benchmark's Objective on ``problem`` (CPU and reverse-mode HVPs
    unless told: 'auto' would time both modes in every test)."""
    params.setdefault("device", "cpu")
    params.setdefault("hvp_mode", "reverse")
    objective = BENCHMARK.get_benchmark_objective().get_instance(**params)
    objective.set_data(problem)
    return objective


def small_regsel_problem(n_classes, seed=0, n_features=40, dense=False):
    """A regularization-selection problem on 60 random documents (30 / 15 /
    15 split, unit-norm rows), its features sparse unless ``dense``."""
    counts, classes = random_documents(60, n_features, n_classes, 12, seed)
    features = counts.toarray() if dense else counts
    return build_regsel_problem([(features, classes + 1.0, "random")], 30,
                                15, 15, seed=seed, normalize_rows=True)


def small_hypercleaning_problem(seed=0):
    """A hyper-cleaning problem on 80 random 6 x 6 images (40 training, 20
    validation and 20 test samples, half of the training labels
    corrupted)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (80, 6, 6), generator=generator)
    labels = torch.randint(0, 10, (80,), generator=generator)
    return build_hypercleaning_problem(
        (images, labels), None, (0.3, 0.3), n_train=40, n_val=20,
        corruption_rate=0.5, reg=0.01, seed=seed, n_test=20)


def point_near_start(problem, seed):
    """(x, y, v): x at a standard normal distance from the start, y and v
    standard normal, from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    x = problem.x0 + torch.randn(problem.x0.shape, generator=generator)
    y, v = (torch.randn(problem.y0.shape, generator=generator)
            for _ in range(2))
    return x, y, v


class IterationBudget:
    """A stand-in for benchopt's callback: lets ``n_iter`` iterations run,
    and records the solver's result at each call if given the solver (at
    the calls numbered in ``record_at`` only, if given: the k-th call is
    the point after k iterations)."""

    def __init__(self, n_iter, solver=None, record_at=None):
        self.n_iter, self.solver, self.record_at = n_iter, solver, record_at
        self.calls, self.history = 0, []

    def __call__(self):
        if self.solver is not None and (self.record_at is None
                                        or self.calls in self.record_at):
            result = self.solver.get_result()
            self.history.append({k: (v.clone() if torch.is_tensor(v) else v)
                                 for k, v in result.items()})
        self.calls += 1
        return self.calls <= self.n_iter


def run_solver(name, problem, n_iter, objective=None, record=False,
               **params):
    """Run solver ``name`` for ``n_iter`` outer iterations on ``problem``,
    its results recorded in ``callback.history`` if ``record`` is True (at
    every point) or a collection of iteration numbers (at those points).

    Returns (solver, objective, callback); ``objective.evaluate_result(
    **solver.get_result())`` gives the metrics at the end.
    """
    objective = objective or make_objective(problem)
    solver = get_solver_class(name).get_instance(**params)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    callback = IterationBudget(
        n_iter, solver if record is not False else None,
        None if record is True else record)
    solver.run(callback)
    return solver, objective, callback


def assert_counts_per_iteration(problem, name, params, per_iteration,
                                n_iter, first=None):
    """Run ``n_iter`` iterations of solver ``name``: its counts must be
    exactly ``n_iter`` times ``per_iteration`` (a dict of counts), or
    ``first`` plus ``n_iter - 1`` times it for a method whose first
    iteration differs."""
    solver, _, _ = run_solver(name, problem, n_iter, **params)
    first = per_iteration if first is None else first
    assert solver.get_result()["counts"] == {
        key: first[key] + (n_iter - 1) * value
        for key, value in per_iteration.items()}
    assert solver.get_result()["n_outer"] == n_iter


def hypergrad_norm(solver, objective):
    """||grad phi|| at the solver's current x."""
    return objective.evaluate_result(**solver.get_result())["hypergrad_norm"]


def hypergrad_ratio(solver, objective):
    """||grad phi|| at the solver's x over its value at the starting point."""
    start = objective.evaluate_result(**objective.get_one_result())
    return hypergrad_norm(solver, objective) / start["hypergrad_norm"]


def spd_matrix(n, condition, seed):
    """A fixed SPD matrix with eigenvalues linspace(1, condition, n), and a
    right-hand side."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen))
    eigenvalues = torch.linspace(1, condition, n)
    return (q * eigenvalues) @ q.T, torch.randn(n, generator=gen)


@pytest.fixture(scope="module")
def quadratic():
    """The small, well-conditioned quadratic the solver tests run on (a
    test module may define its own)."""
    return QuadraticProblem(dim_x=10, dim_y=20, kappa=10.0, seed=0)


@pytest.fixture(scope="session")
def sample_quadratic():
    """A small quadratic that is a mean over 50 training and 30 validation
    samples: what minibatch solvers run on in the tests."""
    return SampleQuadraticProblem(dim_x=10, dim_y=20, n_train=50, n_val=30,
                                  kappa=10.0, seed=0)


@pytest.fixture
def benchmark():
    return BENCHMARK


# -- long checks ------------------------------------------------------------
# The README's test command keeps the suite under 10 minutes on 2 cores; the
# checks marked `long` (whole benchopt runs and end-to-end scripts that other
# tests cover in parts) run with `python -m pytest -q tests --long`.

def pytest_addoption(parser):
    parser.addoption("--long", action="store_true",
                     help="also run the checks marked long")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "long: a long check, run with --long (README)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="a long check: run with --long")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
