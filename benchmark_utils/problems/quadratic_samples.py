"""A quadratic bilevel problem that is a mean over samples, with closed-form
solutions: the sanity check of the stochastic setting (design.md, section
6), as ``quadratic`` is that of the deterministic one.

    g(x, y) = 1/n sum_i g_i(x, y),  g_i = 1/2 y^T H_i y + y^T B_i x + c_i^T y
    f(x, y) = 1/m sum_j f_j(x, y),  f_j = 1/2 ||y - t_j||^2 + rho/2 ||x||^2

over n training and m validation samples, with H_i = I + A_i^T A_i,
B_i = A_i^T E_i and c_i = A_i^T s_i. Training sample i holds r vectors (the
rows of A_i, r x dim_y), their couplings E_i (r x dim_x) and shifts s_i, so
that

    g_i(x, y) = 1/2 ||y||^2 + 1/2 ||A_i y||^2 + (A_i y)^T (E_i x + s_i)

costs O(r (dim_x + dim_y)), and every g_i (so every minibatch's lower
level) is 1-strongly convex in y. The rows of all the A_i together are
sqrt(n) U S Q^T, with U's columns orthonormal, Q orthogonal and
S^2 = diag(linspace(0, kappa - 1, dim_y)): the mean Hessian
H = I + 1/n sum_i A_i^T A_i = Q diag(linspace(1, kappa, dim_y)) Q^T has
condition number kappa. With B, c and t the means of the B_i, c_i and t_j,
the closed forms are those of the quadratic problem:

    y*(x) = -H^-1 (B x + c),  v*(x) = H^-1 (y*(x) - t),
    grad phi(x) = rho x - B^T v*(x).

The E_i are scaled so that phi's Hessian B^T H^-2 B + rho I has largest
eigenvalue 1: an outer step of 1 is then stable.
"""
import math

import torch

from benchmark_utils.problems.base import BilevelProblem, select_samples
from benchmark_utils.problems.quadratic import QuadraticClosedForms
from benchmark_utils.validation import (ParameterError, check_at_least,
                                        check_in_open_interval, check_int)

#: The r vectors of each training sample: a few, so that one sample's
#: Hessian is far from the mean one, as a data point's is.
VECTORS_PER_SAMPLE = 2


