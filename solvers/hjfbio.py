from benchmark_utils.linalg.finite_differences import (
    default_relative_step, hvp_and_cross_fd, hvp_and_cross_fd_along)
from benchmark_utils.published_variants import ORIGINAL, check_variant
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_positive


class Solver(BilevelSolver):
    """HJFBiO (Huang, Algorithm 1): a single loop that moves y, v and x once
    per iteration, as SOBA does, but replaces the HVP A v and the cross
    product d2_xy g v by central differences of gradients of g at
    y +- h v / ||v|| (``benchmark_utils.linalg.finite_differences``). The
    paper's projection of v on a ball (for its nonconvex-PL analysis) is
    left out: with a strongly convex g, v stays bounded. With
    ``batch_size``, d_y g, d f and the finite differences draw a batch each
    (the difference's two gradients share theirs: on two batches, it would
    divide their noise by 2h). ``variant='lancbio_code'``: the LancBiO
    authors' HJFBiO, differences at y +- delta v (v not normalised, delta
    absolute) and v moved with the y step (their v0, uniform on [0, 1), is
    the objective's ``v_start='uniform'``). Per outer iteration: 4
    gradients (d_y g, d f, and d g at two points; each on a batch, B / n of
    a full pass), no HVP, no cross product."""

    name = "HJFBiO"
    parameters = {
        "step_size_inner": ["auto"],
        "step_size_linsys": ["auto"],
        # SOBA's 1.0: with a smaller outer step, x outruns the slow modes
        # of y and v and this single loop drifts away on the quadratic
        # dataset (kappa = 100).
        "step_size_outer": [1.0],
        "delta": ["auto"],
        "batch_size": ["full"],
        "variant": [ORIGINAL],
    }
    parameter_template = (
        "inner={step_size_inner},linsys={step_size_linsys},"
        "outer={step_size_outer},delta={delta},batch={batch_size},"
        "variant={variant}")
    references = [
        "F. Huang, 'Optimal Hessian/Jacobian-free nonconvex-PL bilevel "
        "optimization', ICML 2024",
    ]

    def check_parameters(self):
        # 'auto': eps^(1/3) of the dtype, the step that balances truncation
        # and round-off errors of a central difference.
        if self.delta == "auto":
            self.fd_step = default_relative_step(self.y0.dtype)
        else:
            check_positive("delta", self.delta)
            self.fd_step = float(self.delta)
        check_variant(self.variant)
        self.differences, self.v_step = hvp_and_cross_fd, self.linsys_step
        if self.variant != ORIGINAL:
            self.differences = hvp_and_cross_fd_along
            self.v_step = self.inner_step

    def step(self, x, y, v):
        grad_y_g = self.oracles.grad_inner(x, y, self.inner_batch())
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y, self.outer_batch())
        # Finite-difference estimates of A v and d2_xy g v: 2 gradients
        # instead of 1 HVP and 1 cross product.
        hvp, cross = self.differences(self.oracles, x, y, v, self.fd_step,
                                      self.second_order_batch())
        # Algorithm 1's updates, all from (x_t, y_t, v_t): a gradient step
        # on g in y, on 1/2 v^T A v - b^T v in v, and on the hypergradient
        # estimate d_x f - d2_xy g v in x.
        return (x - self.outer_step * (grad_x_f - cross),
                y - self.inner_step * grad_y_g,
                v - self.v_step * (hvp - grad_y_f))
