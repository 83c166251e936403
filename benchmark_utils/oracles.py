"""Counting first- and second-order oracles of a bilevel problem.

This is the only place where ``f`` and ``g`` are differentiated. Every call
adds to a counter, in full-batch passes, so that methods are compared on the
same currency: gradients, Hessian-vector products (HVPs) and cross products.
Every oracle takes an optional ``batch`` of sample indices (design.md,
section 6): a call on B of the problem's n samples (its training samples
for the oracles of g, its validation samples for those of f) counts B / n,
a full-batch call 1. ``n_epochs`` counts the passes over the training
samples that all the oracles of g make together: the x-axis on which
stochastic methods are usually compared.

Notation (LancBiO paper, Section 2): A = d2_yy g(x, y), b = d_y f(x, y),
and the hypergradient  d phi(x) = d_x f(x, y*) - d2_xy g(x, y*) v*  with
A v* = b.
"""
import itertools
from fractions import Fraction

import torch
from torch.func import grad, jvp, vjp

from benchmark_utils.problems.base import batch_arguments
from benchmark_utils.validation import check_choice

#: Every derivative by automatic differentiation (reverse-mode gradients,
#: products over them in reverse or forward mode), for any problem.
AUTODIFF_HVP_MODES = ("reverse", "forward")
#: 'closed_form': every derivative by the problem's own formulas, where it
#: supplies them (``BilevelProblem.has_closed_form_derivatives``).
HVP_MODES = AUTODIFF_HVP_MODES + ("closed_form",)


def available_hvp_modes(problem):
    """The HVP modes that can serve ``problem``."""
    if problem.has_closed_form_derivatives:
        return HVP_MODES
    return AUTODIFF_HVP_MODES


#: Largest relative disagreement allowed between a problem's closed-form
#: products and automatic differentiation, by dtype (round-off only).
CLOSED_FORM_RTOL = {torch.float64: 1e-8, torch.float32: 1e-3}


