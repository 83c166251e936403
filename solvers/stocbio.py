from benchmark_utils.linalg.inner_loops import inner_gradient_descent
from benchmark_utils.linalg.neumann import neumann_series
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_int


class Solver(BilevelSolver):
    """stocBiO (Ji, Yang and Liang, Algorithm 2): T gradient steps on y from
    the previous y, then v = eta sum_{i=0}^{Q} (I - eta A)^i b, the Neumann
    series truncated after Q + 1 terms (Q HVPs by the recurrence of the
    terms), and one step on x along d_x f - d2_xy g v. With ``batch_size``,
    each inner step, b, each HVP of the recurrence (the paper's independent
    batches B_j of its Algorithm 3) and the cross product draw a batch of
    their own. Per outer iteration: T + 1 gradients, Q HVPs, 1 cross
    product (each on a batch, B / n of a full pass)."""

    name = "stocBiO"
    warm_starts_v = False
    parameters = {
        "n_inner_steps": [10],
        "n_neumann_steps": [10],
        "step_size_inner": ["auto"],
        "step_size_linsys": ["auto"],
        "step_size_outer": [1.0],
        "batch_size": ["full"],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high), integers on a log scale.
    tuning_space = {
        "n_inner_steps": (1, 100),
        "n_neumann_steps": (1, 1000),
    }
    parameter_template = (
        "T={n_inner_steps},Q={n_neumann_steps},inner={step_size_inner},"
        "linsys={step_size_linsys},outer={step_size_outer},"
        "batch={batch_size}")
    references = [
        "K. Ji, J. Yang and Y. Liang, 'Bilevel optimization: convergence "
        "analysis and enhanced design', ICML 2021",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 0)
        check_int("n_neumann_steps", self.n_neumann_steps, 1)

    def step(self, x, y, v):
        # T inner steps, warm-started from the previous iteration's y.
        y = inner_gradient_descent(self.oracles, x, y, self.n_inner_steps,
                                   self.inner_step, self.inner_batch)
        grad_x_f, b = self.oracles.grad_outer(x, y, self.outer_batch())
        # v_Q from Q Hessian-vector products at (x_k, y_k^T).
        v = neumann_series(
            lambda u: self.oracles.hvp(x, y, u, self.second_order_batch()),
            b, self.linsys_step, self.n_neumann_steps)
        # Hypergradient estimate d_x f - d2_xy g v_Q, and the step on x.
        x = x - self.outer_step * (grad_x_f - self.oracles.cross(
            x, y, v, self.second_order_batch()))
        return x, y, v
