from benchmark_utils.published_variants import ORIGINAL, check_variant
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_at_least


class Solver(BilevelSolver):
    """SOBA (Dagréou, Ablin, Vaiter and Moreau, Algorithm 1): a single loop
    that moves y, v and x at once, each by one step along a direction
    evaluated at the current (x, y, v); the same step size rho drives y and
    v. With ``batch_size``, each direction is estimated on its own
    minibatch, as in the paper, and the steps may decay as in its
    Theorem 1, rho_k = rho (k+1)^(-2/5) and gamma_k = gamma (k+1)^(-3/5)
    (``decay_inner``, ``decay_outer``; 0: constant).
    ``variant='lancbio_code'``: the LancBiO authors' sequential SOBA, y, then
    v at the new y, then x with the new v (AmIGO-GD with T = Q = 1; its HVP
    and cross product, at two v, take a pass each).
    Per outer iteration: 2 gradients, 1 HVP, 1 cross product (each on a
    batch, B / n of a full pass)."""

    name = "SOBA"
    parameters = {
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
        "batch_size": ["full"],
        "decay_inner, decay_outer": [(0.0, 0.0)],
        "variant": [ORIGINAL],
    }
    parameter_template = (
        "inner={step_size_inner},outer={step_size_outer},batch={batch_size},"
        "decay={decay_inner}/{decay_outer},variant={variant}")
    references = [
        "M. Dagréou, P. Ablin, S. Vaiter and T. Moreau, 'A framework for "
        "bilevel optimization that enables stochastic and global variance "
        "reduction algorithms', NeurIPS 2022",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_at_least("decay_inner", self.decay_inner, 0.0)
        check_at_least("decay_outer", self.decay_outer, 0.0)
        check_variant(self.variant)

    def step(self, x, y, v):
        if self.variant != ORIGINAL:
            return self.sequential_step(x, y, v)
        grad_y_g = self.oracles.grad_inner(x, y, self.inner_batch())
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y, self.outer_batch())
        hvp, cross = self.oracles.hvp_and_cross(x, y, v,
                                                self.second_order_batch())
        rho = self.decayed(self.inner_step, self.decay_inner)
        gamma = self.decayed(self.outer_step, self.decay_outer)
        # D_y, D_v, D_x at (x_k, y_k, v_k), then the joint update.
        return (x - gamma * (grad_x_f - cross),
                y - rho * grad_y_g,
                v - rho * (hvp - grad_y_f))

    def sequential_step(self, x, y, v):
        """The LancBiO authors' SOBA: each direction at the iterates
        already updated in this iteration."""
        rho = self.decayed(self.inner_step, self.decay_inner)
        gamma = self.decayed(self.outer_step, self.decay_outer)
        y = y - rho * self.oracles.grad_inner(x, y, self.inner_batch())
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y, self.outer_batch())
        v = v - rho * (self.oracles.hvp(x, y, v, self.second_order_batch())
                       - grad_y_f)
        x = x - gamma * (grad_x_f - self.oracles.cross(
            x, y, v, self.second_order_batch()))
        return x, y, v
