"""What is specific to the methods without second-order oracles: HJFBiO's
finite-difference products (second-order accurate, two gradients, exact
for a zero direction) and its agreement with SOBA on the quadratic; F2SA's
and PBGD's O(1/penalty) bias and the lower-level estimate they report as
y. (Their counts, convergence, parameter checks and reproducibility, and
BOME's, are rows of the table in test_solvers.py.)"""
import math

import torch
from conftest import hypergrad_ratio, run_solver

from benchmark_utils.linalg.finite_differences import hvp_and_cross_fd
from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.synthetic import SyntheticProblem


def relative_error(estimate, exact):
    return float(torch.linalg.vector_norm(estimate - exact)
                 / torch.linalg.vector_norm(exact))


# -- HJFBiO's finite differences -------------------------------------------


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
    assert oracles.counts() == dict(n_grad=4, n_hvp=0, n_cross=0,
                                    n_epochs=4)
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


# -- F2SA's penalty --------------------------------------------------------


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


# -- PBGD's penalty --------------------------------------------------------


def test_pbgd_bias_is_inverse_to_the_penalty(quadratic):
    # With gamma fixed, PBGD converges to the stationary point of
    # f + gamma (g - g*), whose hypergradient is O(1/gamma); x moves at a
    # speed of 1 / gamma, hence the long runs.
    biases = []
    for gamma in (3.0, 30.0):
        solver, objective, _ = run_solver(
            "PBGD", quadratic, 2500, penalty_init=gamma, penalty_growth=0.0,
            penalty_max=gamma)
        biases.append(hypergrad_ratio(solver, objective))
    print(f"PBGD bias at gamma 3 and 30: {biases}")
    assert 7 < biases[0] / biases[1] < 13
    assert 1e-2 < biases[0] < 1e-1


def test_pbgd_reports_the_lower_level_estimate(quadratic):
    # ``y`` is w ~ y*(x), not the penalised variable, which stays about
    # ||v*|| / gamma away from y*(x).
    solver, objective, _ = run_solver("PBGD", quadratic, 500)
    metrics = objective.evaluate_result(**solver.get_result())
    y_star = objective.reference.inner_solution(solver.get_result()["x"])
    penalised_gap = float(torch.linalg.vector_norm(
        solver.y_penalty - y_star))
    assert metrics["inner_gap"] < 1e-3
    assert penalised_gap > 10 * metrics["inner_gap"]
    assert solver.get_result()["v"] is None
