import math

import torch

from benchmark_utils.linalg.inner_loops import inner_gradient_descent
from benchmark_utils.linalg.neumann import neumann_sample
from benchmark_utils.published_variants import (OUTER_STEP_FLOOR, ORIGINAL,
                                                check_variant,
                                                neumann_then_descent)
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_int


class Solver(BilevelSolver):
    """BSA (Ghadimi and Wang, Algorithm 2): T gradient steps on y from the
    previous y, then v = (Q + 1) eta (I - eta A)^p b with p uniform on
    {0, ..., Q}, an unbiased estimate of the Neumann sum of Q HVPs at p
    HVPs, and a step on x of size alpha0 / sqrt(k + 1) along
    d_x f - d2_xy g v. With ``batch_size``, each inner step, b, each factor
    (I - eta A) and the cross product draw a batch of their own, as in the
    paper (independent factors keep the estimate unbiased).
    ``variant='lancbio_code'``: the LancBiO authors' v, eta (I - eta A)^p b
    with p uniform on {0, ..., Q-1} and no factor Q, then Q gradient steps
    on v, and alpha_k floored at 0.01 (Q more HVPs). Per outer
    iteration: T + 1 gradients, p HVPs (Q / 2 on average), 1 cross product
    (each on a batch, B / n of a full pass)."""

    name = "BSA"
    warm_starts_v = False
    parameters = {
        "n_inner_steps": [10],
        "n_neumann_steps": [9],
        "step_size_inner": ["auto"],
        "step_size_linsys": ["auto"],
        "step_size_outer": [1.0],
        "batch_size": ["full"],
        "variant": [ORIGINAL],
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
        "batch={batch_size},variant={variant}")
    references = [
        "S. Ghadimi and M. Wang, 'Approximation methods for bilevel "
        "programming', arXiv:1802.02246 2018",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 0)
        check_int("n_neumann_steps", self.n_neumann_steps, 0)
        check_variant(self.variant)
        if self.variant != ORIGINAL:
            check_int("n_neumann_steps", self.n_neumann_steps, 1)
        self.seed = self.get_seed(use_repetition=True)

    def init_state(self):
        # Seeded at each run, so a run repeats its truncation draws.
        self.generator = torch.Generator().manual_seed(self.seed)

    def step(self, x, y, v):
        # Inner loop from the previous y (warm start), constant step.
        y = inner_gradient_descent(self.oracles, x, y, self.n_inner_steps,
                                   self.inner_step, self.inner_batch)
        grad_x_f, b = self.oracles.grad_outer(x, y, self.outer_batch())
        estimate = (neumann_sample if self.variant == ORIGINAL
                    else neumann_then_descent)
        v = estimate(
            lambda u: self.oracles.hvp(x, y, u, self.second_order_batch()),
            b, self.linsys_step, self.n_neumann_steps, self.generator)
        # Diminishing outer step alpha_k = alpha0 / sqrt(k + 1), as for
        # stochastic gradients: the random truncation makes v noisy.
        alpha = self.outer_step / math.sqrt(self.n_outer + 1)
        if self.variant != ORIGINAL:
            alpha = max(alpha, self.on_x(OUTER_STEP_FLOOR))
        x = x - alpha * (grad_x_f - self.oracles.cross(
            x, y, v, self.second_order_batch()))
        return x, y, v
