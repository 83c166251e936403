"""Reference metrics of a problem whose lower level is not convex (a neural
network, ``BilevelProblem.lower_level_convex = False``; design.md, section
8), and the choice of the reference metrics for a problem.

There y*(x) is not unique and d2_yy g can be indefinite: no number that
presupposes a unique y* is reported. Always reported, at the solver's own
point and with no solve:

- ``value_at_y``: f(x, y);
- ``inner_grad_norm``: ||d_y g(x, y)||, the lower level's stationarity;
- the problem's test metrics (added by the objective).

The **local reference** (``second_order_metrics=True``): from the solver's
own y, a local solve of the lower level to y_loc, by L-BFGS
(``torch.optim.LBFGS``, strong Wolfe line search, :data:`LBFGS_HISTORY`
pairs), stopped once ``||d_y g(x, y_loc)||_inf`` is at most
:data:`LOCAL_SOLVE_RTOL` times its value at the start (x0, y0), after at
most :data:`LOCAL_SOLVE_MAX_ITER` iterations. Where it got there, the
smallest eigenvalue of d2_yy g(x, y_loc) is estimated by
:data:`LANCZOS_STEPS` Lanczos steps from a fixed random vector
(``hessian_min_eigenvalue``). Where that estimate is positive, y_loc is a
strict local minimum, near which y*(x) is locally a smooth function of x,
and these are reported:

- ``value``: f(x, y_loc), the local hyper-objective;
- ``inner_gap``: ||y - y_loc||;
- ``hypergrad_norm``: the hypergradient formula at y_loc, its linear
  system solved by conjugate gradient to a residual of
  :data:`LOCAL_LINSYS_RTOL` ||d_y f|| within :data:`LOCAL_MAX_CG_STEPS`
  steps (NaN where it is not met);
- ``linsys_residual``: ||d2_yy g(x, y) v - d_y f(x, y)|| at the solver's
  own point, as for every problem.

Elsewhere they are NaN, and ``hessian_min_eigenvalue`` says why: NaN when
the local solve did not reach its tolerance (or the second-order metrics
are off), <= 0 when the Hessian at y_loc is not positive definite.
``hypergrad_norm_at_y`` is always NaN: the formula at the solver's own y
needs d2_yy g positive definite there, which nothing checks. Every solve is
bounded by an iteration count, so an evaluation costs at most
1.25 LOCAL_SOLVE_MAX_ITER + 4 gradients (L-BFGS's evaluations, each with
a value of g), LANCZOS_STEPS + LOCAL_MAX_CG_STEPS + 5 HVPs and a cross
product.

A curve diverges (:class:`StationarityDivergenceRule`) when its iterates
turn non-finite (v included), when its ``inner_grad_norm`` grows
INNER_GAP_GROWTH times past the start's, or when its ``value_at_y`` rises
VALUE_RISE times above the start's.
"""
import math

import torch

from benchmark_utils.linalg.krylov import LanczosProcess, conjugate_gradient
from benchmark_utils.metrics import (INNER_GAP_GROWTH, VALUE_RISE,
                                     ReferenceMetrics, norm)

#: Most L-BFGS iterations of one local solve.
LOCAL_SOLVE_MAX_ITER = 50
#: The local solve stops once the largest entry of d_y g(x, y_loc) is this
#: many times the largest entry of d_y g(x0, y0); it is converged there.
LOCAL_SOLVE_RTOL = 1e-6
#: Pairs kept by L-BFGS.
LBFGS_HISTORY = 20
#: Lanczos steps of the smallest-eigenvalue estimate.
LANCZOS_STEPS = 20
#: Seed of its start vector: the same estimate at the same point.
LANCZOS_SEED = 0
#: Most conjugate-gradient steps of the hypergradient's linear system, and
#: its relative residual target.
LOCAL_MAX_CG_STEPS = 50
LOCAL_LINSYS_RTOL = 1e-6
#: The columns of a non-convex lower level besides the common ones.
LOCAL_METRICS = ("value_at_y", "inner_grad_norm", "hessian_min_eigenvalue")


def reference_metrics_for(problem):
    """The reference metrics of ``problem`` (on its device, in float64):
    :class:`ReferenceMetrics` for a convex lower level,
    :class:`LocalReferenceMetrics` otherwise."""
    if problem.lower_level_convex:
        return ReferenceMetrics(problem)
    return LocalReferenceMetrics(problem)


def max_norm(tensor):
    return float(torch.linalg.vector_norm(tensor, ord=math.inf))


