"""Accurate reference quantities and the metrics of the results table.

Nothing here is charged to a solver: the metrics have their own, uncounted
oracles, on a float64 copy of the problem so that a float32 run is judged
with the same accuracy as a float64 one.
"""
import contextlib
import math
import time

import torch

from benchmark_utils.linalg.inner_loops import newton_cg
from benchmark_utils.linalg.krylov import conjugate_gradient
from benchmark_utils.oracles import Oracles

#: The relative accuracy of the fixed-tolerance solves, used where a
#: problem gives no strong-convexity bound (``rtol=None``).
REFERENCE_TOL = 1e-12
#: The relative accuracy of every reported metric where the problem gives a
#: strong-convexity bound: the solves stop once the error estimate of each
#: metric is below METRIC_RTOL times the metric.
METRIC_RTOL = 1e-6
#: The error estimates are first order, with constants measured along the
#: way: each must be this many times below its target.
SAFETY = 10.0
#: The solves are never asked for more than this relative accuracy in y*
#: and v*: near the round-off of the gradients themselves.
FLOOR = 1e-10
#: Most CG steps of one reference solve. On the synthetic problem (kappa =
#: 1e5, n = 3,000) the longest solve takes 431 steps; the cap bounds an
#: evaluation at an extreme x (penalties driven to 0 make the lower level
#: nearly singular), where 10 dim(y) steps would take hours on news20.
MAX_REFERENCE_CG_STEPS = 3000
#: Rounds of refinement of y* when the hypergradient's error estimate asks
#: for a more accurate y* than the value and the inner gap did.
MAX_REFINEMENTS = 4
#: A curve has diverged once its y is this many times farther from y*(x)
#: than the start was (from y0 to y*(x0), or ||y*(x0)|| when y0 = y*(x0)).
INNER_GAP_GROWTH = 1e3
#: ... or once its value is above the start's by this many times
#: max(|value at the start|, 1).
VALUE_RISE = 10.0
#: Wall-clock seconds that one evaluation's reference solves may take (an
#: evaluation of hyper-cleaning on the MNIST-5k digits takes about a second,
#: one of synthetic[n=3000] a few): past it, the solves stop with
#: :class:`EvaluationTimeLimit`, so that a lower level that is not strongly
#: convex enough, where Newton-CG and CG crawl, ends a curve with a message
#: instead of hanging the run.
EVALUATION_TIME_LIMIT = 300.0
#: The metrics that need v*(x) or a solve at the solver's y, which the
#: objective's ``second_order_metrics=False`` leaves out (NaN).
SECOND_ORDER_METRICS = ("hypergrad_norm", "hypergrad_norm_at_y",
                        "linsys_residual")


def norm(tensor):
    return float(torch.linalg.vector_norm(tensor))


class EvaluationTimeLimit(RuntimeError):
    """An evaluation's reference solves ran past
    :data:`EVALUATION_TIME_LIMIT`."""


class TimeLimitedOracles(Oracles):
    """The reference metrics' oracles: every derivative first checks that
    the evaluation under way is within its time limit (one clock read, next
    to a gradient or an HVP)."""

    deadline = None

    def within_time_limit(self):
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise EvaluationTimeLimit(
                f"the reference solves of one evaluation on the "
                f"{self.problem.name} problem ran past "
                f"{EVALUATION_TIME_LIMIT:g} s of wall-clock time "
                "(benchmark_utils.metrics.EVALUATION_TIME_LIMIT): y*(x) or "
                "v*(x) converges too slowly, as it does when the lower level "
                "is barely strongly convex (a regularisation close to 0)")

    def _read_training(self, batch):
        self.within_time_limit()
        return super()._read_training(batch)

    def _outer_samples(self, batch):
        self.within_time_limit()
        return super()._outer_samples(batch)

    def hessian_at(self, x, y, batch=None):
        product = super().hessian_at(x, y, batch)

        def within_time_limit(u):
            self.within_time_limit()
            return product(u)
        return within_time_limit


