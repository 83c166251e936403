"""The metrics of a non-convex lower level (benchmark_utils.local_metrics):
no second-order metric where the Hessian is indefinite, the local
reference at a strict local minimum against dense linear algebra and
finite differences, the bounded cost of an evaluation, the divergence rule
and the stopping rule that do without y*."""
import math

import pytest
import torch
from benchopt.callback import _Callback
from benchopt.utils.run_context import RunContext
from conftest import get_solver_class, make_objective
from neural_problems import (small_distillation_problem,
                             small_mlp_hypercleaning_problem)

import benchmark_utils.local_metrics as local_metrics
from benchmark_utils.linalg.krylov import LanczosProcess
from benchmark_utils.local_metrics import (LOCAL_METRICS,
                                           LocalReferenceMetrics,
                                           StationarityDivergenceRule,
                                           reference_metrics_for)
from benchmark_utils.metrics import (INNER_GAP_GROWTH, SECOND_ORDER_METRICS,
                                     VALUE_RISE, ReferenceMetrics)
from benchmark_utils.problems.quadratic import QuadraticProblem

#: The metrics of the local reference: NaN unless the Hessian at y_loc is
#: positive definite.
LOCAL_REFERENCE = ("value", "inner_gap", "hypergrad_norm", "linsys_residual")


def dense_hessian(problem, x, y):
    return torch.func.hessian(lambda z: problem.g(x, z))(y)


def newton_polished(problem, x, y, n_steps=6):
    """y after Newton steps with the dense Hessian: a local minimiser of
    g(x, .) to round-off, from a y in its basin."""
    for _ in range(n_steps):
        gradient = torch.func.grad(lambda z: problem.g(x, z))(y)
        y = y - torch.linalg.solve(dense_hessian(problem, x, y), gradient)
    return y


def dense_hypergradient(problem, x, y):
    """d_x f - d2_xy g H^-1 d_y f at (x, y), by dense linear algebra."""
    grad_x_f, grad_y_f = torch.func.grad(problem.f, argnums=(0, 1))(x, y)
    w = torch.linalg.solve(dense_hessian(problem, x, y), grad_y_f)
    cross = torch.func.jacrev(torch.func.grad(problem.g, argnums=1),
                              argnums=0)(x, y)
    return grad_x_f - cross.T @ w


def test_the_reference_of_a_problem_follows_its_declaration():
    quadratic = QuadraticProblem(dim_x=3, dim_y=4, kappa=2.0, seed=0)
    assert type(reference_metrics_for(quadratic)) is ReferenceMetrics
    assert type(reference_metrics_for(small_distillation_problem(
        "linear"))) is ReferenceMetrics
    for problem in (small_mlp_hypercleaning_problem(),
                    small_distillation_problem("mlp")):
        assert isinstance(reference_metrics_for(problem),
                          LocalReferenceMetrics)


@pytest.mark.parametrize("build", [
    small_mlp_hypercleaning_problem,
    lambda: small_distillation_problem("mlp")],
    ids=["hypercleaning", "distillation"])
def test_no_second_order_metric_where_the_hessian_is_indefinite(build):
    problem = build()
    objective = make_objective(problem)
    # At W1 = W2 = 0 the hidden layer is tanh(0) = 0: d g vanishes along
    # both weight matrices and their products W2 tanh(W1 a) make a saddle,
    # which the local solve (moving only the output bias) cannot leave.
    x, y = problem.x0, torch.zeros_like(problem.y0)
    v = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    metrics = objective.evaluate_result(
        x=x, y=y, v=v, counts=dict(n_grad=0, n_hvp=0, n_cross=0,
                                   n_epochs=0), n_outer=0)
    reference = objective.reference
    y_local, converged = reference.local_solution(x, y)
    assert converged
    hidden_and_output = y_local[:-10]
    assert torch.equal(hidden_and_output, torch.zeros_like(hidden_and_output))
    smallest = float(torch.linalg.eigvalsh(
        dense_hessian(problem, x, y_local))[0])
    # Lanczos estimates from above: between the true eigenvalue and 0.
    assert smallest < 0
    assert smallest - 1e-10 <= metrics["hessian_min_eigenvalue"] <= 0
    for key in (*LOCAL_REFERENCE, "hypergrad_norm_at_y"):
        assert math.isnan(metrics[key]), key
    # Always reported: at the solver's own point.
    assert metrics["value_at_y"] == pytest.approx(float(problem.f(x, y)),
                                                  rel=1e-14)
    assert metrics["inner_grad_norm"] == pytest.approx(float(
        torch.linalg.vector_norm(torch.func.grad(
            lambda z: problem.g(x, z))(y))), rel=1e-12)
    assert math.isfinite(metrics["test_accuracy"])
    assert metrics["diverged"] is False


