"""The synthetic bilevel problem of the LancBiO paper (Section 4.1).

    f(x, y) = c1 cos(x^T D1 y) + 1/2 ||D2 x - y||^2
    g(x, y) = c2 sum_i sin(x_i + y_i) + log sum_i exp(x_i y_i)
              + 1/2 y^T (D3 + G) y

with D1 = diag(U[-5, 5]), D2 = diag(U[0.1, 1.1]), D3 = diag(U[0, c2]) and
G = Q diag(linspace(1, kappa, n)) Q^T, Q orthogonal. The Hessian of g in y is
at least (1 - c2) I, so y*(x) is unique, and its condition number is about
kappa: the regime where approximating A^{-1} b is the bottleneck.
"""
import torch

from benchmark_utils.allocation import check_memory_fits
from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.validation import (ParameterError, check_at_least,
                                        check_int)

#: The n x n float64 matrices alive at once while the problem is built (a
#: random matrix, its QR factors, G and the copies that symmetrise it:
#: about 5.3 n^2 values measured at n = 4,000), rounded up.
BUILD_MATRICES = 6


class SyntheticProblem(BilevelProblem):
    """Parameters
    ----------
    n : int
        Dimension of x and of y (paper: 10,000).
    kappa : float
        Largest eigenvalue of G, its smallest being 1 (paper: 1e5).
    c1, c2 : float
        Weights of the cosine and sine terms (paper: 0.1 and 0.5). c2 must be
        in [0, 1) to keep g strongly convex in y.
    seed : int
        Seed of every random draw (the matrices and the starting point).
    """

    name = "synthetic"
    has_closed_form_derivatives = True

    def __init__(self, n=10_000, kappa=1e5, c1=0.1, c2=0.5, seed=0):
        check_int("n", n, 1)
        check_at_least("kappa", kappa, 1.0)
        check_at_least("c1", c1, 0.0)
        if not 0 <= c2 < 1:
            raise ParameterError(f"c2 must be in [0, 1), got {c2!r}.")
        self.n, self.kappa, self.c1, self.c2 = n, float(kappa), c1, c2
        check_memory_fits(
            BUILD_MATRICES * n * n * 8, "cpu",
            f"The synthetic problem at n={n} (dense n x n matrices in "
            "float64)", "lower n (the memory grows as n^2)")
        gen = torch.Generator().manual_seed(seed)
        options = dict(generator=gen, dtype=torch.float64)
        self.d1 = 10 * torch.rand(n, **options) - 5
        self.d2 = torch.rand(n, **options) + 0.1
        self.d3 = c2 * torch.rand(n, **options)
        q, _ = torch.linalg.qr(torch.randn(n, n, **options))
        eigenvalues = torch.linspace(1, self.kappa, n, dtype=torch.float64)
        self.gram = (q * eigenvalues) @ q.T
        self.gram = 0.5 * (self.gram + self.gram.T)   # exactly symmetric
        # G's eigendecomposition, for the reference metrics' preconditioner.
        self.gram_eigenvectors, self.gram_eigenvalues = q, eigenvalues
        self.x0 = torch.randn(n, **options)
        self.y0 = torch.randn(n, **options)

    def f(self, x, y):
        return (self.c1 * torch.cos(torch.dot(x, self.d1 * y))
                + 0.5 * torch.sum((self.d2 * x - y) ** 2))

    def inner_strong_convexity(self, x):
        """1 - c2: G >= I, D3 >= 0, the log-sum-exp is convex and the sine
        term's curvature is at least -c2."""
        return 1.0 - self.c2

    def hessian_preconditioner(self, x, y):
        """(G + mean(D3) I)^-1 through G's eigendecomposition: d2_yy g is
        G plus entrywise terms within [-c2, 2 c2] and the log-sum-exp's
        positive semi-definite curvature, so that what G's spread of kappa
        made slow is undone. Measured at kappa = 1e5: 3 or 4
        conjugate-gradient steps to a relative residual of 1e-9 instead of
        125 (n = 300) and 223 (n = 1,000). One application costs two
        products with an n x n matrix, as two HVPs do."""
        shifted = self.gram_eigenvalues + self.d3.mean()
        eigenvectors = self.gram_eigenvectors
        return lambda r: eigenvectors @ ((eigenvectors.T @ r) / shifted)

    def g(self, x, y):
        return (self.c2 * torch.sum(torch.sin(x + y))
                + torch.logsumexp(x * y, dim=0)
                + 0.5 * torch.dot(y, self.d3 * y + self.gram @ y))

    # With p = softmax(x * y), the gradients
    #   d_y g = c2 cos(x + y) + x p + (D3 + G) y,   d_x g = c2 cos(x + y) + y p
    # (one product with G, where a reverse pass takes two), and with
    # s = -c1 sin(x^T D1 y) and r = D2 x - y,
    #   d_x f = s D1 y + D2 r,   d_y f = s D1 x - r.
    def _grad_inner_y(self, x, y, cosine, softmax):
        return torch.addmv(torch.addcmul(torch.addcmul(cosine, x, softmax),
                                         self.d3, y), self.gram, y)

    def _inner_terms(self, x, y):
        return self.c2 * torch.cos(x + y), torch.softmax(x * y, dim=0)

    def closed_form_grad_inner(self, x, y):
        return self._grad_inner_y(x, y, *self._inner_terms(x, y))

    def closed_form_grad_inner_x(self, x, y):
        cosine, softmax = self._inner_terms(x, y)
        return torch.addcmul(cosine, y, softmax)

    def closed_form_grad_inner_xy(self, x, y):
        cosine, softmax = self._inner_terms(x, y)
        return (torch.addcmul(cosine, y, softmax),
                self._grad_inner_y(x, y, cosine, softmax))

    def closed_form_grad_outer(self, x, y):
        d1_y = self.d1 * y
        sine = -self.c1 * torch.sin(torch.dot(x, d1_y))
        residual = self.d2 * x - y
        return (torch.addcmul(sine * d1_y, self.d2, residual),
                torch.addcmul(-residual, sine * self.d1, x))

    # With s = sin(x + y), p = softmax(x * y) and u = x * v (entrywise):
    #   d2_yy g v = -c2 s v + x (p u - p <p, u>) + (D3 + G) v
    #   d2_xy g v = -c2 s v + p v + y p (u - <p, u>)
    # and for w of the size of x, with t = y * w:
    #   d2_yx g w = -c2 s w + p w + x p (t - <p, t>)
    # (the log-sum-exp's Hessian in z = x * y is diag(p) - p p^T).
    def _curvature_terms(self, x, y, v):
        sine = torch.sin(x + y)
        softmax = torch.softmax(x * y, dim=0)
        scaled = x * v
        centred = scaled - torch.dot(softmax, scaled)
        return sine, softmax, centred

    # Fused (addcmul, addmv): a fixed number of tensor operations, each a
    # kernel launch on a GPU.
    def _hvp(self, x, y, v, sine, softmax, centred):
        local = torch.addcmul(self.d3 * v, sine, v, value=-self.c2)
        return torch.addmv(torch.addcmul(local, x * softmax, centred),
                           self.gram, v)

    def _cross(self, x, y, v, sine, softmax, centred):
        local = torch.addcmul(softmax * v, sine, v, value=-self.c2)
        return torch.addcmul(local, y * softmax, centred)

    def closed_form_hvp(self, x, y, v):
        return self._hvp(x, y, v, *self._curvature_terms(x, y, v))

    def closed_form_cross(self, x, y, v):
        return self._cross(x, y, v, *self._curvature_terms(x, y, v))

    def closed_form_cross_transpose(self, x, y, w):
        sine = torch.sin(x + y)
        softmax = torch.softmax(x * y, dim=0)
        scaled = y * w
        local = torch.addcmul(softmax * w, sine, w, value=-self.c2)
        return torch.addcmul(local, x * softmax,
                             scaled - torch.dot(softmax, scaled))

    def closed_form_hvp_and_cross(self, x, y, v):
        terms = self._curvature_terms(x, y, v)
        return self._hvp(x, y, v, *terms), self._cross(x, y, v, *terms)
