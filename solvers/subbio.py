from benchmark_utils.linalg.inner_loops import inner_gradient_descent
from benchmark_utils.linalg.krylov import two_dimensional_galerkin
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_int


class Solver(BilevelSolver):
    """SubBiO (Yang, Gao and Yuan, Algorithm 1): v_k minimises the quadratic
    1/2 v^T A_k v - b_k^T v over the two-dimensional subspace
    span{b_k, (I - eta A_k) v_{k-1}}, i.e. solves a 2x2 projected system.
    Per outer iteration: T + 1 gradients, 3 HVPs (A b, A v, A A v), 1 cross
    product."""

    name = "SubBiO"
    parameters = {
        "n_inner_steps": [5],
        "step_size_inner": ["auto"],
        "step_size_linsys": ["auto"],
        "step_size_outer": [1.0],
    }
    parameter_template = (
        "T={n_inner_steps},inner={step_size_inner},"
        "linsys={step_size_linsys},outer={step_size_outer}")
    references = [
        "Y. Yang, B. Gao and Y.-x. Yuan, 'LancBiO: dynamic Lanczos-aided "
        "bilevel optimization via Krylov subspace', ICLR 2025",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 0)

    def step(self, x, y, v):
        y = inner_gradient_descent(self.oracles, x, y, self.n_inner_steps,
                                   self.inner_step)
        grad_x_f, b = self.oracles.grad_outer(x, y)
        a_b = self.oracles.hvp(x, y, b)
        a_v = self.oracles.hvp(x, y, v)
        a_a_v = self.oracles.hvp(x, y, a_v)
        # Second direction u = (I - eta A) v: one gradient step on the
        # quadratic from v, with A u from the products by linearity.
        u, a_u = v - self.linsys_step * a_v, a_v - self.linsys_step * a_a_v
        v = two_dimensional_galerkin(b, a_b, u, a_u)
        x = x - self.outer_step * (grad_x_f - self.oracles.cross(x, y, v))
        return x, y, v
