"""The benchmark's stopping rule: a solver-time budget, and diverged or
failed curves that end where they diverged or failed and keep their
points."""
import math
import time

from benchopt.stopping_criterion import SufficientProgressCriterion

from benchmark_utils.curve_status import DIVERGED, FAILED, STATUS_KEYS
from benchmark_utils.run_output import write_curve

#: The wall-clock guard: a curve also ends once it has run (solver time and
#: evaluations together) for this many times its solver-time budget plus
#: WALL_CLOCK_GUARD_MARGIN seconds, so that a run whose evaluations never
#: end still ends. The margin leaves a short budget room for its 20 or so
#: log-spaced evaluations (a second or more each on hyper-cleaning).
WALL_CLOCK_GUARD_FACTOR = 10
WALL_CLOCK_GUARD_MARGIN = 300.0
#: The column that the sufficient-progress rule watches in place of
#: ``objective_value`` where a point has it: on a non-convex lower level
#: (``benchmark_utils.local_metrics``) the value is NaN wherever the local
#: reference is not known, which is no divergence, and the value at the
#: solver's own y is always reported.
VALUE_AT_Y = "objective_value_at_y"
#: The results column that marks a point taken after the solver-time
#: budget: true where the solver time exceeds --timeout.
OVER_BUDGET_COLUMN = "objective_over_budget"


class SolverTimeBudget(SufficientProgressCriterion):
    """benchopt's sufficient-progress rule, with two changes.

    **The budget is solver time.** benchopt's ``--timeout T`` is wall-clock
    and includes the (untimed) evaluations, so a solver whose evaluations
    happen to be slow would get less solver time than the others. Here a
    curve ends once its solver time (benchopt's ``time`` column) reaches
    ``T``; the evaluation points are placed so that the last one falls at
    ``T`` rather than up to a factor ``rho`` beyond it. A wall-clock guard
    of ``WALL_CLOCK_GUARD_FACTOR * T + WALL_CLOCK_GUARD_MARGIN`` ends a
    curve whose evaluations take much longer than its solver time.

    **A diverged or failed curve keeps its points.** benchopt ends a curve
    whose monitored value turns NaN (or jumps up by more than 1e5) with the
    status 'diverged' and then drops the whole curve from the results. Here
    it ends with the status 'diverged (points kept)', and its points stay;
    so does a curve whose last point the objective marked as diverged
    (``objective_diverged``). A curve whose last point is marked failed
    (``objective_failed``: its solver raised, or its evaluation ran past
    its time limit) ends with 'failed (points kept)'
    (:mod:`benchmark_utils.curve_status`). On a non-convex lower level the
    rule watches ``objective_value_at_y`` (:data:`VALUE_AT_Y`) instead of
    ``objective_value``.

    **A point after the budget is marked.** A curve is evaluated only
    between iterations, so its last point can come after the budget (one
    iteration of AID-exact on hyper-cleaning outlasts a 10-s budget):
    every point gets ``objective_over_budget``, true where its solver time
    exceeds ``T``, so that the budget plots and tables do not count it.

    **A finished curve is written at once** to its output folder
    (:func:`benchmark_utils.run_output.write_curve`), so that a run stopped
    before benchopt writes its results file keeps it.
    """

    def get_runner_instance(self, max_runs=1, timeout=None, **kwargs):
        criterion = super().get_runner_instance(
            max_runs=max_runs, timeout=timeout, **kwargs)
        criterion.solver_time_budget = timeout
        criterion._deadline = (
            None if timeout is None
            else time.time() + WALL_CLOCK_GUARD_FACTOR * timeout
            + WALL_CLOCK_GUARD_MARGIN)
        return criterion

    def should_stop(self, stop_val, objective_list):
        last = objective_list[-1]
        budget = getattr(self, "solver_time_budget", None)
        last[OVER_BUDGET_COLUMN] = budget is not None and last["time"] > budget
        stop, status, next_stop_val = self._should_stop(stop_val,
                                                        objective_list)
        if stop:
            write_curve(self.solver, objective_list)
        return stop, status, next_stop_val

    def _should_stop(self, stop_val, objective_list):
        last = objective_list[-1]
        if last.get("objective_failed", False):
            self.debug("the curve failed: it ends here and is kept")
            return True, STATUS_KEYS[FAILED], stop_val
        if last.get("objective_diverged", False):
            self.debug("the curve diverged: it ends here and is kept")
            return True, STATUS_KEYS[DIVERGED], stop_val
        stop, status, next_stop_val = super().should_stop(
            stop_val, [watched(point) for point in objective_list])
        if status == "diverged":
            self.debug("the curve diverged: it ends here and is kept")
            return True, STATUS_KEYS[DIVERGED], next_stop_val
        budget = getattr(self, "solver_time_budget", None)
        if stop or budget is None:
            return stop, status, next_stop_val
        solver_time, iteration = last["time"], last["stop_val"]
        if solver_time >= budget:
            self.debug(f"solver time {solver_time:.3g} s reached the budget")
            return True, "timeout", next_stop_val
        if iteration > 0 and solver_time > 0:
            # The iteration where the budget runs out, at the mean pace so
            # far: evaluate there rather than far beyond it.
            at_budget = math.ceil(iteration * budget / solver_time)
            next_stop_val = max(iteration + 1,
                                min(next_stop_val, at_budget))
        return stop, status, next_stop_val


def watched(point):
    """``point`` (a row of a curve) with its value at the solver's own y as
    ``objective_value`` where it has one (:data:`VALUE_AT_Y`)."""
    if VALUE_AT_Y in point:
        return {**point, "objective_value": point[VALUE_AT_Y]}
    return point