class LocalReferenceMetrics(ReferenceMetrics):
    """The metrics of a non-convex lower level (the module's docstring),
    with the uncounted float64 oracles of :class:`ReferenceMetrics`.

    Parameters
    ----------
    problem : BilevelProblem
        The problem, ``lower_level_convex`` False; its data is used in
        float64.
    """

    def __init__(self, problem):
        super().__init__(problem, rtol=None)
        x0, y0 = self.problem.x0, self.problem.y0
        self.gradient_tol = LOCAL_SOLVE_RTOL * max_norm(
            self.oracles.grad_inner(x0, y0))
        generator = torch.Generator().manual_seed(LANCZOS_SEED)
        self.lanczos_start = torch.randn(
            y0.shape, generator=generator, dtype=torch.float64).to(y0)

    def divergence_rule(self, start):
        return StationarityDivergenceRule(start)

    def unknown_metrics(self):
        return {**super().unknown_metrics(),
                **dict.fromkeys(LOCAL_METRICS, math.nan)}

    def _evaluate(self, x, y, v, second_order):
        """The metrics at a solver's (x, y, v) (the module's docstring),
        within the evaluation's time limit (:meth:`evaluate`); non-finite
        iterates (v included) give NaN everywhere. ``second_order=False``
        leaves out the local reference."""
        metrics = self.unknown_metrics()
        to64 = dict(device=self.problem.device, dtype=torch.float64)
        x, y = x.detach().to(**to64), y.detach().to(**to64)
        iterates = [x, y]
        if v is not None:
            v = v.detach().to(**to64)
            iterates.append(v)
        if not all(torch.isfinite(tensor).all() for tensor in iterates):
            return metrics
        metrics.update(value_at_y=float(self.problem.f(x, y)),
                       inner_grad_norm=norm(self.oracles.grad_inner(x, y)))
        if not second_order:
            return metrics
        y_local, converged = self.local_solution(x, y)
        if not converged:
            return metrics
        eigenvalue = self.smallest_eigenvalue(x, y_local)
        metrics["hessian_min_eigenvalue"] = eigenvalue
        if not eigenvalue > 0:
            return metrics
        metrics.update(value=float(self.problem.f(x, y_local)),
                       inner_gap=norm(y - y_local),
                       hypergrad_norm=self.hypergradient_norm(x, y_local, v))
        if v is not None:
            _, grad_y_f = self.oracles.grad_outer(x, y)
            metrics["linsys_residual"] = norm(
                self.oracles.hvp(x, y, v) - grad_y_f)
        return metrics

    def local_solution(self, x, y, max_iter=None):
        """(y_loc, converged): L-BFGS on g(x, .) from ``y`` (the module's
        docstring), for at most ``max_iter`` iterations (default
        :data:`LOCAL_SOLVE_MAX_ITER`), and whether it met its tolerance."""
        point = y.clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS(
            [point], lr=1.0, max_iter=max_iter or LOCAL_SOLVE_MAX_ITER,
            tolerance_grad=self.gradient_tol, tolerance_change=0.0,
            history_size=LBFGS_HISTORY, line_search_fn="strong_wolfe")

        def closure():
            point.grad = self.oracles.grad_inner(x, point.detach())
            return self.oracles.value_inner(x, point.detach())

        optimizer.step(closure)
        y_local = point.detach()
        return y_local, max_norm(self.oracles.grad_inner(
            x, y_local)) <= self.gradient_tol

    def smallest_eigenvalue(self, x, y):
        """The smallest Ritz value of LANCZOS_STEPS Lanczos steps on
        d2_yy g(x, y): an estimate of its smallest eigenvalue, from above;
        <= 0 where Lanczos found the Hessian indefinite."""
        n_steps = min(LANCZOS_STEPS, y.numel())
        process = LanczosProcess(self.lanczos_start, max_dim=n_steps)
        hessian = self.oracles.hessian_at(x, y)
        while process.dim < n_steps and process.extend(hessian):
            pass
        return float(process.ritz_values()[0])

    def hypergradient_norm(self, x, y_local, v):
        """||d_x f - d2_xy g w|| at y_loc, w from conjugate gradient on
        d2_yy g w = d_y f, warm-started from the last evaluation's w or the
        solver's v (the smaller residual); NaN where the residual target is
        not met within LOCAL_MAX_CG_STEPS steps."""
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y_local)
        hessian = self.oracles.hessian_at(x, y_local)
        starts = [start for start in (self._v_star, v)
                  if start is not None and torch.isfinite(start).all()]
        start = min(starts, key=lambda w: norm(hessian(w) - grad_y_f))
        target = LOCAL_LINSYS_RTOL * norm(grad_y_f)
        w, _ = conjugate_gradient(hessian, grad_y_f, x0=start, tol=target,
                                  max_iter=LOCAL_MAX_CG_STEPS)
        self._v_star = w
        if not norm(hessian(w) - grad_y_f) <= target:
            return float("nan")
        return norm(grad_x_f - self.oracles.cross(x, y_local, w))


class StationarityDivergenceRule:
    """Whether a curve's point on a non-convex lower level shows that it
    diverged, judged against the metrics at the start ``(x0, y0)`` without
    any y*: non-finite iterates (NaN metrics), a lower-level gradient
    ``inner_grad_norm`` above INNER_GAP_GROWTH times the start's, or a
    ``value_at_y`` above the start's by VALUE_RISE times max(|start|, 1).

    Parameters
    ----------
    start : dict
        ``LocalReferenceMetrics.evaluate`` at ``(x0, y0)``.
    """

    def __init__(self, start):
        self.max_inner_grad_norm = INNER_GAP_GROWTH * (
            start["inner_grad_norm"] or 1.0)
        self.max_value = start["value_at_y"] + VALUE_RISE * max(
            abs(start["value_at_y"]), 1.0)

    def __call__(self, metrics):
        value, gradient = metrics["value_at_y"], metrics["inner_grad_norm"]
        return not (math.isfinite(value) and math.isfinite(gradient)
                    and gradient <= self.max_inner_grad_norm
                    and value <= self.max_value)
