from benchmark_utils.linalg.neumann import neumann_series
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_int


class Solver(BilevelSolver):
    """STABLE (Chen, Sun, Xiao and Yin, Algorithm 1), matrix-free: a single
    loop on one time scale whose lower-level step is corrected by the
    implicit function theorem, dy*/dx = -A^-1 d2_yx g, so that y follows
    y*(x) as x moves:

        v_k     = A_k^-1 b_k,
        x_{k+1} = x_k - alpha (d_x f - d2_xy g v_k),
        y_{k+1} = y_k - beta d_y g - A_k^-1 d2_yx g (x_{k+1} - x_k),

    at (x_k, y_k). The paper keeps running estimates of the Hessian and of
    the cross-derivative matrix; here, as in the LancBiO experiments, both
    products with A_k^-1 are Neumann series of Q HVPs with step eta
    (``step_size_linsys``), and no matrix of the size of y is ever formed.
    With ``batch_size``, every gradient, HVP and cross product draws a
    batch of its own. Per outer iteration: 2 gradients, 2 Q HVPs, 2 cross
    products (one each way; each on a batch, B / n of a full pass)."""

    name = "STABLE"
    warm_starts_v = False
    parameters = {
        "n_neumann_steps": [20],
        "step_size_inner": ["auto"],
        "step_size_linsys": ["auto"],
        "step_size_outer": [1.0],
        "batch_size": ["full"],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high), integers on a log scale.
    tuning_space = {
        "n_neumann_steps": (1, 1000),
    }
    parameter_template = (
        "Q={n_neumann_steps},inner={step_size_inner},"
        "linsys={step_size_linsys},outer={step_size_outer},"
        "batch={batch_size}")
    references = [
        "T. Chen, Y. Sun, Q. Xiao and W. Yin, 'A single-timescale method for "
        "stochastic bilevel optimization', AISTATS 2022",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_neumann_steps", self.n_neumann_steps, 1)

    def inverse_hessian(self, x, y, rhs):
        """A^-1 rhs at (x, y), by the truncated Neumann series."""
        return neumann_series(
            lambda u: self.oracles.hvp(x, y, u, self.second_order_batch()),
            rhs, self.linsys_step, self.n_neumann_steps)

    def step(self, x, y, v):
        grad_y_g = self.oracles.grad_inner(x, y, self.inner_batch())
        grad_x_f, b = self.oracles.grad_outer(x, y, self.outer_batch())
        v = self.inverse_hessian(x, y, b)
        x_next = x - self.outer_step * (grad_x_f - self.oracles.cross(
            x, y, v, self.second_order_batch()))
        # The implicit-function correction -A^-1 d2_yx g (x_{k+1} - x_k).
        drift = self.inverse_hessian(x, y, self.oracles.cross_transpose(
            x, y, x_next - x, self.second_order_batch()))
        return x_next, y - self.inner_step * grad_y_g - drift, v