def test_the_local_reference_at_a_strict_local_minimum():
    # Distilled images are few: the network fits them, and L-BFGS reaches a
    # strict local minimum from the start.
    problem = small_distillation_problem("mlp")
    objective = make_objective(problem)
    reference = objective.reference
    x, y = problem.x0, problem.y0
    v = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    metrics = reference.evaluate(x, y, v)
    y_local, converged = reference.local_solution(x, y)
    assert converged
    y_min = newton_polished(problem, x, y_local)
    eigenvalues = torch.linalg.eigvalsh(dense_hessian(problem, x, y_min))
    assert float(eigenvalues[0]) > 0
    assert metrics["hessian_min_eigenvalue"] == pytest.approx(
        float(eigenvalues[0]), rel=1e-3)
    assert metrics["hessian_min_eigenvalue"] >= float(eigenvalues[0]) - 1e-9
    # The local solve's y is within its tolerance of the minimiser.
    assert float(torch.linalg.vector_norm(y_local - y_min)) < 1e-4
    assert metrics["value"] == pytest.approx(float(problem.f(x, y_min)),
                                             rel=1e-6)
    assert metrics["inner_gap"] == pytest.approx(float(
        torch.linalg.vector_norm(y - y_min)), rel=1e-5)
    hypergradient = dense_hypergradient(problem, x, y_min)
    assert metrics["hypergrad_norm"] == pytest.approx(float(
        torch.linalg.vector_norm(hypergradient)), rel=1e-4)
    _, grad_y_f = torch.func.grad(problem.f, argnums=(0, 1))(x, y)
    assert metrics["linsys_residual"] == pytest.approx(float(
        torch.linalg.vector_norm(dense_hessian(problem, x, y) @ v
                                 - grad_y_f)), rel=1e-10)
    assert math.isnan(metrics["hypergrad_norm_at_y"])
    # The formula is the derivative of the local hyper-objective
    # phi(x) = f(x, y_loc(x)), y_loc(x) the minimiser of this basin.
    generator = torch.Generator().manual_seed(2)
    for _ in range(2):
        direction = torch.randn(x.shape, generator=generator)
        eps = 1e-5

        def phi(point):
            return float(problem.f(point, newton_polished(problem, point,
                                                          y_min)))

        finite_difference = (phi(x + eps * direction)
                             - phi(x - eps * direction)) / (2 * eps)
        assert float(hypergradient @ direction) == pytest.approx(
            finite_difference, rel=1e-5, abs=1e-10)


def test_no_local_reference_before_the_local_solve_converges(monkeypatch):
    problem = small_mlp_hypercleaning_problem()
    reference = LocalReferenceMetrics(problem)
    monkeypatch.setattr(local_metrics, "LOCAL_SOLVE_MAX_ITER", 2)
    metrics = reference.evaluate(problem.x0, problem.y0, None)
    _, converged = reference.local_solution(problem.x0, problem.y0)
    assert not converged
    for key in (*LOCAL_REFERENCE, "hessian_min_eigenvalue"):
        assert math.isnan(metrics[key]), key
    assert math.isfinite(metrics["value_at_y"])


def test_an_evaluation_costs_at_most_its_bounded_solves():
    bounds = dict(
        n_grad=1.25 * local_metrics.LOCAL_SOLVE_MAX_ITER + 4,
        n_hvp=local_metrics.LANCZOS_STEPS
        + local_metrics.LOCAL_MAX_CG_STEPS + 5,
        n_cross=1)
    # Hyper-cleaning's local solve runs to its cap from the start; the
    # distillation one converges and the Lanczos and CG solves follow.
    for problem, converges in ((small_mlp_hypercleaning_problem(), False),
                               (small_distillation_problem("mlp"), True)):
        reference = LocalReferenceMetrics(problem)
        reference.oracles.reset()
        x, y = problem.x0, problem.y0
        metrics = reference.evaluate(x, y, torch.zeros_like(y))
        counts = reference.oracles.counts()
        assert math.isfinite(metrics["value"]) == converges
        for key, bound in bounds.items():
            assert counts[key] <= bound, key
        if not converges:
            # L-BFGS to its cap, no Lanczos nor linear solve.
            assert counts["n_grad"] > local_metrics.LOCAL_SOLVE_MAX_ITER
            assert counts["n_hvp"] == counts["n_cross"] == 0
        reference.oracles.reset()
        reference.evaluate(x, y, None, second_order=False)
        assert reference.oracles.counts() == dict(
            n_grad=1, n_hvp=0, n_cross=0, n_epochs=1)


