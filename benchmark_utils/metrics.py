"""Accurate reference quantities and the metrics of the results table.

Nothing here is charged to a solver: the metrics have their own, uncounted
oracles, on a float64 copy of the problem so that a float32 run is judged
with the same accuracy as a float64 one.
"""
import math

import torch

from benchmark_utils.linalg.inner_loops import newton_cg
from benchmark_utils.linalg.krylov import conjugate_gradient
from benchmark_utils.oracles import Oracles

REFERENCE_TOL = 1e-12
#: Most CG steps of one reference solve. On the synthetic problem (kappa =
#: 1e5, n = 3,000) the longest solve takes 431 steps; the cap bounds an
#: evaluation at an extreme x (penalties driven to 0 make the lower level
#: nearly singular), where 10 dim(y) steps would take hours on news20.
MAX_REFERENCE_CG_STEPS = 3000
#: A curve has diverged once its y is this many times farther from y*(x)
#: than the start was (from y0 to y*(x0), or ||y*(x0)|| when y0 = y*(x0)).
INNER_GAP_GROWTH = 1e3
#: ... or once its value is above the start's by this many times
#: max(|value at the start|, 1).
VALUE_RISE = 10.0
#: The metrics that need v*(x) or a solve at the solver's y, which the
#: objective's ``second_order_metrics=False`` leaves out (NaN).
SECOND_ORDER_METRICS = ("hypergrad_norm", "hypergrad_norm_at_y",
                        "linsys_residual")


class ReferenceMetrics:
    """Computes phi(x), the exact hypergradient and the solver's errors.

    ``y*(x)`` comes from a globalised inexact Newton method (Newton-CG with
    Armijo backtracking) and ``v*(x)`` from conjugate gradient, both driven
    to a relative accuracy of ``tol`` and warm-started from the previous
    call, so that successive evaluations along a curve stay cheap.

    Parameters
    ----------
    problem : BilevelProblem
        The problem on the solvers' device; its data is used in float64.
    tol : float
        Relative accuracy: Newton stops once its step is below
        ``tol * max(1, ||y||)``, and CG once ||A v - b|| is below
        ``tol * max(1, ||b||)``.
    """

    def __init__(self, problem, tol=REFERENCE_TOL):
        self.problem = problem.to(problem.device, torch.float64)
        # A problem's own closed-form products (checked against automatic
        # differentiation by the tests) make evaluations cheaper.
        self.oracles = Oracles(self.problem, "closed_form" if (
            self.problem.has_closed_form_hvp) else "reverse")
        self.tol = tol
        y0 = self.problem.y0
        self.max_cg_steps = min(10 * y0.numel(), MAX_REFERENCE_CG_STEPS)
        self.forget_warm_starts()

    def forget_warm_starts(self):
        """Start the next solves from y0 and 0, as at the first evaluation,
        instead of from the last y*, v* and solve at the solver's y."""
        self._y_star = self.problem.y0.clone()
        self._v_star = torch.zeros_like(self.problem.y0)
        self._v_at_y = torch.zeros_like(self.problem.y0)

    def inner_solution(self, x):
        """y*(x), by Newton-CG warm-started at the last y*."""
        start = self._y_star if torch.isfinite(self._y_star).all() else (
            self.problem.y0)
        self._y_star = newton_cg(self.oracles, x, start, tol=self.tol,
                                 max_cg_steps=self.max_cg_steps)
        return self._y_star

    def linear_solve(self, x, y, start):
        """The solution of d2_yy g(x, y) w = d_y f(x, y), by CG from
        ``start``, and d_x f(x, y)."""
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y)
        start = start if torch.isfinite(start).all() else None
        w, _ = conjugate_gradient(
            lambda u: self.oracles.hvp(x, y, u), grad_y_f, x0=start,
            tol=self.tol * max(1.0, float(torch.linalg.vector_norm(grad_y_f))),
            max_iter=self.max_cg_steps,
        )
        return w, grad_x_f

    def hypergradient_at(self, x, y, v):
        """d_x f(x, y) - d2_xy g(x, y) w with w = A(x, y)^-1 d_y f(x, y),
        solved from ``v``: the hypergradient formula (LancBiO paper,
        Section 2) at any y. Returns it and w."""
        w, grad_x_f = self.linear_solve(x, y, v)
        return grad_x_f - self.oracles.cross(x, y, w), w

    def hypergradient(self, x):
        """d phi(x): the formula at y*(x), with v*(x) warm-started."""
        y_star = self.inner_solution(x)
        hypergradient, self._v_star = self.hypergradient_at(
            x, y_star, self._v_star)
        return hypergradient, y_star

    def evaluate(self, x, y, v, second_order=True):
        """The accuracy metrics of the results table at a solver's (x, y, v).

        Non-finite iterates give NaN everywhere. ``second_order=False``
        leaves out (NaN) the metrics of :data:`SECOND_ORDER_METRICS`, which
        need linear solves.
        """
        nan = float("nan")
        metrics = dict(value=nan, inner_gap=nan,
                       **dict.fromkeys(SECOND_ORDER_METRICS, nan))
        to64 = dict(device=self.problem.device, dtype=torch.float64)
        x, y = x.detach().to(**to64), y.detach().to(**to64)
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            return metrics
        y_star = self.inner_solution(x)
        metrics.update(value=float(self.problem.f(x, y_star)),
                       inner_gap=float(torch.linalg.vector_norm(y - y_star)))
        if not second_order:
            return metrics
        hypergradient, self._v_star = self.hypergradient_at(
            x, y_star, self._v_star)
        metrics["hypergrad_norm"] = float(
            torch.linalg.vector_norm(hypergradient))
        # What the LancBiO paper's synthetic figures approximate: the
        # formula at the solver's own y (its few inner steps at a small
        # step barely move y), with an exact linear solve.
        at_y, self._v_at_y = self.hypergradient_at(x, y, self._v_at_y)
        metrics["hypergrad_norm_at_y"] = float(
            torch.linalg.vector_norm(at_y))
        if v is not None:
            v = v.detach().to(**to64)
            _, grad_y_f = self.oracles.grad_outer(x, y)
            residual = self.oracles.hvp(x, y, v) - grad_y_f
            metrics["linsys_residual"] = float(
                torch.linalg.vector_norm(residual))
        return metrics


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
