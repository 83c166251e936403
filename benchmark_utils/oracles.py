"""Counting first- and second-order oracles of a bilevel problem.

This is the only place where ``f`` and ``g`` are differentiated. Every call
adds to a counter, in full-batch passes, so that methods are compared on the
same currency: gradients, Hessian-vector products (HVPs) and cross products.

Notation (LancBiO paper, Section 2): A = d2_yy g(x, y), b = d_y f(x, y),
and the hypergradient  d phi(x) = d_x f(x, y*) - d2_xy g(x, y*) v*  with
A v* = b.
"""
import torch
from torch.func import grad, jvp, vjp

from benchmark_utils.validation import check_choice

#: Second-order products by automatic differentiation, for any problem.
AUTODIFF_HVP_MODES = ("reverse", "forward")
#: 'closed_form': the problem's own formulas, where it supplies them
#: (``BilevelProblem.has_closed_form_hvp``).
HVP_MODES = AUTODIFF_HVP_MODES + ("closed_form",)


def available_hvp_modes(problem):
    """The HVP modes that can serve ``problem``."""
    return HVP_MODES if problem.has_closed_form_hvp else AUTODIFF_HVP_MODES


#: Largest relative disagreement allowed between a problem's closed-form
#: products and automatic differentiation, by dtype (round-off only).
CLOSED_FORM_RTOL = {torch.float64: 1e-8, torch.float32: 1e-3}


def check_closed_form(problem, seed=0):
    """Raise a clear error if the problem's closed-form HVP or cross product
    disagrees with reverse-mode automatic differentiation at a random point
    near the start (a subclass that changed ``g`` but kept
    ``has_closed_form_hvp`` would otherwise give silently wrong products).
    The point moves y off y0, which is often 0, where some products vanish
    exactly."""
    generator = torch.Generator().manual_seed(seed)
    y_shift, v = (torch.randn(problem.y0.shape, generator=generator,
                              dtype=torch.float64).to(problem.y0)
                  for _ in range(2))
    x, y = problem.x0, problem.y0 + 0.1 * y_shift
    closed_form = Oracles(problem, "closed_form")
    autodiff = Oracles(problem, "reverse")
    rtol = CLOSED_FORM_RTOL.get(problem.dtype, 1e-3)
    for name in ("hvp", "cross"):
        expected = getattr(autodiff, name)(x, y, v)
        error = torch.linalg.vector_norm(
            getattr(closed_form, name)(x, y, v) - expected)
        scale = torch.linalg.vector_norm(expected)
        if not error <= rtol * max(float(scale), 1e-30):
            raise ValueError(
                f"The {problem.name} problem's closed_form_{name} disagrees "
                "with automatic differentiation (relative error "
                f"{float(error / scale):.2e} > {rtol:g}): fix it, or set "
                "has_closed_form_hvp = False on a problem whose g differs "
                "from the one its closed forms were written for.")


