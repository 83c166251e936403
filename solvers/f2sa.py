from benchmark_utils.published_variants import (F2SA_OUTER_DECAY, ORIGINAL,
                                                check_variant)
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import (check_at_least, check_int,
                                        check_positive)


class Solver(BilevelSolver):
    """F2SA (Kwon, Kwon, Wright and Nowak, Algorithm 1): gradient descent on
    the penalty L_lambda(x, y) = f(x, y) + lambda (g(x, y) - g(x, z)), with
    z ~ argmin g(x, .) and y ~ argmin f(x, .) + lambda g(x, .), each tracked
    by T warm-started gradient steps; lambda_k = min(penalty_init +
    penalty_growth k, penalty_max), so the O(1/lambda) bias of the penalty
    shrinks. No second-order oracle. ``y`` reports z, the estimate of
    y*(x). With ``batch_size``, each of its stochastic gradients draws a
    batch of its own (Algorithm 1's independent samples: the y and z steps
    and the two terms of the x step's difference).
    ``variant='lancbio_code'``: the LancBiO authors' F2SA, y step gamma
    (d_y f + lambda d_y g), lambda_{k+1} = lambda_k + penalty_growth /
    (k + 1) from penalty_init without a cap, outer step
    gamma_x / (k + 1)^(1/7). Per outer iteration:
    3 T + 3 gradients (each on a batch, B / n of a full pass), no HVP, no
    cross product."""

    name = "F2SA"
    warm_starts_v = False
    parameters = {
        "n_inner_steps": [10],
        "step_size_inner": ["auto"],
        # 1.0 diverges on the quadratic dataset once lambda is large: the
        # x step multiplies the inner tracking errors by lambda.
        "step_size_outer": [0.3],
        "penalty_init, penalty_growth, penalty_max": [(1.0, 1.0, 1e3)],
        "batch_size": ["full"],
        "variant": [ORIGINAL],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high) on a log scale, integers where both bounds are.
    tuning_space = {
        "n_inner_steps": (1, 100),
        "penalty_growth": (0.1, 10.0),
    }
    parameter_template = (
        "T={n_inner_steps},inner={step_size_inner},outer={step_size_outer},"
        "lambda={penalty_init}+{penalty_growth}k<={penalty_max},"
        "batch={batch_size},variant={variant}")
    references = [
        "J. Kwon, D. Kwon, S. Wright and R. Nowak, 'A fully first-order "
        "method for stochastic bilevel optimization', ICML 2023",
    ]

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 0)
        check_positive("penalty_init", self.penalty_init)
        check_at_least("penalty_growth", self.penalty_growth, 0.0)
        check_at_least("penalty_max", self.penalty_max, self.penalty_init)
        check_variant(self.variant)

    def init_state(self):
        self.y_penalty = self.y   # y ~ argmin f + lambda g, from y0
        self.penalty = self.penalty_init   # the authors' lambda_k

    def step(self, x, z, v):
        if self.variant == ORIGINAL:
            lam = min(self.penalty_init + self.penalty_growth * self.n_outer,
                      self.penalty_max)
            y_step, x_step = self.inner_step, self.outer_step
        else:
            lam = self.penalty
            self.penalty += self.penalty_growth / (self.n_outer + 1)
            # gamma (d_y f + lambda d_y g) = (gamma lambda) (d_y f / lambda
            # + d_y g).
            y_step = self.inner_step * lam
            x_step = self.decayed(self.outer_step, F2SA_OUTER_DECAY)
        y = self.y_penalty
        for _ in range(self.n_inner_steps):
            # z on g with step gamma; y on f + lambda g with step
            # gamma / lambda (alpha_k lambda_k = gamma_k): both see the same
            # curvature of g, so the difference y - z, which tends to
            # -A^{-1} d_y f / lambda, converges at the rate of gradient
            # descent on g whatever lambda is.
            _, grad_y_f = self.oracles.grad_outer(x, y, self.outer_batch())
            y, z = (y - y_step * (grad_y_f / lam + self.oracles.grad_inner(
                        x, y, self.inner_batch())),
                    z - self.inner_step * self.oracles.grad_inner(
                        x, z, self.inner_batch()))
        # d_x L_lambda, with d g*(x) = d_x g(x, z):
        # lambda (d_x g(x, y) - d_x g(x, z)) ~ -d2_xy g v, first order.
        grad_x_f, _ = self.oracles.grad_outer(x, y, self.outer_batch())
        self.y_penalty = y
        return x - x_step * (grad_x_f + lam * (
            self.oracles.grad_inner_x(x, y, self.inner_batch())
            - self.oracles.grad_inner_x(x, z, self.inner_batch()))), z, None
