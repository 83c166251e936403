"""LancBiO, SubBiO and SOBA: convergence on the quadratic problem, exact
oracle counts, parameter checks and reproducibility."""
import math

import pytest
import torch
from conftest import (assert_counts_per_iteration, get_solver_class,
                      hypergrad_norm, hypergrad_ratio, make_objective,
                      run_solver)

from benchmark_utils.problems.synthetic import SyntheticProblem


def test_lancbio_drives_hypergradient_below_1e_6(quadratic):
    solver, objective, _ = run_solver("LancBiO", quadratic, 200)
    assert hypergrad_norm(solver, objective) < 1e-6


@pytest.mark.parametrize("name, params, n_iter", [
    ("SubBiO", {}, 200),
    ("SOBA", {"step_size_outer": 0.1}, 500),
])
def test_solver_decreases_hypergradient_100_fold(quadratic, name, params,
                                                 n_iter):
    solver, objective, _ = run_solver(name, quadratic, n_iter, **params)
    assert hypergrad_ratio(solver, objective) < 1 / 100


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


@pytest.mark.parametrize("name, params, per_iteration", [
    ("SOBA", {}, dict(n_grad=2, n_hvp=1, n_cross=1)),
    ("SubBiO", {"n_inner_steps": 3}, dict(n_grad=4, n_hvp=3, n_cross=1)),
])
def test_counts_per_iteration_are_exact(quadratic, name, params,
                                        per_iteration):
    assert_counts_per_iteration(quadratic, name, params, per_iteration,
                                n_iter=9)


def test_a_second_run_starts_from_zero(quadratic):
    objective = make_objective(quadratic)
    solver = get_solver_class("SOBA").get_instance()
    solver.set_objective(**objective.get_objective())
    for _ in range(2):
        calls = iter(range(5))
        solver.run(lambda: next(calls) < 4)
        assert solver.get_result()["counts"]["n_hvp"] == 4


@pytest.mark.parametrize("name", ["LancBiO", "SubBiO", "SOBA"])
def test_same_seed_gives_the_same_curve(name):
    curves = []
    for _ in range(2):
        problem = SyntheticProblem(n=30, kappa=100.0, seed=11)
        _, _, callback = run_solver(name, problem, 15, record=True)
        curves.append(torch.stack([entry["x"] for entry in callback.history]))
    assert torch.equal(curves[0], curves[1])


@pytest.mark.parametrize("name, params, message", [
    ("LancBiO", {"step_size_outer": 0.0}, "step_size_outer must be"),
    ("LancBiO", {"step_size_inner": -1e-3}, "step_size_inner must be"),
    ("LancBiO", {"n_inner_steps": -1}, "n_inner_steps must be an integer"),
    ("LancBiO", {"subspace_dim": 0},
     "subspace_dim must be an integer >= 1"),
    ("LancBiO", {"subspace_dim": 5, "max_subspace_dim": 2},
     "max_subspace_dim must be an integer >= 5"),
    ("LancBiO", {"subspace_growth": 0.5},
     "subspace_growth must be a finite number >= 1"),
    ("LancBiO", {"n_warmup_steps": 3}, "n_warmup_steps must be an integer "
     ">= 0 and <= 0"),
    ("LancBiO", {"growth_every": 0}, "growth_every must be an integer >= 1"),
    ("SubBiO", {"step_size_linsys": float("nan")}, "step_size_linsys must"),
    ("SubBiO", {"n_inner_steps": 1.5}, "n_inner_steps must be an integer"),
    ("SOBA", {"step_size_inner": "fast"}, "step_size_inner must be"),
])
def test_bad_parameters_are_clear_errors(quadratic, name, params, message):
    with pytest.raises(ValueError, match=message):
        run_solver(name, quadratic, 1, **params)


def test_diverging_solver_stops_with_nonfinite_iterates(quadratic):
    solver, objective, _ = run_solver("SOBA", quadratic, 300,
                                      step_size_outer=1e3)
    metrics = objective.evaluate_result(**solver.get_result())
    assert math.isnan(metrics["value"])
    assert metrics["n_outer"] == 300
