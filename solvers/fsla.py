from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_at_least, check_momentum
from benchmark_utils.variance_reduction import storm


class Solver(BilevelSolver):
    """FSLA (Li, Gu and Huang, Algorithm 1), fully single loop: one step on
    y along d_y g, then one on v along A v - d_y f at the new y, then one
    on x along a STORM estimate of the hypergradient estimate
    h = d_x f - d2_xy g v at the new (y, v):

        d_k = h(x_k, y_{k+1}, v_{k+1}) + momentum_k (d_{k-1} - h(x_{k-1},
              y_k, v_k)),

    both estimates h of a pair on the same batches. The paper's schedule
    (its Theorem 1) as in benchopt's benchmark_bilevel: the steps and
    eta_k = 1 - momentum_k decay as (k + 1)^(-1/2), from eta_0 = 0.1 (the
    weight of the past tends to 1); the same step on y and on v, as
    there. Decays of 0 give constant steps. Per outer iteration: 3 gradients, 1
    HVP, 1 cross product, and 1 gradient and 1 cross product more at the
    previous point from the second iteration on (each on a batch, B / n of
    a full pass)."""

    name = "FSLA"
    parameters = {
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
        "momentum": [0.9],
        "batch_size": ["full"],
        "decay_inner, decay_outer, decay_momentum": [(0.5, 0.5, 0.5)],
    }
    parameter_template = (
        "inner={step_size_inner},outer={step_size_outer},"
        "momentum={momentum},batch={batch_size},"
        "decay={decay_inner:.2g}/{decay_outer:.2g}/{decay_momentum:.2g}")
    references = [
        "J. Li, B. Gu and H. Huang, 'A fully single loop algorithm for "
        "bilevel optimization without Hessian inverse', AAAI 2022",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_momentum("momentum", self.momentum)
        for name in ("decay_inner", "decay_outer", "decay_momentum"):
            check_at_least(name, getattr(self, name), 0.0)

    def init_state(self):
        self.previous = None

    def hypergradient(self, x, y, v, inner, outer):
        """d_x f - d2_xy g v at (x, y, v), d f on ``outer``, the cross
        product on ``inner``."""
        grad_x_f, _ = self.oracles.grad_outer(x, y, outer)
        return grad_x_f - self.oracles.cross(x, y, v, inner)

    def step(self, x, y, v):
        rho = self.decayed(self.inner_step, self.decay_inner)
        y = y - rho * self.oracles.grad_inner(x, y, self.inner_batch())
        _, grad_y_f = self.oracles.grad_outer(x, y, self.outer_batch())
        v = v - rho * (self.oracles.hvp(
            x, y, v, self.second_order_batch()) - grad_y_f)
        inner, outer = self.second_order_batch(), self.outer_batch()
        new = self.hypergradient(x, y, v, inner, outer)
        self.direction = new if self.previous is None else storm(
            new, self.hypergradient(*self.previous, inner, outer),
            self.direction,
            self.decayed_momentum(self.momentum, self.decay_momentum))
        self.previous = (x, y, v)
        return (x - self.decayed(self.outer_step, self.decay_outer)
                * self.direction, y, v)
