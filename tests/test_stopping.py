"""When a curve ends: the solver-time budget however slow the evaluations
are, the wall-clock guard, and the divergence rule of the ``diverged``
column."""
import math
import time

import pytest
import torch
from benchopt.callback import _Callback
from benchopt.utils.run_context import RunContext
from conftest import BENCHMARK, get_solver_class, make_objective

import benchmark_utils.metrics as metrics_module
import benchmark_utils.stopping as stopping
from benchmark_utils.curve_status import DIVERGED, FAILED, STATUS_KEYS
from benchmark_utils.metrics import (INNER_GAP_GROWTH, VALUE_RISE,
                                     DivergenceRule)

#: Solver time of one outer iteration in these tests: a sleep, so that the
#: pace is steady and the placement of the last point can be checked.
ITERATION_SECONDS = 2e-3


def run_curve(quadratic, budget, evaluation_seconds, max_runs=10 ** 6,
              fail_at=None, objective=None, **solver_params):
    """One curve of SOBA through benchopt's own callback, with each
    iteration taking ``ITERATION_SECONDS`` and each evaluation
    ``evaluation_seconds`` more; with ``fail_at``, the step of that outer
    iteration (from 1) raises. Returns (curve rows, status, wall time)."""
    objective = objective or make_objective(quadratic)
    evaluate = objective.evaluate_result

    def slow_evaluation(**result):
        time.sleep(evaluation_seconds)
        return evaluate(**result)

    objective.evaluate_result = slow_evaluation
    solver = get_solver_class("SOBA").get_instance(**solver_params)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    step = solver.step

    def slow_step(x, y, v):
        time.sleep(ITERATION_SECONDS)
        if solver.n_outer + 1 == fail_at:
            raise RuntimeError("a bug in the step")
        return step(x, y, v)

    solver.step = slow_step
    criterion = objective.stopping_criterion.get_runner_instance(
        max_runs=max_runs, timeout=budget, solver=solver)
    callback = _Callback(objective, solver, {}, criterion)
    start = time.time()
    callback.start()
    solver.run(callback)
    curve, status, _ = callback.get_results()
    return curve, status, time.time() - start


def test_slow_evaluations_do_not_shorten_the_solver_time_budget(quadratic):
    budget = 0.5
    curve, status, wall = run_curve(quadratic, budget,
                                    evaluation_seconds=0.1)
    solver_time = curve[-1]["time"]
    # benchopt's wall-clock timeout would have stopped this curve after
    # about 5 evaluations and 0.05 s of solver time.
    assert status == "timeout"
    assert wall > budget + 0.1 * (len(curve) - 1)
    # The last point is placed at the budget, not up to a factor 1.5
    # (benchopt's log-spacing) beyond it.
    assert budget <= solver_time < 1.25 * budget
    assert curve[-2]["time"] < budget
    # Only the last point came after the budget, and is marked so.
    assert [row["objective_over_budget"] for row in curve] == (
        [False] * (len(curve) - 1) + [True])


def test_an_iteration_longer_than_the_budget_is_marked(quadratic,
                                                       monkeypatch):
    # One outer iteration takes 20 ms of a 5-ms budget: the curve is its
    # start and the point after that iteration, past the budget.
    monkeypatch.setitem(globals(), "ITERATION_SECONDS", 0.02)
    curve, status, _ = run_curve(quadratic, 0.005, evaluation_seconds=0)
    assert status == "timeout"
    assert [row["objective_over_budget"] for row in curve] == [False, True]
    assert curve[-1]["time"] > 0.02


def test_the_wall_clock_guard_ends_a_curve_whose_evaluations_never_end(
        quadratic, monkeypatch):
    monkeypatch.setattr(stopping, "WALL_CLOCK_GUARD_FACTOR", 2)
    monkeypatch.setattr(stopping, "WALL_CLOCK_GUARD_MARGIN", 0.0)
    budget = 0.3
    curve, status, wall = run_curve(quadratic, budget,
                                    evaluation_seconds=0.25)
    assert status == "timeout"
    assert curve[-1]["time"] < budget
    assert 2 * budget <= wall < 2 * budget + 0.6


def test_a_diverged_point_ends_the_curve_and_is_kept(quadratic):
    curve, status, _ = run_curve(quadratic, 60, evaluation_seconds=0,
                                 step_size_outer=1e3)
    diverged = [row["objective_diverged"] for row in curve]
    assert diverged == [False] * (len(curve) - 1) + [True]
    assert status == STATUS_KEYS[DIVERGED] and len(curve) >= 2


