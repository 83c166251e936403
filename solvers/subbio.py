import torch

from benchmark_utils.linalg.inner_loops import inner_gradient_descent
from benchmark_utils.linalg.krylov import two_dimensional_galerkin
from benchmark_utils.published_variants import ORIGINAL, check_variant
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_int


class Solver(BilevelSolver):
    """SubBiO (Yang, Gao and Yuan, Algorithm 1): v_k minimises the quadratic
    1/2 v^T A_k v - b_k^T v over the two-dimensional subspace
    span{b_k, (I - eta A_k) v_{k-1}}, i.e. solves a 2x2 projected system.
    With ``batch_size``, each inner step, b and the cross product draw a
    batch of their own, and the three HVPs share one: the projected system
    is then that of one symmetric matrix A_k. ``variant='lancbio_code'``:
    the LancBiO authors' SubBiO, whose products A b and A u of the projected
    system are taken at (x_k, v_{k-1}) instead of (x_k, y_{k+1}) (u itself
    at (x_k, y_{k+1})). Per outer iteration: T + 1
    gradients, 3 HVPs (A b, A v, A A v), 1 cross product (each on a batch,
    B / n of a full pass)."""

    name = "SubBiO"
    parameters = {
        "n_inner_steps": [5],
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
    }
    parameter_template = (
        "T={n_inner_steps},inner={step_size_inner},"
        "linsys={step_size_linsys},outer={step_size_outer},"
        "batch={batch_size},variant={variant}")
    references = [
        "Y. Yang, B. Gao and Y.-x. Yuan, 'LancBiO: dynamic Lanczos-aided "
        "bilevel optimization via Krylov subspace', ICLR 2025",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 0)
        check_variant(self.variant)

    def step(self, x, y, v):
        y = inner_gradient_descent(self.oracles, x, y, self.n_inner_steps,
                                   self.inner_step, self.inner_batch)
        grad_x_f, b = self.oracles.grad_outer(x, y, self.outer_batch())
        batch = self.second_order_batch()
        if self.variant == ORIGINAL:
            a_b = self.oracles.hvp(x, y, b, batch)
            a_v = self.oracles.hvp(x, y, v, batch)
            a_a_v = self.oracles.hvp(x, y, a_v, batch)
            # Second direction u = (I - eta A) v: one gradient step on the
            # quadratic from v, with A u from the products by linearity.
            u = torch.add(v, a_v, alpha=-self.linsys_step)
            a_u = torch.add(a_v, a_a_v, alpha=-self.linsys_step)
        else:
            u = torch.add(v, self.oracles.hvp(x, y, v, batch),
                          alpha=-self.linsys_step)
            # The authors' projected Hessian, at (x, v).
            a_b = self.oracles.hvp(x, v, b, batch)
            a_u = self.oracles.hvp(x, v, u, batch)
        v = two_dimensional_galerkin(b, a_b, u, a_u)
        x = torch.add(x, grad_x_f - self.oracles.cross(
            x, y, v, self.second_order_batch()), alpha=-self.outer_step)
        return x, y, v