def check_closed_form(problem, seed=0):
    """Raise a clear error if one of the problem's closed-form derivatives
    (gradients, HVP, cross product, transposed cross product) disagrees
    with reverse-mode automatic differentiation at a random point near the
    start (a subclass that changed ``f`` or ``g`` but kept
    ``has_closed_form_derivatives`` would otherwise give silently wrong
    derivatives), on the full data and, for a problem with samples, on a
    random half of its training and of its validation samples. The point
    moves y off y0, which is often 0, where some derivatives vanish
    exactly."""
    generator = torch.Generator().manual_seed(seed)
    # Drawn on the host, so that every device checks at the same point.
    y_shift, v = (torch.randn(problem.y0.shape, generator=generator,
                              dtype=torch.float64, device="cpu").to(
                                  problem.y0)
                  for _ in range(2))
    u = torch.randn(problem.x0.shape, generator=generator,
                    dtype=torch.float64, device="cpu").to(problem.x0)
    x, y = problem.x0, problem.y0 + 0.1 * y_shift
    # (batch of g, batch of f)
    batches = [(None, None)]
    if problem.n_inner_samples is not None:
        batches.append(tuple(
            torch.randperm(n_samples, generator=generator, device="cpu")[
                :max(1, n_samples // 2)].to(problem.device)
            for n_samples in (problem.n_inner_samples,
                              problem.n_outer_samples)))
    calls = {
        "grad_inner": lambda o, inner, outer: o.grad_inner(x, y, inner),
        "grad_inner_x": lambda o, inner, outer: o.grad_inner_x(x, y, inner),
        "grad_inner_xy": lambda o, inner, outer: o.grad_inner_xy(x, y,
                                                                 inner),
        "grad_outer": lambda o, inner, outer: o.grad_outer(x, y, outer),
        "hvp": lambda o, inner, outer: o.hvp(x, y, v, inner),
        "cross": lambda o, inner, outer: o.cross(x, y, v, inner),
        # cross_transpose takes a vector of the size of x.
        "cross_transpose": lambda o, inner, outer: o.cross_transpose(
            x, y, u, inner),
    }
    closed_form = Oracles(problem, "closed_form")
    autodiff = Oracles(problem, "reverse")
    rtol = CLOSED_FORM_RTOL.get(problem.dtype, 1e-3)
    for (inner, outer), (name, call) in itertools.product(batches,
                                                          calls.items()):
        expected = torch.cat([torch.atleast_1d(part) for part in
                              _as_tuple(call(autodiff, inner, outer))])
        got = torch.cat([torch.atleast_1d(part) for part in
                         _as_tuple(call(closed_form, inner, outer))])
        error = torch.linalg.vector_norm(got - expected)
        scale = torch.linalg.vector_norm(expected)
        if not error <= rtol * max(float(scale), 1e-30):
            where = "" if inner is None else " on a minibatch"
            raise ValueError(
                f"The {problem.name} problem's closed_form_{name} disagrees "
                f"with automatic differentiation{where} (relative error "
                f"{float(error / scale):.2e} > {rtol:g}): fix it, or set "
                "has_closed_form_derivatives = False on a problem whose f "
                "or g differs from the one its closed forms were written "
                "for.")


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


class Oracles:
    """Derivatives of a :class:`BilevelProblem`, with call counters.

    Every oracle takes an optional ``batch``: a 1-D int64 tensor of sample
    indices on the problem's device (training samples for the oracles of
    g, validation samples for those of f), or None for the full data. A
    batch on a problem without samples is an error.

    **Counts** are in full-batch passes: a call on B of n samples adds
    B / n to its counter, a full-batch call 1. They are kept exact: the
    oracles tally the samples each counter has read, by level (g's training
    samples, f's validation samples), as integers, and ``n_grad``,
    ``n_hvp`` and ``n_cross`` are those tallies divided by n, rounded once
    to a float; so 100 calls on 64 of 5,000 samples count exactly
    ``6400 / 5000``, in any order of calls.

    Parameters
    ----------
    problem : BilevelProblem
        The problem, already on its device and dtype.
    hvp_mode : {'reverse', 'forward', 'closed_form'}
        How derivatives are taken: 'reverse' is reverse-mode gradients
        and reverse-over-reverse products (``vjp`` of the gradient),
        'forward' the same gradients and forward-over-reverse products
        (``jvp`` of the gradient), 'closed_form' every gradient and product
        by the problem's own formulas (for a problem that supplies them).
        All give the same numbers up to round-off; their speed differs.
    """

    def __init__(self, problem, hvp_mode="reverse"):
        check_choice("hvp_mode", hvp_mode, HVP_MODES)
        if hvp_mode not in available_hvp_modes(problem):
            raise ValueError(
                "hvp_mode='closed_form' needs a problem that supplies its "
                "derivatives in closed form (every problem of this "
                f"benchmark does); the {problem.name} problem does not: use "
                f"one of {AUTODIFF_HVP_MODES} or 'auto'.")
        self.problem = problem
        self.hvp_mode = hvp_mode
        if hvp_mode == "closed_form":
            # Every derivative by the problem's formulas: a gradient at the
            # cost of its arithmetic, without torch.func's fixed cost.
            self._grad_f = problem.closed_form_grad_outer
            self._grad_g = problem.closed_form_grad_inner_xy
            self._grad_g_y = problem.closed_form_grad_inner
            self._grad_g_x = problem.closed_form_grad_inner_x
        else:
            self._grad_f = grad(problem.f, argnums=(0, 1))
            self._grad_g = grad(problem.g, argnums=(0, 1))
            self._grad_g_y = grad(problem.g, argnums=1)
            self._grad_g_x = grad(problem.g, argnums=0)
        # One full pass: all the samples, or one call for a problem
        # without samples.
        self._n_inner = problem.n_inner_samples or 1
        self._n_outer = problem.n_outer_samples or 1
        self.reset()

    @property
    def device(self):
        return self.problem.device

    def reset(self):
        """Set every counter to zero (at the start of a solver's run)."""
        self._inner_grad_samples = 0
        self._outer_grad_samples = 0
        self._hvp_samples = 0
        self._cross_samples = 0
        self._training_samples_read = 0

    @property
    def n_grad(self):
        """Gradients of g and of f, in full passes over their samples."""
        return float(Fraction(self._inner_grad_samples, self._n_inner)
                     + Fraction(self._outer_grad_samples, self._n_outer))

    @property
    def n_hvp(self):
        return float(Fraction(self._hvp_samples, self._n_inner))

    @property
    def n_cross(self):
        return float(Fraction(self._cross_samples, self._n_inner))

    @property
    def n_epochs(self):
        """Passes over the training samples: the samples that the oracles
        of g read (gradients, HVPs and cross products; a fused HVP and
        cross product reads its batch once), over n. On a problem without
        samples, the number of calls of g's oracles."""
        return float(Fraction(self._training_samples_read, self._n_inner))

    def counts(self):
        return dict(n_grad=self.n_grad, n_hvp=self.n_hvp,
                    n_cross=self.n_cross, n_epochs=self.n_epochs)

    def _inner_samples(self, batch):
        """How many training samples an oracle of g reads on ``batch``."""
        if batch is None:
            return self._n_inner
        return self._batch_size(batch, self.problem.n_inner_samples)

    def _read_training(self, batch):
        """:meth:`_inner_samples`, added to the samples read (the
        epochs)."""
        n_samples = self._inner_samples(batch)
        self._training_samples_read += n_samples
        return n_samples

    def _outer_samples(self, batch):
        """How many validation samples an oracle of f reads on ``batch``."""
        if batch is None:
            return self._n_outer
        return self._batch_size(batch, self.problem.n_outer_samples)

    def _batch_size(self, batch, n_samples):
        """The size of a batch, after the checks that cost no device
        synchronisation (the indices' range is not checked)."""
        if n_samples is None:
            raise ValueError(
                f"The {self.problem.name} problem has no samples: its f and "
                "g are not means over samples, so its oracles take no "
                "minibatch (call them with batch=None).")
        if (not isinstance(batch, torch.Tensor) or batch.dtype != torch.int64
                or batch.dim() != 1 or len(batch) == 0):
            raise ValueError(
                "batch must be None or a non-empty 1-D int64 tensor of "
                f"sample indices, got {batch!r}.")
        return len(batch)

    # -- function values (not counted: no derivative is taken) --------------

    def value_outer(self, x, y, batch=None):
        if batch is not None:
            self._batch_size(batch, self.problem.n_outer_samples)
        return self.problem.f(x, y, *batch_arguments(batch))

    def value_inner(self, x, y, batch=None):
        if batch is not None:
            self._batch_size(batch, self.problem.n_inner_samples)
        return self.problem.g(x, y, *batch_arguments(batch))

    # -- first order ----------------------------------------------------------

    def grad_inner(self, x, y, batch=None):
        """d_y g(x, y)."""
        self._inner_grad_samples += self._read_training(batch)
        return self._grad_g_y(x, y, *batch_arguments(batch))

    def grad_inner_x(self, x, y, batch=None):
        """d_x g(x, y), for penalty methods."""
        self._inner_grad_samples += self._read_training(batch)
        return self._grad_g_x(x, y, *batch_arguments(batch))

    def grad_inner_xy(self, x, y, batch=None):
        """(d_x g(x, y), d_y g(x, y)) from one backward pass."""
        self._inner_grad_samples += self._read_training(batch)
        return self._grad_g(x, y, *batch_arguments(batch))

    def grad_outer(self, x, y, batch=None):
        """(d_x f(x, y), d_y f(x, y)) from one backward pass."""
        self._outer_grad_samples += self._outer_samples(batch)
        return self._grad_f(x, y, *batch_arguments(batch))

    # -- second order ---------------------------------------------------------

    def hvp(self, x, y, v, batch=None):
        """d2_yy g(x, y) v."""
        self._hvp_samples += self._read_training(batch)
        on_batch = batch_arguments(batch)
        if self.hvp_mode == "closed_form":
            return self.problem.closed_form_hvp(x, y, v, *on_batch)
        if self.hvp_mode == "forward":
            return jvp(lambda y_: self._grad_g_y(x, y_, *on_batch), (y,),
                       (v,))[1]
        _, pullback = vjp(lambda y_: self._grad_g_y(x, y_, *on_batch), y)
        return pullback(v)[0]

    def hessian_at(self, x, y, batch=None):
        """``u -> d2_yy g(x, y) u`` at a fixed (x, y) and batch, for the
        many products of one linear solve: what does not depend on u (the
        linearisation of d_y g, or a problem's curvature weights) is
        computed once. Each call counts one HVP on the batch."""
        n_samples = self._inner_samples(batch)
        on_batch = batch_arguments(batch)
        if self.hvp_mode == "closed_form":
            product = self.problem.closed_form_hessian_at(x, y, *on_batch)
        elif self.hvp_mode == "reverse":
            _, pullback = vjp(lambda y_: self._grad_g_y(x, y_, *on_batch), y)

            def product(u):
                return pullback(u)[0]
        else:
            def product(u):
                return jvp(lambda y_: self._grad_g_y(x, y_, *on_batch),
                           (y,), (u,))[1]

        def counted(u):
            self._hvp_samples += n_samples
            self._training_samples_read += n_samples
            return product(u)
        return counted

    def cross(self, x, y, v, batch=None):
        """d2_xy g(x, y) v, a vector of the size of x."""
        self._cross_samples += self._read_training(batch)
        on_batch = batch_arguments(batch)
        if self.hvp_mode == "closed_form":
            return self.problem.closed_form_cross(x, y, v, *on_batch)
        if self.hvp_mode == "forward":
            return jvp(lambda y_: self._grad_g_x(x, y_, *on_batch), (y,),
                       (v,))[1]
        _, pullback = vjp(lambda x_: self._grad_g_y(x_, y, *on_batch), x)
        return pullback(v)[0]

    def cross_transpose(self, x, y, u, batch=None):
        """d2_yx g(x, y) u = (d2_xy g)^T u for u of the size of x: the
        change of d_y g when x moves along u (a vector of the size of y),
        as the implicit function theorem's dy*/dx = -A^-1 d2_yx g needs.
        Counted as a cross product: the same linearisation of d g, read
        the other way."""
        self._cross_samples += self._read_training(batch)
        on_batch = batch_arguments(batch)
        if self.hvp_mode == "closed_form":
            return self.problem.closed_form_cross_transpose(x, y, u,
                                                            *on_batch)
        if self.hvp_mode == "forward":
            return jvp(lambda x_: self._grad_g_y(x_, y, *on_batch), (x,),
                       (u,))[1]
        _, pullback = vjp(lambda y_: self._grad_g_x(x, y_, *on_batch), y)
        return pullback(u)[0]

    def hvp_and_cross(self, x, y, v, batch=None):
        """(d2_yy g v, d2_xy g v) from a single linearisation of d g."""
        n_samples = self._read_training(batch)
        self._hvp_samples += n_samples
        self._cross_samples += n_samples
        on_batch = batch_arguments(batch)
        if self.hvp_mode == "closed_form":
            return self.problem.closed_form_hvp_and_cross(x, y, v, *on_batch)
        if self.hvp_mode == "forward":
            cross, hvp = jvp(lambda y_: self._grad_g(x, y_, *on_batch),
                             (y,), (v,))[1]
            return hvp, cross
        _, pullback = vjp(
            lambda x_, y_: self._grad_g_y(x_, y_, *on_batch), x, y)
        cross, hvp = pullback(v)
        return hvp, cross
