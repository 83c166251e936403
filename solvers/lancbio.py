import math

from benchmark_utils.linalg.inner_loops import inner_gradient_descent
from benchmark_utils.linalg.krylov import LanczosProcess
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_at_least, check_int


class Solver(BilevelSolver):
    """LancBiO (Yang, Gao and Yuan, Algorithm 2): the linear system
    A_k v = b_k is approximated in a Krylov subspace that a *dynamic* Lanczos
    process grows by one vector per outer iteration, each with the current
    Hessian A_k. Every m iterations the process restarts from the residual
    of the current approximation v_bar, and v_k = v_bar + dv_k where dv_k
    solves the small tridiagonal system of the basis (residual correction).
    Cost per outer iteration: 1 HVP, plus 1 at each restart (1 + 1/m)."""

    name = "LancBiO"
    parameters = {
        "n_inner_steps": [5],
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
        "subspace_dim, max_subspace_dim, subspace_growth, growth_every": [
            (1, 80, 1.1, 20)],
        "n_warmup_steps": [0],
    }
    parameter_template = (
        "T={n_inner_steps},inner={step_size_inner},outer={step_size_outer},"
        "m={subspace_dim}..{max_subspace_dim}x{subspace_growth}"
        "/{growth_every},m0={n_warmup_steps}")
    references = [
        "Y. Yang, B. Gao and Y.-x. Yuan, 'LancBiO: dynamic Lanczos-aided "
        "bilevel optimization via Krylov subspace', ICLR 2025",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 0)
        check_int("subspace_dim", self.subspace_dim, 1)
        check_int("max_subspace_dim", self.max_subspace_dim,
                  self.subspace_dim)
        check_at_least("subspace_growth", self.subspace_growth, 1.0)
        check_int("growth_every", self.growth_every, 1)
        check_int("n_warmup_steps", self.n_warmup_steps, 0,
                  self.subspace_dim - 1)

    def init_state(self):
        self.m, self.lanczos = self.subspace_dim, None

    def step(self, x, y, v):
        # Every growth_every iterations, m <- min(ceil(growth m), max).
        if self.n_outer > 0 and self.n_outer % self.growth_every == 0:
            self.m = min(math.ceil(self.subspace_growth * self.m),
                         self.max_subspace_dim)
        # Lower level: T gradient steps from the previous y (warm start).
        y = inner_gradient_descent(self.oracles, x, y, self.n_inner_steps,
                                   self.inner_step)
        grad_x_f, b = self.oracles.grad_outer(x, y)

        def hessian(u):   # A_k = d2_yy g(x_k, y_{k+1})
            return self.oracles.hvp(x, y, u)

        # Restart once the basis has m vectors: v_bar takes the current
        # approximation and the process starts from its residual.
        if (self.lanczos is None or self.lanczos.dim >= self.m
                or self.lanczos.exhausted):
            self.v_bar, self.a_v_bar = v, hessian(v)
            self.lanczos = LanczosProcess(b - self.a_v_bar)
        # Dynamic Lanczos step with the current Hessian (one HVP).
        self.lanczos.extend(hessian)
        # Residual correction: T_j z = Q_j^T (b_k - A v_bar), with the
        # current b_k and the product A v_bar kept from the restart.
        v = self.v_bar + self.lanczos.solve(
            self.lanczos.project(b - self.a_v_bar))
        # The first m0 steps after a restart only build the subspace (a
        # basis that starts exhausted, at dim 0, moves x only if m0 = 0).
        if self.n_warmup_steps == 0 or self.lanczos.dim > self.n_warmup_steps:
            x = x - self.outer_step * (grad_x_f - self.oracles.cross(x, y, v))
        return x, y, v
