from benchmark_utils.linalg.unrolled import (unrolled_gradient_descent,
                                             unrolled_hypergradient)
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_int


class Solver(BilevelSolver):
    """ITD, iterative differentiation: T gradient steps on y from the previous
    outer iterate's y_T (warm start), then the exact derivative of
    x -> f(x, y_T(x)) through those steps by reverse mode, back-propagated
    through the last K of them (K = T: Franceschi et al.'s reverse-HG; K < T:
    Shaban et al.'s K-step truncated back-propagation, K-RMD), then one step
    on x. With ``batch_size``, each inner step draws a batch, and the
    reverse pass differentiates each step on the batch it took: the
    derivative of the stochastic unroll. Per outer iteration: T + 1
    gradients, K cross products and max(K - 1, 0) HVPs (the last step back
    needs no new adjoint; each on a batch, B / n of a full pass)."""

    name = "ITD"
    warm_starts_v = False
    parameters = {
        "n_inner_steps": [20],
        "n_backprop_steps": [None],
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
        "batch_size": ["full"],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high), integers on a log scale.
    tuning_space = {
        "n_inner_steps": (1, 1000),
    }
    parameter_template = (
        "T={n_inner_steps},K={n_backprop_steps},inner={step_size_inner},"
        "outer={step_size_outer},batch={batch_size}")
    references = [
        "A. Shaban, C.-A. Cheng, N. Hatch and B. Boots, 'Truncated "
        "back-propagation for bilevel optimization', AISTATS 2019",
        "L. Franceschi, M. Donini, P. Frasconi and M. Pontil, 'Forward and "
        "reverse gradient-based hyperparameter optimization', ICML 2017",
        "D. Maclaurin, D. Duvenaud and R. P. Adams, 'Gradient-based "
        "hyperparameter optimization through reversible learning', ICML 2015",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 0)
        if self.n_backprop_steps is not None:
            check_int("n_backprop_steps", self.n_backprop_steps, 0,
                      self.n_inner_steps)

    def step(self, x, y, v):
        # Forward pass from y_0 = the previous y_T, keeping y_0..y_{T-1}.
        y, steps = unrolled_gradient_descent(
            self.oracles, x, y, self.n_inner_steps, self.inner_step,
            self.inner_batch)
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y, self.outer_batch())
        # Reverse pass: d/dx f(x, y_T(x)), with y_0 constant in x.
        hypergradient = unrolled_hypergradient(
            self.oracles, x, steps, grad_x_f, grad_y_f, self.inner_step,
            self.n_backprop_steps)
        return x - self.outer_step * hypergradient, y, None
