"""The outer loop that every solver inherits from ``BilevelSolver``: a second
run of the same instance starts again from zero counts, and a diverging
solver runs its whole budget and reports non-finite values instead of
failing."""
import math

from conftest import get_solver_class, make_objective, run_solver


def test_a_second_run_starts_from_zero(quadratic):
    objective = make_objective(quadratic)
    solver = get_solver_class("SOBA").get_instance()
    solver.set_objective(**objective.get_objective())
    for _ in range(2):
        calls = iter(range(5))
        solver.run(lambda: next(calls) < 4)
        assert solver.get_result()["counts"]["n_hvp"] == 4


def test_diverging_solver_stops_with_nonfinite_iterates(quadratic):
    solver, objective, _ = run_solver("SOBA", quadratic, 300,
                                      step_size_outer=1e3)
    metrics = objective.evaluate_result(**solver.get_result())
    assert math.isnan(metrics["value"])
    assert metrics["n_outer"] == 300
