from functools import partial

from benchmark_utils.linalg.inner_loops import inner_gradient_descent
from benchmark_utils.linalg.krylov import conjugate_gradient
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_choice, check_int


class Solver(BilevelSolver):
    """AmIGO (Arbel and Mairal, Algorithm 1, deterministic): T gradient steps
    on y and Q steps of a linear solver on 1/2 v^T A v - b^T v, both
    warm-started from the previous outer iteration (amortization), then one
    step on x along d_x f - d2_xy g v. The linear solver is gradient descent
    (AmIGO-GD, step ``step_size_linsys``) or conjugate gradient (AmIGO-CG).
    With ``batch_size``, each inner step, b and the cross product draw a
    batch of their own, and so does each gradient step on v (the paper's
    stochastic Algorithm 1); conjugate gradient, which needs one matrix,
    takes its Q steps on one batch's Hessian. Per outer iteration: T + 1
    gradients, Q HVPs (GD) or Q + 1 (CG: one for the warm start's
    residual), 1 cross product (each on a batch, B / n of a full pass)."""

    name = "AmIGO"
    parameters = {
        "inner_solver": ["gd", "cg"],
        "n_inner_steps": [5],
        "n_linsys_steps": [5],
        "step_size_inner": ["auto"],
        "step_size_linsys": ["auto"],
        "step_size_outer": [1.0],
        "batch_size": ["full"],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high), integers on a log scale.
    tuning_space = {
        "n_inner_steps": (1, 100),
        "n_linsys_steps": (1, 100),
    }
    parameter_template = (
        "{inner_solver},T={n_inner_steps},Q={n_linsys_steps},"
        "inner={step_size_inner},linsys={step_size_linsys},"
        "outer={step_size_outer},batch={batch_size}")
    references = [
        "M. Arbel and J. Mairal, 'Amortized implicit differentiation for "
        "stochastic bilevel optimization', ICLR 2022",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_choice("inner_solver", self.inner_solver, ("gd", "cg"))
        check_int("n_inner_steps", self.n_inner_steps, 0)
        check_int("n_linsys_steps", self.n_linsys_steps, 1)

    def step(self, x, y, v):
        y = inner_gradient_descent(self.oracles, x, y, self.n_inner_steps,
                                   self.inner_step, self.inner_batch)
        grad_x_f, b = self.oracles.grad_outer(x, y, self.outer_batch())
        # Q steps on 1/2 v^T A_k v - b_k^T v from v_{k-1}, A_k =
        # d2_yy g(x_k, y) (on a batch).
        if self.inner_solver == "gd":
            for _ in range(self.n_linsys_steps):
                v = v - self.linsys_step * (self.oracles.hvp(
                    x, y, v, self.second_order_batch()) - b)
        else:   # tol=None: exactly Q steps, no host synchronisation.
            hessian = partial(self.oracles.hvp, x, y,
                              batch=self.second_order_batch())
            v, _ = conjugate_gradient(hessian, b, x0=v, tol=None,
                                      max_iter=self.n_linsys_steps)
        x = x - self.outer_step * (grad_x_f - self.oracles.cross(
            x, y, v, self.second_order_batch()))
        return x, y, v
