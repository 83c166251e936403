"""LancBiO's dynamic Lanczos process: 1 + 1/m HVPs per iteration for a fixed
subspace dimension m, restarts that follow the growth schedule of m, and
the warm-up steps after each restart that build the subspace without
moving x; the subspace schedule taken from the problem, and the
orthogonality safeguard that stays silent where the Hessian changes slowly.
(Its counts for m = 1, convergence, parameter checks and
reproducibility are rows of the table in test_solvers.py.)"""
import math

import pytest
import torch
from conftest import run_solver

from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.problems.hypercleaning import HyperCleaningProblem
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.regsel import RegSelProblem
from benchmark_utils.problems.synthetic import SyntheticProblem


@pytest.mark.parametrize("m, n_iter", [(1, 7), (3, 10), (4, 12), (5, 23)])
def test_lancbio_hvp_count_is_one_plus_one_over_m(quadratic, m, n_iter):
    # Fixed m: one HVP per iteration for the Lanczos step, one more at each
    # restart (iterations 0, m, 2m, ...).
    solver, _, _ = run_solver(
        "LancBiO", quadratic, n_iter, n_inner_steps=2,
        subspace_dim=m, max_subspace_dim=m, subspace_growth=1.0)
    counts = solver.get_result()["counts"]
    assert counts["n_hvp"] == n_iter + math.ceil(n_iter / m)
    assert counts["n_cross"] == n_iter
    assert counts["n_grad"] == n_iter * (2 + 1)
    assert solver.get_result()["n_outer"] == n_iter


def test_lancbio_counts_follow_the_growth_schedule(quadratic):
    # m starts at 1 and becomes ceil(1.5 m) every 3 iterations: m = 1 for
    # iterations 0-2, 2 for 3-5, 3 for 6-8, 5 from 9 on (capped at 5).
    n_iter = 20
    solver, _, _ = run_solver(
        "LancBiO", quadratic, n_iter, n_inner_steps=0,
        subspace_dim=1, max_subspace_dim=5, subspace_growth=1.5,
        growth_every=3)
    # A restart happens when the basis already holds m vectors at the start
    # of an iteration: at 0, 1, 2 (m=1), 4 (m=2), 7 (m=3), 12, 17 (m=5).
    m, dim, restarts = 1, None, 0
    for k in range(n_iter):
        if dim is None or dim >= m:
            restarts, dim = restarts + 1, 0
        dim += 1
        if (k + 1) % 3 == 0:
            m = min(math.ceil(1.5 * m), 5)
    assert restarts == 7
    assert solver.get_result()["counts"]["n_hvp"] == n_iter + restarts


def test_lancbio_warmup_skips_x_updates_after_each_restart(quadratic):
    params = dict(subspace_dim=4, max_subspace_dim=4, subspace_growth=1.0,
                  n_warmup_steps=2)
    solver, _, callback = run_solver("LancBiO", quadratic, 8, record=True,
                                     **params)
    xs = [entry["x"] for entry in callback.history]
    moved = [not torch.equal(xs[k], xs[k + 1]) for k in range(8)]
    # Iterations 0-1 and 4-5 only build the subspace.
    assert moved == [False, False, True, True, False, False, True, True]
    assert solver.get_result()["counts"]["n_cross"] == 4


def test_auto_schedule_is_the_papers_for_the_problem():
    # The LancBiO paper's: 80 / 1.1 / 20 on its synthetic problem (and the
    # default), 10 / 1.3 / 50 on hyper-cleaning (and regularization
    # selection, for which it gives none).
    assert BilevelProblem.subspace_schedule == (80, 1.1, 20)
    assert HyperCleaningProblem.subspace_schedule == (10, 1.3, 50)
    assert RegSelProblem.subspace_schedule == (10, 1.3, 50)
    problem = QuadraticProblem(dim_x=10, dim_y=20, kappa=10.0, seed=0)
    problem.subspace_schedule = (6, 1.5, 3)
    solver, _, _ = run_solver("LancBiO", problem, 1)
    assert solver.schedule == [6, 1.5, 3]
    # A value set by the user wins over the problem's.
    solver, _, _ = run_solver("LancBiO", problem, 1, max_subspace_dim=7)
    assert solver.schedule == [7, 1.5, 3]


def test_safeguard_never_fires_on_the_synthetic_problem():
    # At the dataset's default size (n = 1,000, kappa = 1e5) its Hessian
    # changes slowly with x: over 400 iterations, m growing every 4 to 80,
    # the default run equals the one without the orthogonality check, bit
    # for bit. (A basis of 80 vectors in dimension 100 would lose
    # orthogonality to round-off alone, as the classical process does once
    # its Ritz values converge.)
    curves = []
    for tol in (1e-2, None):
        problem = SyntheticProblem(n=1000, kappa=1e5, seed=3)
        _, _, callback = run_solver("LancBiO", problem, 400, record=True,
                                    orthogonality_tol=tol,
                                    growth_every=4)
        curves.append(torch.stack([entry["x"] for entry in callback.history]))
    assert torch.equal(curves[0], curves[1])
