from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_at_least, check_momentum


class Solver(BilevelSolver):
    """MA-SOBA (Chen, Xiao and Balasubramanian, Algorithm 1): SOBA's joint
    steps on y and v, and on x along a moving average of SOBA's direction
    D_x,

        h_k = momentum h_{k-1} + (1 - momentum) D_x(x_k, y_k, v_k),

    which averages out the noise of the minibatch estimates of D_x. Each
    direction on its own batch, as SOBA's; ``decay_inner``,
    ``decay_outer`` as SOBA's (0: constant steps). The paper's projection
    of v on a ball (for its analysis under relaxed smoothness) is left
    out: with a strongly convex g, v stays bounded. Per outer iteration: 2
    gradients, 1 HVP, 1 cross product (each on a batch, B / n of a full
    pass)."""

    name = "MA-SOBA"
    parameters = {
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
        "momentum": [0.9],
        "batch_size": ["full"],
        "decay_inner, decay_outer": [(0.0, 0.0)],
    }
    parameter_template = (
        "inner={step_size_inner},outer={step_size_outer},"
        "momentum={momentum},batch={batch_size},"
        "decay={decay_inner}/{decay_outer}")
    references = [
        "X. Chen, T. Xiao and K. Balasubramanian, 'Optimal algorithms for "
        "stochastic bilevel optimization under relaxed smoothness "
        "conditions', arXiv:2306.12067 2023",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_momentum("momentum", self.momentum)
        check_at_least("decay_inner", self.decay_inner, 0.0)
        check_at_least("decay_outer", self.decay_outer, 0.0)

    def init_state(self):
        self.average = None

    def step(self, x, y, v):
        grad_y_g = self.oracles.grad_inner(x, y, self.inner_batch())
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y, self.outer_batch())
        hvp, cross = self.oracles.hvp_and_cross(x, y, v,
                                                self.second_order_batch())
        d_x = grad_x_f - cross
        # The average starts at the first direction.
        self.average = d_x if self.average is None else (
            self.momentum * self.average + (1 - self.momentum) * d_x)
        rho = self.decayed(self.inner_step, self.decay_inner)
        gamma = self.decayed(self.outer_step, self.decay_outer)
        return (x - gamma * self.average, y - rho * grad_y_g,
                v - rho * (hvp - grad_y_f))