def test_a_solver_that_raises_keeps_its_points_and_ends_marked_failed(
        quadratic, capsys):
    curve, status, _ = run_curve(quadratic, 60, evaluation_seconds=0,
                                 fail_at=21)
    assert status == STATUS_KEYS[FAILED]
    # benchopt's log-spaced evaluations before iteration 21, then one at
    # the last iterate (20 iterations done), marked failed.
    outer = [row["objective_n_outer"] for row in curve]
    assert outer[-1] == 20 and outer[-2] < 20
    failed = [row["objective_failed"] for row in curve]
    assert failed == [False] * (len(curve) - 1) + [True]
    assert math.isfinite(curve[-1]["objective_value"])
    assert curve[-1]["time"] >= curve[-2]["time"]
    assert not curve[-1]["objective_diverged"]
    printed = capsys.readouterr()
    assert ("failed at outer iteration 21: RuntimeError: a bug in the step"
            in printed.out)
    # Outside benchopt run there is no output folder: the traceback is
    # printed.
    assert "raise RuntimeError" in printed.err


def test_an_evaluation_past_its_time_limit_ends_the_curve_marked_failed(
        quadratic, monkeypatch, capsys):
    objective = make_objective(quadratic)
    # Every evaluation after the set-up's runs out of time at once.
    monkeypatch.setattr(metrics_module, "EVALUATION_TIME_LIMIT", -1.0)
    curve, status, _ = run_curve(quadratic, 60, evaluation_seconds=0,
                                 objective=objective)
    assert status == STATUS_KEYS[FAILED] and len(curve) == 1
    assert curve[0]["objective_failed"]
    assert math.isnan(curve[0]["objective_value"])
    assert math.isnan(curve[0]["objective_hypergrad_norm"])
    assert "EVALUATION_TIME_LIMIT" in capsys.readouterr().out


def test_an_objective_set_up_past_the_time_limit_skips_the_dataset(
        quadratic, monkeypatch):
    monkeypatch.setattr(metrics_module, "EVALUATION_TIME_LIMIT", -1.0)
    objective = BENCHMARK.get_benchmark_objective().get_instance(
        device="cpu", hvp_mode="reverse")
    skip, reason = objective.skip(quadratic)
    assert skip
    assert reason.startswith("the reference solves of one evaluation on "
                             "the quadratic problem ran past -1 s")


@pytest.fixture
def rule():
    return DivergenceRule(dict(value=-2.0, inner_gap=3.0), y_star_norm=5.0)


def test_divergence_rule_thresholds(rule):
    # The gap scale is max(3, 5) = 5; the value scale max(|-2|, 1) = 2.
    gap_limit = INNER_GAP_GROWTH * 5.0
    value_limit = -2.0 + VALUE_RISE * 2.0
    assert not rule(dict(value=value_limit, inner_gap=gap_limit))
    assert rule(dict(value=0.0, inner_gap=gap_limit * 1.001))
    assert rule(dict(value=value_limit + 1e-9, inner_gap=1.0))
    assert rule(dict(value=math.nan, inner_gap=1.0))
    assert rule(dict(value=0.0, inner_gap=math.inf))
    # A start at y* (no gap) is judged on ||y*(x0)||; at y* = 0, on 1.
    at_zero = DivergenceRule(dict(value=0.0, inner_gap=0.0), 0.0)
    assert not at_zero(dict(value=0.0, inner_gap=INNER_GAP_GROWTH))
    assert at_zero(dict(value=0.0, inner_gap=INNER_GAP_GROWTH * 1.01))


def test_objective_marks_a_runaway_y(quadratic):
    objective = make_objective(quadratic)
    x0, y0 = quadratic.x0, quadratic.y0
    y_star = quadratic.inner_solution(x0)
    scale = max(float(torch.linalg.vector_norm(y0 - y_star)),
                float(torch.linalg.vector_norm(y_star)))
    direction = torch.ones_like(y0) / math.sqrt(y0.numel())
    counts = dict(n_grad=0, n_hvp=0, n_cross=0)
    for distance, expected in [(0.5, False), (2.0, True)]:
        y = y_star + distance * INNER_GAP_GROWTH * scale * direction
        metrics = objective.evaluate_result(x=x0, y=y, v=None,
                                            counts=counts, n_outer=1)
        assert metrics["diverged"] is expected
    metrics = objective.evaluate_result(x=x0, y=y0, v=None, counts=counts,
                                        n_outer=0)
    assert metrics["diverged"] is False
