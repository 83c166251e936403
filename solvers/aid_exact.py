import torch

from benchmark_utils.linalg.inner_loops import newton_cg
from benchmark_utils.linalg.krylov import conjugate_gradient
from benchmark_utils.sampling import FULL_BATCH
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import ParameterError, check_positive

#: Why AID-exact has no minibatch version.
NO_MINIBATCHES = (
    "AID-exact solves y*(x) and A v = b to a tolerance on the full data, "
    "and has no minibatch version: its batch_size must be 'full'.")
#: Why AID-exact leaves out a non-convex lower level.
NOT_CONVEX = (
    "AID-exact solves y*(x) to a tolerance by Newton-CG, which needs a "
    "convex lower level; the {name} problem's is not convex (its Newton "
    "systems can be indefinite and y*(x) is not unique).")


class Solver(BilevelSolver):
    """AID-exact, the reference that every method approximates: gradient
    descent on phi with the implicit-differentiation hypergradient
    d_x f - d2_xy g v (Pedregosa, 2016, here with exact solves), from:
    y*(x) by Newton-CG and A v = b by conjugate gradient, both warm-started
    from the previous outer iteration and stopped at the relative tolerance
    ``tol``. Per outer iteration: as many gradients and HVPs as the solves
    take, and 1 cross product. Full batch only: a ``batch_size`` other than
    'full' skips it (with the reason), so that a sweep over batch sizes of
    every solver leaves it out; so does a problem whose lower level is not
    convex."""

    name = "AID-exact"
    parameters = {
        "tol": [1e-10],
        "step_size_outer": [1.0],
        "batch_size": ["full"],
    }
    parameter_template = "tol={tol},outer={step_size_outer},batch={batch_size}"
    references = [
        "F. Pedregosa, 'Hyperparameter optimization with approximate "
        "gradient', ICML 2016",
    ]
    test_config = {"step_size_outer": 0.5}

    def skip(self, **objective):
        if self.batch_size != FULL_BATCH:
            return True, NO_MINIBATCHES
        return super().skip(**objective)

    def check_parameters(self):
        if self.batch_size != FULL_BATCH:
            raise ParameterError(NO_MINIBATCHES)
        problem = self.oracles.problem
        if not problem.lower_level_convex:
            raise ParameterError(NOT_CONVEX.format(name=problem.name))
        check_positive("tol", self.tol)
        # A tolerance under the dtype's resolution cannot be met: the solves
        # would run to their iteration caps at every outer iteration.
        self.solve_tol = max(self.tol, torch.finfo(self.y0.dtype).eps)
        # Round-off slows CG down past n steps; the reference metrics allow
        # the same 10 n.
        self.max_cg_steps = 10 * self.y0.numel()

    def step(self, x, y, v):
        y = newton_cg(self.oracles, x, y, tol=self.solve_tol)
        grad_x_f, b = self.oracles.grad_outer(x, y)
        # ||A v - b|| <= tol ||b||: ||b|| is read back with CG's first
        # stopping test, in the same host synchronisation.
        v, _ = conjugate_gradient(
            self.oracles.hessian_at(x, y), b, x0=v, rtol=self.solve_tol,
            max_iter=self.max_cg_steps)
        x = x - self.outer_step * (grad_x_f - self.oracles.cross(x, y, v))
        return x, y, v
