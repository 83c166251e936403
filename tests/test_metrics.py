"""The objective's metrics against the quadratic problem's exact values."""
import math

import pytest
import torch
from conftest import make_objective

from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem


@pytest.fixture(scope="module")
def quadratic():
    return QuadraticProblem(dim_x=20, dim_y=40, kappa=50.0, seed=7)


def test_value_and_hypergradient_match_closed_form(quadratic):
    objective = make_objective(quadratic)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):   # successive evaluations use the warm start
        x = torch.randn(20, generator=gen)
        y = torch.randn(40, generator=gen)
        v = torch.randn(40, generator=gen)
        metrics = objective.evaluate_result(
            x=x, y=y, v=v, counts=dict(n_grad=1, n_hvp=2, n_cross=3),
            n_outer=4)
        exact_grad = quadratic.hypergradient(x)
        assert metrics["value"] == pytest.approx(float(quadratic.value(x)),
                                                 rel=1e-6)
        assert metrics["hypergrad_norm"] == pytest.approx(
            float(torch.linalg.vector_norm(exact_grad)), rel=1e-6)
        assert metrics["inner_gap"] == pytest.approx(float(
            torch.linalg.vector_norm(y - quadratic.inner_solution(x))),
            rel=1e-6)
        residual = quadratic.hessian @ v - (y - quadratic.target)
        assert metrics["linsys_residual"] == pytest.approx(
            float(torch.linalg.vector_norm(residual)), rel=1e-10)
        # The formula at the solver's y: rho x - B^T H^-1 (y - t).
        at_y = quadratic.rho * x - quadratic.coupling.T @ torch.linalg.solve(
            quadratic.hessian, y - quadratic.target)
        assert metrics["hypergrad_norm_at_y"] == pytest.approx(
            float(torch.linalg.vector_norm(at_y)), rel=1e-6)
        assert metrics["diverged"] is False
        assert (metrics["n_grad"], metrics["n_hvp"], metrics["n_cross"],
                metrics["n_outer"]) == (1, 2, 3, 4)


def test_second_order_metrics_can_be_left_out(quadratic):
    objective = make_objective(quadratic, second_order_metrics=False)
    x, y = quadratic.x0 + 1.0, quadratic.y0
    metrics = objective.evaluate_result(
        x=x, y=y, v=torch.ones_like(y),
        counts=dict(n_grad=0, n_hvp=0, n_cross=0), n_outer=0)
    for key in ("hypergrad_norm", "hypergrad_norm_at_y", "linsys_residual"):
        assert math.isnan(metrics[key])
    assert metrics["value"] == pytest.approx(float(quadratic.value(x)),
                                             rel=1e-6)
    with pytest.raises(ValueError, match="second_order_metrics must be one"):
        make_objective(quadratic, second_order_metrics="no")


def test_metrics_at_the_minimizer(quadratic):
    objective = make_objective(quadratic)
    x_star = quadratic.minimizer()
    metrics = objective.evaluate_result(
        x=x_star, y=quadratic.inner_solution(x_star), v=None,
        counts=dict(n_grad=0, n_hvp=0, n_cross=0), n_outer=0)
    assert metrics["hypergrad_norm"] < 1e-9
    assert metrics["inner_gap"] < 1e-9
    assert math.isnan(metrics["linsys_residual"])   # no v: NaN by contract


def test_float32_run_is_judged_in_float64(quadratic):
    objective = make_objective(quadratic, dtype="float32")
    x = quadratic.x0.float()
    metrics = objective.evaluate_result(
        x=x, y=quadratic.y0.float(), v=None,
        counts=dict(n_grad=0, n_hvp=0, n_cross=0), n_outer=0)
    exact = torch.linalg.vector_norm(quadratic.hypergradient(x.double()))
    assert metrics["hypergrad_norm"] == pytest.approx(float(exact), rel=1e-6)


def test_nonfinite_iterates_give_nan_metrics(quadratic):
    objective = make_objective(quadratic)
    x = quadratic.x0.clone()
    x[3] = float("nan")
    metrics = objective.evaluate_result(
        x=x, y=quadratic.y0, v=quadratic.y0,
        counts=dict(n_grad=5, n_hvp=0, n_cross=0), n_outer=5)
    for key in ("value", "hypergrad_norm", "hypergrad_norm_at_y",
                "inner_gap", "linsys_residual"):
        assert math.isnan(metrics[key])
    assert metrics["diverged"] is True
    assert metrics["n_grad"] == 5
    # The reference cache is not poisoned: the next point is exact again.
    good = objective.evaluate_result(
        x=quadratic.x0, y=quadratic.y0, v=None,
        counts=dict(n_grad=0, n_hvp=0, n_cross=0), n_outer=0)
    assert good["value"] == pytest.approx(float(quadratic.value(
        quadratic.x0)), rel=1e-6)


def test_synthetic_hypergradient_matches_finite_differences_of_phi():
    problem = SyntheticProblem(n=40, kappa=100.0, seed=5)
    objective = make_objective(problem)
    reference = objective.reference
    # Finite differences of phi need phi to round-off: fixed-tolerance
    # solves, not the metrics' 1e-6.
    reference.rtol = None
    x = problem.x0
    hypergradient, _ = reference.hypergradient(x)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        direction = torch.randn(40, generator=gen)
        eps = 1e-5

        def phi(point):
            return float(problem.f(point, reference.inner_solution(point)))

        finite_difference = (phi(x + eps * direction)
                             - phi(x - eps * direction)) / (2 * eps)
        assert float(torch.dot(hypergradient, direction)) == pytest.approx(
            finite_difference, rel=1e-6)


@pytest.mark.parametrize("params, message", [
    (dict(device="tpu"), "device must be 'auto', 'cpu', 'cuda'"),
    (dict(dtype="float16"), "dtype must be one of 'float64', 'float32'"),
    (dict(hvp_mode="sideways"), "hvp_mode must be one of"),
])
def test_objective_rejects_bad_parameters(quadratic, params, message):
    with pytest.raises(ValueError, match=message):
        make_objective(quadratic, **params)


def test_cuda_without_cuda_is_a_clear_error(quadratic, monkeypatch):
    # As on a machine without a GPU, whatever this one has.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        make_objective(quadratic, device="cuda")


@pytest.mark.parametrize("factory, message", [
    (lambda: SyntheticProblem(n=0), "n must be an integer >= 1"),
    (lambda: SyntheticProblem(n=5, kappa=0.5), "kappa must be a finite"),
    (lambda: SyntheticProblem(n=5, c2=1.0), r"c2 must be in \[0, 1\)"),
    (lambda: QuadraticProblem(dim_x=0), "dim_x must be an integer >= 1"),
    (lambda: QuadraticProblem(kappa=0.1), "kappa must be a finite"),
    (lambda: QuadraticProblem(rho=1.5), r"rho must be in \(0, 1\)"),
])
def test_problems_reject_bad_parameters(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()
