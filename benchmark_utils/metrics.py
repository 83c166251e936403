"""Accurate reference quantities and the metrics of the results table.

Nothing here is charged to a solver: the metrics have their own, uncounted
oracles, on a float64 copy of the problem so that a float32 run is judged
with the same accuracy as a float64 one.
"""
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
        instead of from the last y* and v*."""
        self._y_star = self.problem.y0.clone()
        self._v_star = torch.zeros_like(self.problem.y0)

    def inner_solution(self, x):
        """y*(x), by Newton-CG warm-started at the last y*."""
        start = self._y_star if torch.isfinite(self._y_star).all() else (
            self.problem.y0)
        self._y_star = newton_cg(self.oracles, x, start, tol=self.tol,
                                 max_cg_steps=self.max_cg_steps)
        return self._y_star

    def adjoint_solution(self, x, y_star):
        """v*(x): A v = b at (x, y*(x)), by warm-started CG."""
        _, grad_y_f = self.oracles.grad_outer(x, y_star)
        start = self._v_star if torch.isfinite(self._v_star).all() else None
        v_star, _ = conjugate_gradient(
            lambda u: self.oracles.hvp(x, y_star, u), grad_y_f, x0=start,
            tol=self.tol * max(1.0, float(torch.linalg.vector_norm(grad_y_f))),
            max_iter=self.max_cg_steps,
        )
        self._v_star = v_star
        return v_star

    def hypergradient(self, x):
        """d phi(x) = d_x f(x, y*) - d2_xy g(x, y*) v*  (LancBiO paper,
        Section 2)."""
        y_star = self.inner_solution(x)
        v_star = self.adjoint_solution(x, y_star)
        grad_x_f, _ = self.oracles.grad_outer(x, y_star)
        return grad_x_f - self.oracles.cross(x, y_star, v_star), y_star

    def evaluate(self, x, y, v):
        """The accuracy metrics of the results table at a solver's (x, y, v).

        Non-finite iterates give NaN everywhere, which benchopt reads as a
        diverged curve.
        """
        nan = float("nan")
        to64 = dict(device=self.problem.device, dtype=torch.float64)
        x, y = x.detach().to(**to64), y.detach().to(**to64)
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            return dict(value=nan, hypergrad_norm=nan, inner_gap=nan,
                        linsys_residual=nan)
        hypergradient, y_star = self.hypergradient(x)
        metrics = dict(
            value=float(self.problem.f(x, y_star)),
            hypergrad_norm=float(torch.linalg.vector_norm(hypergradient)),
            inner_gap=float(torch.linalg.vector_norm(y - y_star)),
            linsys_residual=nan,
        )
        if v is not None:
            v = v.detach().to(**to64)
            _, grad_y_f = self.oracles.grad_outer(x, y)
            residual = self.oracles.hvp(x, y, v) - grad_y_f
            metrics["linsys_residual"] = float(
                torch.linalg.vector_norm(residual))
        return metrics
