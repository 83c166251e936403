"""HJFBiO, F2SA and BOME: the finite-difference products, convergence on the
quadratic problem, exact oracle counts, parameter checks and
reproducibility."""
import math

import pytest
import torch
from conftest import assert_counts_per_iteration, hypergrad_ratio, run_solver

from benchmark_utils.linalg.finite_differences import hvp_and_cross_fd
from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.synthetic import SyntheticProblem


def relative_error(estimate, exact):
    return float(torch.linalg.vector_norm(estimate - exact)
                 / torch.linalg.vector_norm(exact))


def test_finite_differences_are_second_order_and_cost_two_gradients():
    problem = SyntheticProblem(n=20, kappa=10.0, seed=1)
    oracles = Oracles(problem)
    x, y = problem.x0, problem.y0
    v = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    hvp, cross = oracles.hvp_and_cross(x, y, v)
    oracles.reset()
    errors = []
    for delta in (1e-3, 5e-4):
        hvp_fd, cross_fd = hvp_and_cross_fd(oracles, x, y, v, delta)
        errors.append((relative_error(hvp_fd, hvp),
                       relative_error(cross_fd, cross)))
    assert oracles.counts() == dict(n_grad=4, n_hvp=0, n_cross=0)
    # Central differences: halving delta divides the error by 4; at
    # delta = 1e-3 (a step of 1e-3 (1 + ||y||) ~ 6e-3) the relative errors
    # are about 5e-8 (HVP) and 9e-7 (cross), far above round-off.
    for coarse, fine in zip(*errors):
        assert 3 < coarse / fine < 5
        assert coarse < 2e-6


def test_finite_differences_of_a_zero_direction_are_zero(quadratic):
    oracles = Oracles(quadratic)
    zero = torch.zeros_like(quadratic.y0)
    hvp, cross = hvp_and_cross_fd(oracles, quadratic.x0, quadratic.y0, zero,
                                  1e-5)
    assert torch.equal(hvp, zero)
    assert torch.equal(cross, torch.zeros_like(quadratic.x0))


def test_hjfbio_follows_soba_on_the_quadratic(quadratic):
    # g is quadratic, so its central differences are exact up to round-off:
    # HJFBiO must retrace SOBA's iterates.
    curves = {}
    for name in ("HJFBiO", "SOBA"):
        _, _, callback = run_solver(name, quadratic, 50, record=True,
                                    step_size_outer=0.5)
        curves[name] = torch.stack([entry["x"] for entry in callback.history])
    torch.testing.assert_close(curves["HJFBiO"], curves["SOBA"],
                               rtol=0, atol=1e-8)


@pytest.mark.parametrize("name, params, n_iter, factor", [
    ("HJFBiO", {"step_size_outer": 0.1}, 500, 100),
    # Defaults: lambda_k = 1 + k, so lambda <= 100 here; the penalty's
    # hypergradient bias is about 0.12 / lambda relative (next test).
    ("F2SA", {}, 100, 100),
    # BOME's fixed joint step xi bounds its accuracy: lambda grows like
    # 1 / ||y - y*|| and the y part of the step, about xi lambda A, must
    # stay stable, so y stalls at a distance proportional to xi; the T
    # inner steps add a (1 - alpha mu)^T bias. With xi = 0.04 and T = 30
    # the plateau is near 1/50 of the start, reached in ~1000 iterations:
    # within 400, a 20-fold decrease (measured: 26-fold).
    ("BOME", {"n_inner_steps": 30, "step_size_joint": 0.04}, 400, 20),
])
def test_solver_decreases_hypergradient(quadratic, name, params, n_iter,
                                        factor):
    solver, objective, _ = run_solver(name, quadratic, n_iter, **params)
    assert hypergrad_ratio(solver, objective) < 1 / factor


def test_f2sa_bias_is_inverse_to_the_penalty(quadratic):
    # With lambda fixed, F2SA converges to the stationary point of the
    # penalty L*_lambda, whose hypergradient is O(1/lambda): measured
    # 1.21e-2 and 1.24e-3 relative for lambda = 10 and 100.
    biases = []
    for lam in (10.0, 100.0):
        solver, objective, _ = run_solver(
            "F2SA", quadratic, 400, n_inner_steps=3, penalty_init=lam,
            penalty_growth=0.0, penalty_max=lam)
        biases.append(hypergrad_ratio(solver, objective))
    assert 8 < biases[0] / biases[1] < 12
    assert 5e-3 < biases[0] < 5e-2


