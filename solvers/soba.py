from benchmark_utils.solver import BilevelSolver


class Solver(BilevelSolver):
    """SOBA (Dagréou, Ablin, Vaiter and Moreau, Algorithm 1): a single loop
    that moves y, v and x at once, each by one step along a direction
    evaluated at the current (x, y, v); the same step size rho drives y and
    v. Per outer iteration: 2 gradients, 1 HVP, 1 cross product."""

    name = "SOBA"
    parameters = {
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
    }
    parameter_template = "inner={step_size_inner},outer={step_size_outer}"
    references = [
        "M. Dagréou, P. Ablin, S. Vaiter and T. Moreau, 'A framework for "
        "bilevel optimization that enables stochastic and global variance "
        "reduction algorithms', NeurIPS 2022",
    ]
    test_config = {"step_size_outer": 0.5}

    def step(self, x, y, v):
        grad_y_g = self.oracles.grad_inner(x, y)
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y)
        hvp, cross = self.oracles.hvp_and_cross(x, y, v)
        # D_y, D_v, D_x at (x_k, y_k, v_k), then the joint update.
        return (x - self.outer_step * (grad_x_f - cross),
                y - self.inner_step * grad_y_g,
                v - self.inner_step * (hvp - grad_y_f))
