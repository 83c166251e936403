from benchmark_utils.linalg.inner_loops import inner_gradient_descent
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import (check_at_least, check_int,
                                        check_positive)


class Solver(BilevelSolver):
    """PBGD (Shen and Chen, V-PBGD, Algorithm 1): gradient descent on the
    value-function penalty

        F_gamma(x, y) = f(x, y) + gamma (g(x, y) - g*(x)),

    with g*(x) = g(x, w) and d g*(x) = d_x g(x, w), w tracked by T
    warm-started gradient steps on g (step ``step_size_inner``); then one
    joint gradient step on (x, y) from the same point, on F_gamma / gamma
    (as the authors' code scales it): its curvature in (x, y) is that of
    g, whatever gamma, so y takes ``step_size_inner`` and x
    ``step_size_outer`` along

        d_x f / gamma + d_x g(x, y) - d_x g(x, w),   d_y f / gamma + d_y g,

    whose x part is about d phi(x) / gamma: x moves O(gamma) times slower
    than a hypergradient method's, the price of a penalty whose bias is
    O(1/gamma). gamma_k = min(penalty_init + penalty_growth k,
    penalty_max); by default it reaches 100 after about 2,000 iterations.
    No second-order oracle. ``y`` reports w, the estimate of y*(x). With
    ``batch_size``, each step on w, d f and the gradient of the penalty
    draw a batch of their own (both terms of the penalty on the same
    batch: one sample of F_gamma). Per outer iteration: T + 3 gradients
    (each on a batch, B / n of a full pass), no HVP, no cross product."""

    name = "PBGD"
    warm_starts_v = False
    parameters = {
        "n_inner_steps": [5],
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
        # Slow growth: x moves at a speed of 1 / gamma, and the bias at
        # gamma = 100 is about 1e-3 of the starting hypergradient on the
        # quadratic (tests/test_first_order_solvers.py).
        "penalty_init, penalty_growth, penalty_max": [(1.0, 0.05, 100.0)],
        "batch_size": ["full"],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high) on a log scale, integers where both bounds are.
    tuning_space = {
        "n_inner_steps": (1, 100),
        "penalty_growth": (0.005, 0.5),
    }
    parameter_template = (
        "T={n_inner_steps},inner={step_size_inner},outer={step_size_outer},"
        "gamma={penalty_init}+{penalty_growth}k<={penalty_max},"
        "batch={batch_size}")
    references = [
        "H. Shen and T. Chen, 'On penalty-based bilevel gradient descent "
        "method', ICML 2023",
    ]

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 1)
        check_positive("penalty_init", self.penalty_init)
        check_at_least("penalty_growth", self.penalty_growth, 0.0)
        check_at_least("penalty_max", self.penalty_max, self.penalty_init)

    def init_state(self):
        self.y_penalty = self.y   # y ~ argmin f + gamma g, from y0

    def step(self, x, w, v):
        gamma = min(self.penalty_init + self.penalty_growth * self.n_outer,
                    self.penalty_max)
        y = self.y_penalty
        w = inner_gradient_descent(self.oracles, x, w, self.n_inner_steps,
                                   self.inner_step, self.inner_batch)
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y, self.outer_batch())
        batch = self.inner_batch()
        grad_x_g, grad_y_g = self.oracles.grad_inner_xy(x, y, batch)
        grad_x_g_star = self.oracles.grad_inner_x(x, w, batch)
        # One step on (x, y) along the gradient of F_gamma / gamma (of
        # F_gamma itself for gamma < 1).
        scale = min(1.0, 1.0 / gamma)
        self.y_penalty = y - self.inner_step * (scale * grad_y_f + grad_y_g)
        return x - self.outer_step * (scale * grad_x_f + (
            grad_x_g - grad_x_g_star)), w, None
