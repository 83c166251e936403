import torch

from benchmark_utils.linalg.inner_loops import inner_gradient_descent
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_int, check_positive


class Solver(BilevelSolver):
    """BOME (Liu, Ye, Wright, Stone and Liu, Algorithm 1): min f(x, y) under
    the value-function constraint q(x, y) = g(x, y) - g*(x) <= 0, with g*(x)
    approximated by g(x, y_T), y_T from T gradient steps on g from y. Each
    iteration moves (x, y) jointly along d_f + lambda d_q, the dynamic
    barrier lambda = max(phi - <d_f, d_q>, 0) / ||d_q||^2, phi =
    eta ||d_q||^2 (eta: ``barrier_coefficient``), making q decrease at rate
    eta. No second-order oracle. With ``batch_size``, q and its gradient
    are estimated on one batch (both of its terms, so that their difference
    is not swamped by the batch's noise), the inner steps after the first
    and d f on batches of their own. Per outer iteration: T + 2 gradients
    (each on a batch, B / n of a full pass), no HVP, no cross product."""

    name = "BOME"
    warm_starts_v = False
    parameters = {
        "n_inner_steps": [10],
        "step_size_inner": ["auto"],
        "step_size_joint": ["auto"],
        "barrier_coefficient": [0.5],
        "batch_size": ["full"],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high), integers on a log scale.
    tuning_space = {
        "n_inner_steps": (1, 100),
    }
    parameter_template = (
        "T={n_inner_steps},inner={step_size_inner},joint={step_size_joint},"
        "eta={barrier_coefficient},batch={batch_size}")
    references = [
        "B. Liu, M. Ye, S. Wright, P. Stone and Q. Liu, 'BOME! Bilevel "
        "optimization made easy: a simple first-order approach', "
        "NeurIPS 2022",
    ]

    def check_parameters(self):
        # T = 0 would give y_T = y and q = 0: the constraint would be void.
        check_int("n_inner_steps", self.n_inner_steps, 1)
        check_positive("barrier_coefficient", self.barrier_coefficient)
        # One step xi for the joint (x, y) update, as in Liu et al. ('auto':
        # 1 / L of g keeps its y part, a step on g scaled by lambda,
        # stable), with x's part in the problem's outer-step unit. xi bounds
        # the accuracy: lambda grows like 1 / ||y - y*(x)|| and xi lambda L
        # must stay below 2, so y stalls at a distance from y*(x)
        # proportional to xi (and T adds a (1 - alpha mu)^T bias).
        self.joint_step = self.step_size("step_size_joint",
                                         self.step_size_joint)

    def step(self, x, y, v):
        # d g at (x, y) serves both q's gradient and the first inner step.
        batch = self.inner_batch()
        grad_x_g, grad_y_g = self.oracles.grad_inner_xy(x, y, batch)
        y_t = inner_gradient_descent(
            self.oracles, x, y - self.inner_step * grad_y_g,
            self.n_inner_steps - 1, self.inner_step, self.inner_batch)
        # d q with y_T held fixed (Liu et al.'s approximation of g*).
        d_q_x = grad_x_g - self.oracles.grad_inner_x(x, y_t, batch)
        d_q_y = grad_y_g
        d_f_x, d_f_y = self.oracles.grad_outer(x, y, self.outer_batch())
        norm2_q = (torch.dot(d_q_x, d_q_x) + torch.dot(d_q_y, d_q_y)
                   ).clamp_min(torch.finfo(y.dtype).tiny)
        inner = torch.dot(d_f_x, d_q_x) + torch.dot(d_f_y, d_q_y)
        # lambda_k = max(phi_k - <d f, d q>, 0) / ||d q||^2.
        lam = torch.clamp_min(self.barrier_coefficient * norm2_q - inner,
                              0) / norm2_q
        return (x - self.on_x(self.joint_step) * (d_f_x + lam * d_q_x),
                y - self.joint_step * (d_f_y + lam * d_q_y), None)