class Oracles:
    """Derivatives of a :class:`BilevelProblem`, with call counters.

    Parameters
    ----------
    problem : BilevelProblem
        The problem, already on its device and dtype.
    hvp_mode : {'reverse', 'forward', 'closed_form'}
        How second-order products are taken: 'reverse' is reverse-over-reverse
        (``vjp`` of the gradient), 'forward' is forward-over-reverse (``jvp``
        of the gradient), 'closed_form' the problem's own formulas (for a
        problem that supplies them). All give the same numbers; their speed
        differs.
    """

    def __init__(self, problem, hvp_mode="reverse"):
        check_choice("hvp_mode", hvp_mode, HVP_MODES)
        if hvp_mode not in available_hvp_modes(problem):
            raise ValueError(
                "hvp_mode='closed_form' needs a problem that supplies its "
                "second-order products (hyper-cleaning, regularization "
                f"selection); the {problem.name} problem does not: use one "
                f"of {AUTODIFF_HVP_MODES} or 'auto'.")
        self.problem = problem
        self.hvp_mode = hvp_mode
        self._grad_f = grad(problem.f, argnums=(0, 1))
        self._grad_g = grad(problem.g, argnums=(0, 1))
        self._grad_g_y = grad(problem.g, argnums=1)
        self._grad_g_x = grad(problem.g, argnums=0)
        self.reset()

    @property
    def device(self):
        return self.problem.device

    def reset(self):
        """Set every counter to zero (at the start of a solver's run)."""
        self.n_grad = 0
        self.n_hvp = 0
        self.n_cross = 0

    def counts(self):
        return dict(n_grad=self.n_grad, n_hvp=self.n_hvp,
                    n_cross=self.n_cross)

    # -- function values (not counted: no derivative is taken) --------------

    def value_outer(self, x, y):
        return self.problem.f(x, y)

    def value_inner(self, x, y):
        return self.problem.g(x, y)

    # -- first order ----------------------------------------------------------

    def grad_inner(self, x, y):
        """d_y g(x, y)."""
        self.n_grad += 1
        return self._grad_g_y(x, y)

    def grad_inner_x(self, x, y):
        """d_x g(x, y), for penalty methods."""
        self.n_grad += 1
        return self._grad_g_x(x, y)

    def grad_inner_xy(self, x, y):
        """(d_x g(x, y), d_y g(x, y)) from one backward pass."""
        self.n_grad += 1
        return self._grad_g(x, y)

    def grad_outer(self, x, y):
        """(d_x f(x, y), d_y f(x, y)) from one backward pass."""
        self.n_grad += 1
        return self._grad_f(x, y)

    # -- second order ---------------------------------------------------------

    def hvp(self, x, y, v):
        """d2_yy g(x, y) v."""
        self.n_hvp += 1
        if self.hvp_mode == "closed_form":
            return self.problem.closed_form_hvp(x, y, v)
        if self.hvp_mode == "forward":
            return jvp(lambda y_: self._grad_g_y(x, y_), (y,), (v,))[1]
        _, pullback = vjp(lambda y_: self._grad_g_y(x, y_), y)
        return pullback(v)[0]

    def hessian_at(self, x, y):
        """``u -> d2_yy g(x, y) u`` at a fixed (x, y), for the many products
        of one linear solve: what does not depend on u (the linearisation
        of d_y g, or a problem's curvature weights) is computed once. Each
        call counts one HVP."""
        if self.hvp_mode == "closed_form":
            product = self.problem.closed_form_hessian_at(x, y)
        elif self.hvp_mode == "reverse":
            _, pullback = vjp(lambda y_: self._grad_g_y(x, y_), y)

            def product(u):
                return pullback(u)[0]
        else:
            return lambda u: self.hvp(x, y, u)

        def counted(u):
            self.n_hvp += 1
            return product(u)
        return counted

    def cross(self, x, y, v):
        """d2_xy g(x, y) v, a vector of the size of x."""
        self.n_cross += 1
        if self.hvp_mode == "closed_form":
            return self.problem.closed_form_cross(x, y, v)
        if self.hvp_mode == "forward":
            return jvp(lambda y_: self._grad_g_x(x, y_), (y,), (v,))[1]
        _, pullback = vjp(lambda x_: self._grad_g_y(x_, y), x)
        return pullback(v)[0]

    def hvp_and_cross(self, x, y, v):
        """(d2_yy g v, d2_xy g v) from a single linearisation of d g."""
        self.n_hvp += 1
        self.n_cross += 1
        if self.hvp_mode == "closed_form":
            return self.problem.closed_form_hvp_and_cross(x, y, v)
        if self.hvp_mode == "forward":
            cross, hvp = jvp(lambda y_: self._grad_g(x, y_), (y,), (v,))[1]
            return hvp, cross
        _, pullback = vjp(self._grad_g_y, x, y)
        cross, hvp = pullback(v)
        return hvp, cross