def test_without_second_order_metrics_only_the_solvers_point_is_judged():
    problem = small_distillation_problem("mlp")
    objective = make_objective(problem, second_order_metrics=False)
    metrics = objective.evaluate_result(**objective.get_one_result())
    for key in (*SECOND_ORDER_METRICS, "value", "inner_gap",
                "hessian_min_eigenvalue"):
        assert math.isnan(metrics[key]), key
    assert math.isfinite(metrics["value_at_y"])
    assert math.isfinite(metrics["inner_grad_norm"])
    assert math.isfinite(metrics["test_loss"])


def test_non_finite_iterates_are_divergence():
    problem = small_mlp_hypercleaning_problem()
    objective = make_objective(problem)
    v = torch.zeros_like(problem.y0)
    v[3] = float("inf")
    metrics = objective.evaluate_result(
        x=problem.x0, y=problem.y0, v=v,
        counts=dict(n_grad=0, n_hvp=0, n_cross=0, n_epochs=0), n_outer=1)
    assert metrics["diverged"] is True
    for key in (*LOCAL_METRICS, "value", "hypergrad_norm"):
        assert math.isnan(metrics[key]), key
    assert "test_accuracy" not in metrics


def test_the_divergence_rule_needs_no_y_star():
    problem = small_mlp_hypercleaning_problem()
    reference = LocalReferenceMetrics(problem)
    x, y = problem.x0, problem.y0
    start = reference.evaluate(x, y, None, second_order=False)
    rule = reference.divergence_rule(start)
    assert isinstance(rule, StationarityDivergenceRule)
    assert not rule(start)
    assert rule.max_inner_grad_norm == INNER_GAP_GROWTH * start[
        "inner_grad_norm"]
    assert rule.max_value == start["value_at_y"] + VALUE_RISE * max(
        start["value_at_y"], 1.0)
    # A y that ran away: its ridge gradient 2 reg y dwarfs the start's.
    far = reference.evaluate(x, 1e5 * y, None, second_order=False)
    assert far["inner_grad_norm"] > rule.max_inner_grad_norm and rule(far)
    assert rule(dict(start, value_at_y=rule.max_value * 1.01))
    assert rule(dict(start, inner_grad_norm=float("nan")))


def test_a_curve_with_no_local_reference_is_not_ended_as_diverged():
    # Every point's value is NaN (second-order metrics off): the stopping
    # rule watches value_at_y and lets the curve run to --max-runs.
    problem = small_mlp_hypercleaning_problem()
    objective = make_objective(problem, second_order_metrics=False)
    solver = get_solver_class("SOBA").get_instance()
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    criterion = objective.stopping_criterion.get_runner_instance(
        max_runs=6, timeout=600, solver=solver)
    callback = _Callback(objective, solver, {}, criterion)
    callback.start()
    solver.run(callback)
    curve, status, _ = callback.get_results()
    assert status == "max_runs" and len(curve) == 7
    assert all(math.isnan(row["objective_value"]) for row in curve)
    assert not any(row["objective_diverged"] for row in curve)


def test_lanczos_estimates_the_smallest_eigenvalue_from_above():
    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=generator))
    start = torch.randn(30, generator=generator)
    # Positive definite: after 30 steps, every eigenvalue; after 10, an
    # upper bound on the smallest.
    eigenvalues = torch.linspace(0.5, 10.0, 30)
    matrix = (q * eigenvalues) @ q.T
    for n_steps, exact in ((30, True), (10, False)):
        process = LanczosProcess(start, max_dim=n_steps)
        for _ in range(n_steps):
            process.extend(lambda u: matrix @ u)
        ritz = process.ritz_values()
        if exact:
            torch.testing.assert_close(ritz, eigenvalues, rtol=1e-8,
                                       atol=1e-8)
        assert float(ritz[0]) >= 0.5 - 1e-12
    # Indefinite: the step that makes T_j indefinite is refused, and its
    # T_{j+1} gives a Ritz value <= 0, above the smallest eigenvalue.
    eigenvalues = torch.cat([torch.tensor([-0.3]), torch.linspace(1, 5, 29)])
    matrix = (q * eigenvalues) @ q.T
    process = LanczosProcess(start, max_dim=30)
    while process.extend(lambda u: matrix @ u):
        pass
    assert process.lost_definiteness
    smallest = float(process.ritz_values()[0])
    assert -0.3 - 1e-12 <= smallest <= 0
    assert len(process.ritz_values()) == process.dim + 1
