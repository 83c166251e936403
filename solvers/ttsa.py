import torch

from benchmark_utils.linalg.neumann import neumann_sample
from benchmark_utils.published_variants import (OUTER_STEP_FLOOR, ORIGINAL,
                                                check_variant,
                                                neumann_then_descent)
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_at_least, check_int


class Solver(BilevelSolver):
    """TTSA (Hong, Wai, Wang and Yang, Algorithm 1): a single loop on two
    time scales. Each iteration takes one step on y of size
    beta_k = beta0 (k+1)^(-b); then, at (x_k, y_{k+1}), v = (Q + 1) eta
    (I - eta A)^p b with p uniform on {0, ..., Q} (unbiased for the Neumann
    sum of Q HVPs), and a step on x of size alpha_k = alpha0 (k+1)^(-a)
    along d_x f - d2_xy g v. With ``batch_size``, every gradient, every
    factor (I - eta A) and the cross product is estimated on a batch of its
    own, as in the paper, so that the product of independent factors stays
    unbiased. ``variant='lancbio_code'``: the LancBiO authors' v, eta
    (I - eta A)^p b with p uniform on {0, ..., Q-1} and no factor Q, then Q
    gradient steps on v, and alpha_k floored at 0.01 (Q more HVPs). Per
    outer iteration: 2 gradients, p HVPs (Q / 2 on average), 1 cross
    product (each on a batch, B / n of a full pass)."""

    name = "TTSA"
    warm_starts_v = False
    parameters = {
        "n_neumann_steps": [9],
        "step_size_inner": ["auto"],
        "step_size_linsys": ["auto"],
        "step_size_outer": [1.0],
        "decay_inner, decay_outer": [(0.4, 0.6)],
        "batch_size": ["full"],
        "variant": [ORIGINAL],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high), integers on a log scale.
    tuning_space = {
        "n_neumann_steps": (1, 1000),
    }
    parameter_template = (
        "Q={n_neumann_steps},inner={step_size_inner},"
        "linsys={step_size_linsys},outer={step_size_outer},"
        "decay={decay_inner}/{decay_outer},batch={batch_size},"
        "variant={variant}")
    references = [
        "M. Hong, H.-T. Wai, Z. Wang and Z. Yang, 'A two-timescale stochastic "
        "algorithm framework for bilevel optimization: complexity analysis "
        "and application to actor-critic', SIAM J. Optim. 2023",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_neumann_steps", self.n_neumann_steps, 0)
        check_at_least("decay_inner", self.decay_inner, 0.0)
        check_at_least("decay_outer", self.decay_outer, 0.0)
        check_variant(self.variant)
        if self.variant != ORIGINAL:
            check_int("n_neumann_steps", self.n_neumann_steps, 1)
        self.seed = self.get_seed(use_repetition=True)

    def init_state(self):
        # Seeded at each run, so a run repeats its truncation draws.
        self.generator = torch.Generator().manual_seed(self.seed)

    def step(self, x, y, v):
        # Hong et al.'s weakly convex case takes alpha ~ K^(-3/5) and
        # beta ~ K^(-2/5) for a horizon of K iterations; decaying in k with
        # the same exponents keeps the run open-ended.
        # Fast time scale: one step on y at (x_k, y_k).
        y = y - self.decayed(self.inner_step, self.decay_inner) * (
            self.oracles.grad_inner(x, y, self.inner_batch()))
        # Slow time scale: hypergradient estimate at (x_k, y_{k+1}).
        grad_x_f, b = self.oracles.grad_outer(x, y, self.outer_batch())
        estimate = (neumann_sample if self.variant == ORIGINAL
                    else neumann_then_descent)
        v = estimate(
            lambda u: self.oracles.hvp(x, y, u, self.second_order_batch()),
            b, self.linsys_step, self.n_neumann_steps, self.generator)
        alpha = self.decayed(self.outer_step, self.decay_outer)
        if self.variant != ORIGINAL:
            alpha = max(alpha, self.on_x(OUTER_STEP_FLOOR))
        x = x - alpha * (grad_x_f - self.oracles.cross(
            x, y, v, self.second_order_batch()))
        return x, y, v
