import math

import torch

from benchmark_utils.linalg.inner_loops import inner_gradient_descent
from benchmark_utils.linalg.krylov import RestartedLanczos
from benchmark_utils.published_variants import (ORIGINAL, calendar_schedule,
                                                check_variant,
                                                largest_calendar_basis)
from benchmark_utils.sampling import FULL_BATCH
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import (check_at_least, check_int,
                                        check_positive)


class Solver(BilevelSolver):
    """LancBiO (Yang, Gao and Yuan, Algorithm 2): the linear system
    A_k v = b_k is approximated in a Krylov subspace that a *dynamic* Lanczos
    process grows by one vector per outer iteration, each with the current
    Hessian A_k. Every m iterations the process restarts from the residual
    of the current approximation v_bar, and v_k = v_bar + dv_k where dv_k
    solves the small tridiagonal system of the basis (residual correction).
    The schedule of m ('auto') is the paper's for the problem at hand (its
    ``subspace_schedule``). A safeguard, a departure from the paper that
    ``orthogonality_tol=None`` turns off, also restarts the process when a
    new basis vector overlaps the older ones by more than
    ``orthogonality_tol``: each vector comes from a different Hessian, and
    a basis that lost orthogonality no longer describes the current one;
    so does a step that would make the tridiagonal T_j indefinite (see
    ``benchmark_utils.linalg.krylov.LanczosProcess``).
    ``variant='lancbio_code'``: the LancBiO authors' schedule, m growing at
    k % growth_every == growth_every - 1 (k from 1) and restarts on the
    calendar m == 1 or k % m == 1, whatever the basis holds.

    With ``batch_size`` (the LancBiO paper's stochastic experiment), each
    inner step, b_k, each Lanczos step's HVP and the cross product draw a
    batch of their own, and the residual correction is dropped: the process
    restarts from b_k every m iterations and v_k = Q_j T_j^{-1} Q_j^T b_k,
    as the authors' stochastic code does (a product A v_bar on one batch
    would be a stale, noisy residual for all the batches after it).

    Per outer iteration: T + 1 gradients, 1 HVP plus 1 at each restart
    (1 + 1/m; 1 with minibatches), 1 cross product (each on a batch, B / n
    of a full pass)."""

    name = "LancBiO"
    parameters = {
        "n_inner_steps": [5],
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
        "subspace_dim, max_subspace_dim, subspace_growth, growth_every": [
            (1, "auto", "auto", "auto")],
        "n_warmup_steps": [0],
        "orthogonality_tol": [1e-2],
        "batch_size": ["full"],
        "variant": [ORIGINAL],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high), integers on a log scale.
    tuning_space = {
        "n_inner_steps": (1, 100),
    }
    parameter_template = (
        "T={n_inner_steps},inner={step_size_inner},outer={step_size_outer},"
        "m={subspace_dim}..{max_subspace_dim}x{subspace_growth}"
        "/{growth_every},m0={n_warmup_steps},orth={orthogonality_tol},"
        "batch={batch_size},variant={variant}")
    references = [
        "Y. Yang, B. Gao and Y.-x. Yuan, 'LancBiO: dynamic Lanczos-aided "
        "bilevel optimization via Krylov subspace', ICLR 2025",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 0)
        check_int("subspace_dim", self.subspace_dim, 1)
        self.schedule = [
            default if value == "auto" else value for value, default in zip(
                (self.max_subspace_dim, self.subspace_growth,
                 self.growth_every),
                self.oracles.problem.subspace_schedule)]
        check_int("max_subspace_dim", self.schedule[0], self.subspace_dim)
        check_at_least("subspace_growth", self.schedule[1], 1.0)
        check_int("growth_every", self.schedule[2], 1)
        check_int("n_warmup_steps", self.n_warmup_steps, 0,
                  self.subspace_dim - 1)
        if self.orthogonality_tol is not None:
            check_positive("orthogonality_tol", self.orthogonality_tol)
        check_variant(self.variant)

    def init_state(self):
        self.m = self.subspace_dim
        max_dim, growth, every = self.schedule
        if self.variant != ORIGINAL:
            # The calendar's cycles can outgrow m around its changes.
            max_dim = largest_calendar_basis(self.m, growth, every, max_dim)
        self.linear_system = RestartedLanczos(
            self.y0, max_dim, self.orthogonality_tol,
            residual_correction=self.batch_size == FULL_BATCH)

    def step(self, x, y, v):
        max_dim, growth, every = self.schedule
        restart = None   # once the basis holds m vectors
        if self.variant != ORIGINAL:
            self.m, restart = calendar_schedule(self.n_outer + 1, self.m,
                                                growth, every, max_dim)
        elif self.n_outer > 0 and self.n_outer % every == 0:
            # Every growth_every iterations, m <- min(ceil(growth m), max).
            self.m = min(math.ceil(growth * self.m), max_dim)
        # Lower level: T gradient steps from the previous y (warm start).
        y = inner_gradient_descent(self.oracles, x, y, self.n_inner_steps,
                                   self.inner_step, self.inner_batch)
        grad_x_f, b = self.oracles.grad_outer(x, y, self.outer_batch())
        # One dynamic Lanczos step with A_k = d2_yy g(x_k, y_{k+1}) (one
        # HVP, and one more at a restart), then the residual correction.
        batch = self.second_order_batch()
        v = self.linear_system.step(
            lambda u: self.oracles.hvp(x, y, u, batch), b, v, self.m, restart)
        # The first m0 steps after a restart only build the subspace.
        if self.linear_system.steps_since_restart > self.n_warmup_steps:
            x = torch.add(x, grad_x_f - self.oracles.cross(
                x, y, v, self.second_order_batch()), alpha=-self.outer_step)
        return x, y, v