class SampleQuadraticProblem(QuadraticClosedForms, BilevelProblem):
    """Parameters
    ----------
    dim_x, dim_y : int
        Dimensions of the outer and inner variables.
    n_train, n_val : int
        Numbers of training samples (the terms of g; at least
        dim_y / VECTORS_PER_SAMPLE, so that their vectors span y's space)
        and of validation samples (the terms of f).
    kappa : float
        Condition number of the mean inner Hessian H (eigenvalues in
        [1, kappa]).
    rho : float
        Outer regularisation, the strong convexity modulus of phi; in (0, 1).
    seed : int
        Seed of every random draw.
    """

    name = "quadratic-samples"
    has_closed_form_derivatives = True

    def __init__(self, dim_x=50, dim_y=100, n_train=1000, n_val=500,
                 kappa=100.0, rho=0.1, seed=0):
        check_int("dim_x", dim_x, 1)
        check_int("dim_y", dim_y, 1)
        check_int("n_train", n_train, 1)
        check_int("n_val", n_val, 1)
        check_at_least("kappa", kappa, 1.0)
        check_in_open_interval("rho", rho, 0, 1)
        min_train = math.ceil(dim_y / VECTORS_PER_SAMPLE)
        if n_train < min_train:
            raise ParameterError(
                f"n_train must be at least dim_y / {VECTORS_PER_SAMPLE} = "
                f"{min_train} for dim_y = {dim_y}, got {n_train}: the mean "
                "inner Hessian is the identity plus the Gram matrix of the "
                f"training samples' {VECTORS_PER_SAMPLE} vectors each, whose "
                "condition number is kappa only if they span y's space.")
        self.n_inner_samples, self.n_outer_samples = n_train, n_val
        self.rho = rho
        gen = torch.Generator().manual_seed(seed)
        options = dict(generator=gen, dtype=torch.float64)
        rotation, _ = torch.linalg.qr(torch.randn(dim_y, dim_y, **options))
        frame, _ = torch.linalg.qr(torch.randn(
            n_train * VECTORS_PER_SAMPLE, dim_y, **options))
        eigenvalues = torch.linspace(1, float(kappa), dim_y,
                                     dtype=torch.float64)
        # 1/n (sqrt(n) U S Q^T)^T (sqrt(n) U S Q^T) = Q S^2 Q^T.
        vectors = math.sqrt(n_train) * (
            frame * torch.sqrt(eigenvalues - 1)) @ rotation.T
        couplings = torch.randn(n_train * VECTORS_PER_SAMPLE, dim_x,
                                **options)
        self.sample_shifts = torch.randn(n_train, VECTORS_PER_SAMPLE,
                                         **options)
        self.targets = torch.randn(n_val, dim_y, **options)
        self.sample_vectors = vectors.view(n_train, VECTORS_PER_SAMPLE,
                                           dim_y)
        self.hessian = torch.eye(dim_y, dtype=torch.float64) + (
            vectors.T @ vectors / n_train)
        self.hessian_inverse = torch.cholesky_inverse(
            torch.linalg.cholesky(self.hessian))
        h_inv_b = torch.linalg.solve(self.hessian,
                                     vectors.T @ couplings / n_train)
        top = torch.linalg.eigvalsh(h_inv_b.T @ h_inv_b)[-1]
        self.sample_couplings = (couplings * torch.sqrt((1 - rho) / top)).view(
            n_train, VECTORS_PER_SAMPLE, dim_x)
        # The means B, c and t of the per-sample terms, for the closed forms.
        self.coupling = vectors.T @ self.sample_couplings.reshape(
            -1, dim_x) / n_train
        self.shift = vectors.T @ self.sample_shifts.reshape(-1) / n_train
        self.target = self.targets.mean(dim=0)
        self.x0 = torch.randn(dim_x, **options)
        self.y0 = torch.randn(dim_y, **options)

    def inner_samples(self, batch):
        """The rows of the A_i and of the E_i of the training samples
        ``batch`` (all of them for None), stacked: (B r) x dim_y and
        (B r) x dim_x, and the number B of samples."""
        vectors = select_samples(self.sample_vectors, batch)
        couplings = select_samples(self.sample_couplings, batch)
        return (vectors.reshape(-1, vectors.shape[-1]),
                couplings.reshape(-1, couplings.shape[-1]), len(vectors))

    def g(self, x, y, batch=None):
        vectors, couplings, n_samples = self.inner_samples(batch)
        projections = vectors @ y
        return 0.5 * torch.dot(y, y) + torch.dot(
            projections, 0.5 * projections + self.drives(
                x, couplings, batch)) / n_samples

    def f(self, x, y, batch=None):
        targets = select_samples(self.targets, batch)
        return (0.5 * torch.sum((y - targets) ** 2) / len(targets)
                + 0.5 * self.rho * torch.dot(x, x))

    def inner_strong_convexity(self, x):
        """1: each H_i is the identity plus a Gram matrix."""
        return 1.0

    # With p = A y and d = E x + s over the rows of the batch's samples:
    #   d_y g = y + 1/B A^T (p + d),   d_x g = 1/B E^T p,
    # and over the batch of validation targets t_j:
    #   d_x f = rho x,   d_y f = y - mean(t_j).
    def drives(self, x, couplings, batch):
        """d = E x + s over the rows of the batch's samples."""
        return torch.addmv(
            select_samples(self.sample_shifts, batch).reshape(-1),
            couplings, x)

    def closed_form_grad_inner_xy(self, x, y, batch=None):
        vectors, couplings, n_samples = self.inner_samples(batch)
        projections = vectors @ y
        return (couplings.T @ projections / n_samples,
                y + vectors.T @ (projections + self.drives(
                    x, couplings, batch)) / n_samples)

    def closed_form_grad_inner(self, x, y, batch=None):
        vectors, couplings, n_samples = self.inner_samples(batch)
        return y + vectors.T @ torch.addmv(
            self.drives(x, couplings, batch), vectors, y) / n_samples

    def closed_form_grad_inner_x(self, x, y, batch=None):
        vectors, couplings, n_samples = self.inner_samples(batch)
        return couplings.T @ (vectors @ y) / n_samples

    def closed_form_grad_outer(self, x, y, batch=None):
        targets = select_samples(self.targets, batch)
        return self.rho * x, y - targets.mean(dim=0)

    # d2_yy g v = v + 1/B sum_i A_i^T A_i v, d2_xy g v = 1/B sum_i
    # E_i^T A_i v and d2_yx g u = 1/B sum_i A_i^T E_i u over the B samples
    # of the batch.
    def closed_form_hvp(self, x, y, v, batch=None):
        vectors, _, n_samples = self.inner_samples(batch)
        return v + vectors.T @ (vectors @ v) / n_samples

    def closed_form_hessian_at(self, x, y, batch=None):
        """The batch's vectors, selected once for every v."""
        vectors, _, n_samples = self.inner_samples(batch)
        return lambda v: v + vectors.T @ (vectors @ v) / n_samples

    def closed_form_cross(self, x, y, v, batch=None):
        vectors, couplings, n_samples = self.inner_samples(batch)
        return couplings.T @ (vectors @ v) / n_samples

    def closed_form_cross_transpose(self, x, y, u, batch=None):
        vectors, couplings, n_samples = self.inner_samples(batch)
        return vectors.T @ (couplings @ u) / n_samples

    def closed_form_hvp_and_cross(self, x, y, v, batch=None):
        vectors, couplings, n_samples = self.inner_samples(batch)
        projections = vectors @ v
        return (v + vectors.T @ projections / n_samples,
                couplings.T @ projections / n_samples)
