"""A strongly convex quadratic bilevel problem with closed-form solutions.

    g(x, y) = 1/2 y^T H y + y^T B x + c^T y
    f(x, y) = 1/2 ||y - t||^2 + rho/2 ||x||^2

so that y*(x) = -H^{-1}(B x + c), v*(x) = H^{-1}(y*(x) - t) and
grad phi(x) = rho x - B^T v*(x). B is scaled so that the hyper-objective's
Hessian B^T H^{-2} B + rho I has largest eigenvalue 1: an outer step of 1 is
then stable, as on the LancBiO paper's synthetic problem.
"""
import torch

from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.validation import (ParameterError, check_at_least,
                                        check_int)


class QuadraticClosedForms:
    """y*(x), v*(x), the hypergradient and phi(x) of a quadratic bilevel
    problem with inner Hessian ``hessian`` (H, and its inverse
    ``hessian_inverse``), coupling ``coupling`` (B), shift ``shift`` (c),
    target ``target`` (t) and outer ridge ``rho``, in closed form, for the
    tests: y* = -H^-1 (B x + c), v* = H^-1 (y* - t),
    grad phi = rho x - B^T v*."""

    def inner_solution(self, x):
        return -torch.linalg.solve(self.hessian,
                                   self.coupling @ x + self.shift)

    def adjoint_solution(self, x):
        return torch.linalg.solve(self.hessian,
                                  self.inner_solution(x) - self.target)

    def hypergradient(self, x):
        return self.rho * x - self.coupling.T @ self.adjoint_solution(x)

    def value(self, x):
        return self.f(x, self.inner_solution(x))

    def hessian_preconditioner(self, x, y):
        """H^-1 itself (g is quadratic, its Hessian H everywhere): the
        reference solves take one conjugate-gradient step."""
        return lambda r: self.hessian_inverse @ r

    def minimizer(self):
        """argmin phi: (B^T H^-2 B + rho I) x = -B^T H^-1 (H^-1 c + t)."""
        h_inv_b = torch.linalg.solve(self.hessian, self.coupling)
        h_inv_c = torch.linalg.solve(self.hessian, self.shift)
        lhs = h_inv_b.T @ h_inv_b + self.rho * torch.eye(
            self.coupling.shape[1], dtype=self.coupling.dtype,
            device=self.coupling.device)
        return torch.linalg.solve(lhs, -h_inv_b.T @ (h_inv_c + self.target))


class QuadraticProblem(QuadraticClosedForms, BilevelProblem):
    """Parameters
    ----------
    dim_x, dim_y : int
        Dimensions of the outer and inner variables.
    kappa : float
        Condition number of the inner Hessian H (eigenvalues in [1, kappa]).
    rho : float
        Outer regularisation, the strong convexity modulus of phi; in (0, 1).
    seed : int
        Seed of every random draw.
    """

    name = "quadratic"
    has_closed_form_derivatives = True

    def __init__(self, dim_x=50, dim_y=100, kappa=100.0, rho=0.1, seed=0):
        check_int("dim_x", dim_x, 1)
        check_int("dim_y", dim_y, 1)
        check_at_least("kappa", kappa, 1.0)
        if not 0 < rho < 1:
            raise ParameterError(f"rho must be in (0, 1), got {rho!r}.")
        gen = torch.Generator().manual_seed(seed)
        options = dict(generator=gen, dtype=torch.float64)
        q, _ = torch.linalg.qr(torch.randn(dim_y, dim_y, **options))
        eigenvalues = torch.linspace(1, float(kappa), dim_y,
                                     dtype=torch.float64)
        self.hessian = (q * eigenvalues) @ q.T
        self.hessian = 0.5 * (self.hessian + self.hessian.T)
        self.hessian_inverse = (q / eigenvalues) @ q.T
        coupling = torch.randn(dim_y, dim_x, **options)
        h_inv_b = torch.linalg.solve(self.hessian, coupling)
        top = torch.linalg.eigvalsh(h_inv_b.T @ h_inv_b)[-1]
        self.coupling = coupling * torch.sqrt((1 - rho) / top)
        self.shift = torch.randn(dim_y, **options)
        self.target = torch.randn(dim_y, **options)
        self.rho = rho
        self.x0 = torch.randn(dim_x, **options)
        self.y0 = torch.randn(dim_y, **options)

    def f(self, x, y):
        return (0.5 * torch.sum((y - self.target) ** 2)
                + 0.5 * self.rho * torch.dot(x, x))

    def g(self, x, y):
        return (0.5 * torch.dot(y, self.hessian @ y)
                + torch.dot(y, self.coupling @ x) + torch.dot(self.shift, y))

    def inner_strong_convexity(self, x):
        """The smallest eigenvalue of H, 1 by construction, less round-off."""
        return 1.0 - 1e-9

    # d_y g = H y + B x + c, d_x g = B^T y; d_x f = rho x, d_y f = y - t.
    def closed_form_grad_inner(self, x, y):
        return torch.addmv(torch.addmv(self.shift, self.hessian, y),
                           self.coupling, x)

    def closed_form_grad_inner_x(self, x, y):
        return self.coupling.T @ y

    def closed_form_grad_inner_xy(self, x, y):
        return (self.closed_form_grad_inner_x(x, y),
                self.closed_form_grad_inner(x, y))

    def closed_form_grad_outer(self, x, y):
        return self.rho * x, y - self.target

    def closed_form_hvp(self, x, y, v):
        return self.hessian @ v

    def closed_form_cross(self, x, y, v):
        return self.coupling.T @ v

    def closed_form_cross_transpose(self, x, y, u):
        return self.coupling @ u