class ReferenceMetrics:
    """Computes phi(x), the exact hypergradient and the solver's errors.

    ``y*(x)`` comes from a globalised inexact Newton method (Newton-CG with
    Armijo backtracking) and ``v*(x)`` from conjugate gradient, warm-started
    from the previous evaluation or from the solver's own ``y`` and ``v``,
    whichever has the smaller residual.

    **Solved as accurately as the metrics need.** Where the problem gives a
    lower bound ``mu`` on the eigenvalues of ``d2_yy g`` (its
    ``inner_strong_convexity``), residuals bound errors:
    ``||y - y*|| <= ||d_y g(x, y)|| / mu`` and
    ``||w - A^-1 b|| <= ||A w - b|| / mu``. The solves stop once, to first
    order, each metric's error is below ``rtol / SAFETY`` times the metric:

    - ``inner_gap``: its error is at most the error of y*;
    - ``value``: ``||d_y f(x, y*)||`` times the error of y*;
    - ``hypergrad_norm``: ``||d2_xy g w|| / ||w||`` (a measured norm of
      the cross product) times the error of v*, plus ``L_h`` times the
      error of y*, with ``L_h`` the change of the hypergradient formula
      between the solver's y and y* divided by their distance (measured in
      the same evaluation, as ``hypergrad_norm_at_y`` is);
    - ``hypergrad_norm_at_y`` and ``linsys_residual``: the first like the
      hypergradient's v* part; the second needs no solve.

    No solve goes beyond ``FLOOR`` relative accuracy, and where the problem
    has no bound (or ``rtol`` is None) both solves use the fixed relative
    tolerance ``REFERENCE_TOL``. The solves of one call of
    :meth:`evaluate` or :meth:`inner_solution` stop with
    :class:`EvaluationTimeLimit` after :data:`EVALUATION_TIME_LIMIT`
    seconds. Every conjugate-gradient solve (Newton's
    and the linear systems') is preconditioned by the problem's
    ``hessian_preconditioner`` where it has one: the stopping tests stay
    on the residual of the system itself, so the bounds above hold as they
    are.

    Parameters
    ----------
    problem : BilevelProblem
        The problem on the solvers' device; its data is used in float64.
    rtol : float or None
        The relative accuracy of the metrics (default :data:`METRIC_RTOL`).
    """

    def __init__(self, problem, rtol=METRIC_RTOL):
        self.problem = problem.to(problem.device, torch.float64)
        # A problem's own closed-form products (checked against automatic
        # differentiation by the tests) make evaluations cheaper.
        self.oracles = TimeLimitedOracles(self.problem, "closed_form" if (
            self.problem.has_closed_form_derivatives) else "reverse")
        self.rtol = rtol
        y0 = self.problem.y0
        self.max_cg_steps = min(10 * y0.numel(), MAX_REFERENCE_CG_STEPS)
        self.forget_warm_starts()

    def forget_warm_starts(self):
        """Start the next solves from y0 and 0, as at the first evaluation,
        instead of from the last y*, v* and solve at the solver's y."""
        self._y_star = self.problem.y0.clone()
        self._v_star = torch.zeros_like(self.problem.y0)
        self._v_at_y = torch.zeros_like(self.problem.y0)

    def strong_convexity(self, x):
        """mu(x) when the accuracy is set by error bounds, else None."""
        if self.rtol is None:
            return None
        mu = self.problem.inner_strong_convexity(x)
        return mu if mu is not None and mu > 0 else None

    @contextlib.contextmanager
    def time_limit(self):
        """The deadline of the solves within: :data:`EVALUATION_TIME_LIMIT`
        from the outermost entry."""
        if self.oracles.deadline is not None:
            yield
            return
        self.oracles.deadline = time.monotonic() + EVALUATION_TIME_LIMIT
        try:
            yield
        finally:
            self.oracles.deadline = None

    # -- y*(x) ----------------------------------------------------------

    def inner_solution(self, x, y=None, y_error=None):
        with self.time_limit():
            return self._inner_solution(x, y, y_error)

    def _inner_solution(self, x, y=None, y_error=None):
        """y*(x) by Newton-CG, from the last y* or from the solver's ``y``
        (whichever has the smaller gradient).

        ``y_error``: a function of the current iterate giving the error of
        y* that is enough there; None asks for the accuracy that the value
        and the distance to ``y`` need.
        """
        start = self._y_star if torch.isfinite(self._y_star).all() else (
            self.problem.y0)
        if y is not None and norm(self.oracles.grad_inner(x, y)) < norm(
                self.oracles.grad_inner(x, start)):
            start = y
        mu = self.strong_convexity(x)
        if mu is None:
            self._y_star = newton_cg(
                self.oracles, x, start, tol=REFERENCE_TOL,
                max_cg_steps=self.max_cg_steps,
                preconditioner_at=self.problem.hessian_preconditioner)
            return self._y_star
        y_error = y_error or (lambda y_star: self.y_error_needed(
            x, y_star, y))
        self._y_star = newton_cg(
            self.oracles, x, start, tol=0.0, max_cg_steps=self.max_cg_steps,
            gradient_target=lambda y_star: mu * y_error(y_star),
            preconditioner_at=self.problem.hessian_preconditioner)
        return self._y_star

    def y_error_needed(self, x, y_star, y):
        """The error of y* at which the value and the inner gap are within
        ``rtol / SAFETY`` of themselves (to first order)."""
        target = self.rtol / SAFETY
        scale = max(1.0, norm(y_star))
        _, grad_y_f = self.oracles.grad_outer(x, y_star)
        needed = target * abs(float(self.problem.f(x, y_star))) / max(
            norm(grad_y_f), 1e-300)
        if y is not None:
            needed = min(needed, target * norm(y - y_star))
        return max(needed, FLOOR * scale)

    # -- linear systems -------------------------------------------------

    def linear_solve(self, x, y, starts, residual_target=None):
        """w ~ d2_yy g(x, y)^-1 d_y f(x, y) by CG from the one of ``starts``
        with the smallest residual, with d_x f(x, y) and the residual norm
        ||A w - b||.

        ``residual_target`` (a function of (w, d_x f, d_y f)) gives the
        residual that is enough; CG runs again from its last iterate until
        it is met. None: the fixed relative tolerance ``REFERENCE_TOL``.
        """
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y)
        scale = max(1.0, norm(grad_y_f))
        matvec = self.oracles.hessian_at(x, y)
        preconditioner = self.problem.hessian_preconditioner(x, y)
        candidates = [start for start in starts
                      if torch.isfinite(start).all()]
        residuals = [norm(matvec(start) - grad_y_f) for start in candidates]
        w, residual = min(zip(candidates, residuals), key=lambda c: c[1],
                          default=(torch.zeros_like(grad_y_f),
                                   norm(grad_y_f)))
        if residual_target is None:
            w, _ = conjugate_gradient(matvec, grad_y_f, x0=w,
                                      tol=REFERENCE_TOL * scale,
                                      max_iter=self.max_cg_steps,
                                      preconditioner=preconditioner)
            return w, grad_x_f, norm(matvec(w) - grad_y_f)
        for _ in range(MAX_REFINEMENTS):
            target = max(residual_target(w, grad_x_f, grad_y_f),
                         FLOOR * scale)
            if residual <= target:
                break
            w, _ = conjugate_gradient(matvec, grad_y_f, x0=w, tol=target,
                                      max_iter=self.max_cg_steps,
                                      preconditioner=preconditioner)
            residual = norm(matvec(w) - grad_y_f)
        return w, grad_x_f, residual

    def hypergradient_at(self, x, y, starts, mu=None):
        """d_x f(x, y) - d2_xy g(x, y) w with w = A(x, y)^-1 d_y f(x, y),
        solved from the best of ``starts``: the hypergradient formula
        (LancBiO paper, Section 2) at any y. Returns it and w.

        With ``mu``, w is solved until the error it causes in the formula's
        norm, ``||d2_xy g w|| / ||w|| * ||A w - b|| / mu``, is below
        ``rtol / SAFETY`` times the norm."""
        if mu is None:
            w, grad_x_f, _ = self.linear_solve(x, y, starts)
            return grad_x_f - self.oracles.cross(x, y, w), w

        def residual_target(w, grad_x_f, grad_y_f):
            cross = self.oracles.cross(x, y, w)
            formula = norm(grad_x_f - cross)
            # The cross product's gain on w, or on b before any solve.
            probe, probe_cross = (w, cross) if norm(w) > 0 else (
                grad_y_f, self.oracles.cross(x, y, grad_y_f))
            gain = norm(probe_cross) / max(norm(probe), 1e-300)
            return mu * self.rtol / SAFETY * formula / max(gain, 1e-300)

        w, grad_x_f, _ = self.linear_solve(x, y, starts, residual_target)
        return grad_x_f - self.oracles.cross(x, y, w), w

    def hypergradient(self, x):
        """d phi(x): the formula at y*(x), with v*(x) warm-started."""
        with self.time_limit():
            mu = self.strong_convexity(x)
            y_star = self.inner_solution(x)
            hypergradient, self._v_star = self.hypergradient_at(
                x, y_star, (self._v_star,), mu)
        return hypergradient, y_star

    def divergence_rule(self, start):
        """The :class:`DivergenceRule` of the curves that leave from
        (x0, y0), where this ``evaluate`` gave ``start``."""
        return DivergenceRule(start, norm(self.inner_solution(
            self.problem.x0)))

    def evaluate(self, x, y, v, second_order=True):
        """The accuracy metrics of the results table at a solver's (x, y, v).

        Non-finite iterates give NaN everywhere. ``second_order=False``
        leaves out (NaN) the metrics of :data:`SECOND_ORDER_METRICS`, which
        need linear solves.
        """
        with self.time_limit():
            return self._evaluate(x, y, v, second_order)

    def unknown_metrics(self):
        """Every metric of :meth:`evaluate`, NaN: what a point whose
        iterates are not finite, or whose evaluation ran out of time,
        reports."""
        return dict.fromkeys(("value", "inner_gap", *SECOND_ORDER_METRICS),
                             math.nan)

    def _evaluate(self, x, y, v, second_order):
        metrics = self.unknown_metrics()
        to64 = dict(device=self.problem.device, dtype=torch.float64)
        x, y = x.detach().to(**to64), y.detach().to(**to64)
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            return metrics
        y_star = self.inner_solution(x, y)
        if second_order:
            if v is not None:
                v = v.detach().to(**to64)
            hypergradient, at_y, y_star = self.second_order(x, y, y_star, v)
            metrics["hypergrad_norm"] = norm(hypergradient)
            # What the LancBiO paper's synthetic figures approximate: the
            # formula at the solver's own y (its few inner steps at a small
            # step barely move y), with an exact linear solve.
            metrics["hypergrad_norm_at_y"] = norm(at_y)
            if v is not None:
                _, grad_y_f = self.oracles.grad_outer(x, y)
                metrics["linsys_residual"] = norm(
                    self.oracles.hvp(x, y, v) - grad_y_f)
        metrics.update(value=float(self.problem.f(x, y_star)),
                       inner_gap=norm(y - y_star))
        return metrics

    def second_order(self, x, y, y_star, v=None):
        """The hypergradient at y*, the formula at y, and y* refined until
        its error is small enough for the hypergradient too. The solver's
        ``v`` is a candidate start of both solves."""
        mu = self.strong_convexity(x)
        solver_v = () if v is None else (v,)
        at_y, self._v_at_y = self.hypergradient_at(
            x, y, (self._v_at_y, *solver_v), mu)
        for _ in range(MAX_REFINEMENTS):
            # The solve at y is a start too: close to v* when y is near y*.
            hypergradient, self._v_star = self.hypergradient_at(
                x, y_star, (self._v_star, self._v_at_y, *solver_v), mu)
            distance = norm(y - y_star)
            if mu is None or distance == 0:
                break
            # The formula's sensitivity to y, measured between y and y*.
            sensitivity = norm(hypergradient - at_y) / distance
            y_error = norm(self.oracles.grad_inner(x, y_star)) / mu
            needed = self.rtol / SAFETY * norm(hypergradient) / max(
                sensitivity, 1e-300)
            if sensitivity * y_error <= self.rtol / SAFETY * norm(
                    hypergradient) or y_error <= FLOOR * max(
                        1.0, norm(y_star)):
                break
            y_star = self.inner_solution(
                x, y, y_error=lambda point, needed=needed: min(
                    needed, self.y_error_needed(x, point, y)))
        return hypergradient, at_y, y_star


class DivergenceRule:
    """Whether a curve's point shows that it diverged, judged against the
    metrics at the start ``(x0, y0)``: non-finite iterates or value, a y
    that ran away from y*(x) (:data:`INNER_GAP_GROWTH`), or a value far
    above the start's (:data:`VALUE_RISE`).

    Parameters
    ----------
    start : dict
        ``ReferenceMetrics.evaluate`` at ``(x0, y0)``.
    y_star_norm : float
        ``||y*(x0)||``: the scale of the gap when y0 = y*(x0).
    """

    def __init__(self, start, y_star_norm):
        gap_scale = max(start["inner_gap"], y_star_norm) or 1.0
        self.max_inner_gap = INNER_GAP_GROWTH * gap_scale
        self.max_value = start["value"] + VALUE_RISE * max(
            abs(start["value"]), 1.0)

    def __call__(self, metrics):
        value, gap = metrics["value"], metrics["inner_gap"]
        return not (math.isfinite(value) and math.isfinite(gap)
                    and gap <= self.max_inner_gap
                    and value <= self.max_value)