def test_f2sa_reports_the_lower_level_estimate(quadratic):
    # ``y`` is z ~ y*(x), not the penalised variable, which stays
    # ~ ||v*|| / lambda ~ 1e-2 away from y*(x).
    solver, objective, _ = run_solver("F2SA", quadratic, 100,
                                      step_size_outer=1.0)
    metrics = objective.evaluate_result(**solver.get_result())
    assert metrics["inner_gap"] < 1e-4
    assert solver.get_result()["v"] is None
    assert math.isnan(metrics["linsys_residual"])


@pytest.mark.parametrize("name, params, per_iteration", [
    ("HJFBiO", {}, dict(n_grad=4, n_hvp=0, n_cross=0)),
    # 3 T + 3: d f, d_y g at y and d_y g at z per inner step; d f, d_x g at
    # y and at z for the x step.
    ("F2SA", {"n_inner_steps": 3}, dict(n_grad=12, n_hvp=0, n_cross=0)),
    ("F2SA", {"n_inner_steps": 0}, dict(n_grad=3, n_hvp=0, n_cross=0)),
    # T + 2: d g at (x, y) (also the first inner step), T - 1 more inner
    # steps, d_x g at y_T, d f.
    ("BOME", {"n_inner_steps": 4}, dict(n_grad=6, n_hvp=0, n_cross=0)),
    ("BOME", {"n_inner_steps": 1}, dict(n_grad=3, n_hvp=0, n_cross=0)),
])
def test_counts_per_iteration_are_exact(quadratic, name, params,
                                        per_iteration):
    assert_counts_per_iteration(quadratic, name, params, per_iteration,
                                n_iter=7)


@pytest.mark.parametrize("name", ["HJFBiO", "F2SA", "BOME"])
def test_same_seed_gives_the_same_curve(name):
    curves = []
    for _ in range(2):
        problem = SyntheticProblem(n=30, kappa=100.0, seed=11)
        _, _, callback = run_solver(name, problem, 15, record=True)
        curves.append(torch.stack([entry["x"] for entry in callback.history]))
    assert torch.isfinite(curves[0]).all()
    assert torch.equal(curves[0], curves[1])


@pytest.mark.parametrize("name, params, message", [
    ("HJFBiO", {"delta": 0.0}, "delta must be a finite number > 0"),
    ("HJFBiO", {"delta": -1e-5}, "delta must be a finite number > 0"),
    ("HJFBiO", {"delta": "small"}, "delta must be"),
    ("HJFBiO", {"step_size_linsys": 0.0}, "step_size_linsys must be"),
    ("F2SA", {"penalty_init": 0.0},
     "penalty_init must be a finite number > 0"),
    ("F2SA", {"penalty_init": 10.0, "penalty_max": 5.0},
     "penalty_max must be a finite number >= 10"),
    ("F2SA", {"penalty_growth": -1.0},
     "penalty_growth must be a finite number >= 0"),
    ("F2SA", {"n_inner_steps": -1}, "n_inner_steps must be an integer >= 0"),
    ("F2SA", {"step_size_outer": -0.5}, "step_size_outer must be"),
    ("BOME", {"n_inner_steps": -1}, "n_inner_steps must be an integer >= 1"),
    ("BOME", {"n_inner_steps": 0}, "n_inner_steps must be an integer >= 1"),
    ("BOME", {"barrier_coefficient": 0.0},
     "barrier_coefficient must be a finite number > 0"),
    ("BOME", {"step_size_joint": 0.0}, "step_size_joint must be"),
    ("BOME", {"step_size_inner": float("inf")}, "step_size_inner must be"),
])
def test_bad_parameters_are_clear_errors(quadratic, name, params, message):
    with pytest.raises(ValueError, match=message):
        run_solver(name, quadratic, 1, **params)
