import math

import torch
from benchopt import BaseObjective

from benchmark_utils.allocation import (allocation_failure_message,
                                        is_allocation_failure)
from benchmark_utils.curve_status import report_failure
from benchmark_utils.device import resolve_device, resolve_dtype
from benchmark_utils.local_metrics import reference_metrics_for
from benchmark_utils.memory import no_memory
from benchmark_utils.metrics import EvaluationTimeLimit
from benchmark_utils.oracle_cost import (measure_oracle_costs,
                                         select_hvp_mode)
from benchmark_utils.oracles import HVP_MODES, Oracles, check_closed_form
from benchmark_utils.published_variants import seeded_start
from benchmark_utils.run_output import claim_output
from benchmark_utils.stopping import SolverTimeBudget
from benchmark_utils.validation import ParameterError, check_choice

#: The values of the objective's ``v_start``.
V_STARTS = ("zero", "normal", "uniform")


class Objective(BaseObjective):
    """Bilevel optimization: min_x phi(x) = f(x, y*(x)), y*(x) = argmin g.

    Solvers get counting oracles of f and g; each evaluation reports the
    hyper-objective, the exact hypergradient norm and the hypergradient
    formula's norm at the solver's own y, the solver's inner and
    linear-system errors, whether the curve diverged, the oracle counts,
    the problem's measured costs of one HVP and one cross product in
    gradients, the memory the solver used (its state and its peak) and the
    step sizes the solver ran with.
    """

    name = "Bilevel optimization"
    url = "https://github.com/benchopt/benchmark_bilevel_krylov"
    min_benchopt_version = "1.10"
    requirements = ["pip::torch"]

    sampling_strategy = "callback"
    # A curve ends when its solver time reaches --timeout, at --max-runs,
    # at its first diverged point (kept, marked in the `diverged` column),
    # or after 12 successive log-spaced evaluations (a factor 1.5^12 ~ 130
    # in iterations) without a new best value: a noisy curve is not cut
    # short.
    stopping_criterion = SolverTimeBudget(
        patience=12, eps=1e-14, key_to_monitor="value")

    parameters = {
        "device": ["auto"],
        "dtype": ["float64"],
        # How derivatives are taken: 'auto' takes the problem's closed
        # forms where it supplies them, else measures reverse and forward
        # mode when the objective is set up and keeps the faster for this
        # problem, device and dtype.
        "hvp_mode": ["auto"],
        # False leaves out hypergrad_norm, hypergrad_norm_at_y and
        # linsys_residual (NaN), which need linear solves: for long runs
        # judged by the value and the test accuracy.
        "second_order_metrics": [True],
        # The start v0 of every method that carries v from one iteration
        # to the next: 'zero', or a draw that is the same for every curve
        # of a repetition, 'normal' (N(0, I)) or 'uniform' (on [0, 1)):
        # the LancBiO authors' code starts every method at the first on its
        # synthetic problem, at the second on hyper-cleaning. A property of
        # the comparison, as x0 and y0 are, not of any one method.
        "v_start": ["zero"],
    }

    test_config = {"dataset": {"name": "quadratic"}}

    def skip(self, problem, unusable=None):
        # A dataset that could not be built (benchmark_utils.data.
        # BilevelDataset), a parameter of the objective out of range, or a
        # set-up that runs out of memory or time: benchopt reports the
        # reason and goes on with the other datasets. set_data, which
        # benchopt calls next on the same problem, keeps this set-up.
        if unusable is not None:
            return True, unusable
        try:
            self.set_up(problem)
        except (ParameterError, EvaluationTimeLimit) as error:
            return True, str(error)
        except Exception as error:
            if not is_allocation_failure(error):
                raise
            return True, allocation_failure_message(
                f"Setting up the objective on the {problem.name} problem "
                f"(device={self.device}, dtype={self.dtype})", error,
                "use a smaller dataset or a device with more memory")
        return False, None

    def check_parameters(self):
        check_choice("hvp_mode", self.hvp_mode, ("auto",) + HVP_MODES)
        check_choice("second_order_metrics", self.second_order_metrics,
                     (True, False))
        check_choice("v_start", self.v_start, V_STARTS)
        return resolve_device(self.device), resolve_dtype(self.dtype)

    def set_data(self, problem):
        if getattr(self, "_set_up_for", None) is not problem:
            self.set_up(problem)

    def set_up(self, problem):
        """The objective on ``problem``: the copy the solvers work on, the
        reference metrics, the start against which divergence is judged
        and the measured oracle costs."""
        self._set_up_for = None
        device, dtype = self.check_parameters()
        claim_output(self)
        self.problem = problem.to(device, dtype)
        # The reference is built from the dataset's float64 data, not from
        # the (possibly float32-rounded) copy the solvers work on; a local
        # one where the lower level is not convex.
        self.reference = reference_metrics_for(
            problem.to(device, torch.float64))
        # The start (x0, y0) that every curve leaves from, against which a
        # point is judged diverged; it also warm-starts the first
        # evaluation of every curve.
        x0, y0 = self.reference.problem.x0, self.reference.problem.y0
        start = self.reference.evaluate(x0, y0, None, second_order=False)
        self.diverged = self.reference.divergence_rule(start)
        if self.problem.has_closed_form_derivatives:
            check_closed_form(self.problem)
        # Costs of one HVP and one cross product in gradients, for the
        # gradient-equivalent work axis of the budget plots: measured once,
        # here, so no solver's time includes them.
        if self.hvp_mode == "auto":
            self.resolved_hvp_mode, costs = select_hvp_mode(self.problem)
        else:
            self.resolved_hvp_mode = self.hvp_mode
            costs = measure_oracle_costs(self.problem, self.hvp_mode)
        self.oracle_costs = dict(r_hvp=costs["r_hvp"],
                                 r_cross=costs["r_cross"])
        self._set_up_for = problem

    def get_objective(self):
        # Seeded from the repetition only: every solver of a repetition
        # starts from the same v0.
        v0 = None if self.v_start == "zero" else seeded_start(
            self.problem.y0, self.get_seed(use_repetition=True),
            self.v_start)
        return dict(oracles=Oracles(self.problem, self.resolved_hvp_mode),
                    x0=self.problem.x0, y0=self.problem.y0, v0=v0)

    def evaluate_result(self, x, y, v, counts, n_outer, memory=None,
                        failed=False, steps=None):
        # memory: the solver's memory columns (benchmark_utils.memory); a
        # point given by hand, with no run behind it, has none (NaN).
        # failed: the solver raised; this point is its last iterate.
        # steps: the step sizes the solver resolved ({'step_size_inner':
        # 0.1, ...}), recorded as they are on every point of the curve.
        try:
            metrics = self.reference.evaluate(
                x, y, v, second_order=self.second_order_metrics)
        except EvaluationTimeLimit as error:
            # The curve ends here, marked failed, with every metric unknown.
            report_failure(self._curve_name(), str(error),
                           f"at its evaluation after {n_outer} outer "
                           "iterations", output_folder=None)
            metrics = self.reference.unknown_metrics()
            failed = True
        # Finite at a finite point: phi(x), or on a non-convex lower level
        # (whose value can be NaN there) the value at the solver's own y.
        if math.isfinite(metrics.get("value_at_y", metrics["value"])):
            with torch.no_grad():
                metrics.update(self.problem.test_metrics(x.detach(),
                                                         y.detach()))
        diverged = not failed and self.diverged(metrics)
        return dict(**metrics, diverged=diverged, failed=failed, **counts,
                    n_outer=n_outer, **self.oracle_costs,
                    **(no_memory() if memory is None else memory),
                    **(steps or {}))

    def _curve_name(self):
        """The solver curve being evaluated, for messages."""
        context = getattr(self, "_run_context", None)
        return getattr(context, "solver_name", None) or "The curve"

    def get_one_result(self):
        return dict(x=self.problem.x0, y=self.problem.y0, v=None,
                    counts=dict(n_grad=0, n_hvp=0, n_cross=0, n_epochs=0),
                    n_outer=0, memory=no_memory(), failed=False, steps={})
