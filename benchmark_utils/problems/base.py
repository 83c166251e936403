"""The bilevel problem contract shared by every dataset.

    min_x  phi(x) = f(x, y*(x))   with   y*(x) = argmin_y g(x, y)

``x`` and ``y`` are flat 1-D tensors; a problem whose variables have more
structure (a weight matrix) reshapes them inside ``f`` and ``g``.

**Samples.** A problem whose ``g`` is a mean over training samples and whose
``f`` is a mean over validation samples (hyper-cleaning, regularization
selection, the sample-based quadratic; for dataset distillation, the learnt
images and the real training images) declares ``n_inner_samples`` and
``n_outer_samples``, and its ``f``, ``g`` and closed-form products take an
optional ``batch``: a 1-D int64 tensor of sample indices (into the
training samples for ``g``, the validation samples for ``f``), on the
problem's device. On a batch, a function is the mean of its per-sample
terms over the batch plus its whole regularisation term, so that the mean
over one epoch's batches, each weighted by its size B / n, is the full
function; ``batch=None`` is the full data. A problem without samples (the
LancBiO paper's synthetic problem, the quadratic) keeps ``f(x, y)`` and
``g(x, y)``: the oracles pass a batch only when there is one, and refuse
one for such a problem.
"""
import copy

import torch


class BilevelProblem:
    """Base class of a bilevel problem.

    Subclasses set ``x0`` and ``y0`` (the starting point of every solver),
    keep their data as tensor attributes and implement ``f`` and ``g`` as pure
    PyTorch functions of ``(x, y)``. Only the oracle layer differentiates them.
    """

    #: short name shown in messages
    name = "bilevel"
    #: The unit of every solver's ``step_size_outer``: a solver steps x by
    #: ``step_size_outer * outer_step_unit``, so that one default outer step
    #: suits problems whose hypergradients have different scales.
    outer_step_unit = 1.0
    #: LancBiO's subspace schedule for this kind of problem: the largest
    #: dimension m of its Krylov basis, the factor by which m grows and the
    #: outer iterations between growths. The default is the LancBiO paper's
    #: schedule for its synthetic problem (Yang, Gao and Yuan, ICLR 2025,
    #: Section 4.1): a lower-level Hessian that changes slowly with x.
    subspace_schedule = (80, 1.1, 20)
    #: True for a problem that implements the ``closed_form_*`` gradients
    #: and products below (the oracles' ``hvp_mode='closed_form'``); each
    #: must equal its automatic derivative (the objective checks it at
    #: set-up, a test on every problem).
    has_closed_form_derivatives = False
    #: The numbers of training samples whose mean is ``g`` and of
    #: validation samples whose mean is ``f``; None for a problem without
    #: samples.
    n_inner_samples = None
    n_outer_samples = None
    #: False for a problem whose lower level is not convex in y (a neural
    #: network): y*(x) is then not unique and d2_yy g can be indefinite,
    #: so its reference metrics come from a local solve started at the
    #: solver's own y (``benchmark_utils.local_metrics``), and its
    #: ``inner_strong_convexity`` is None.
    lower_level_convex = True

    def f(self, x, y, batch=None):
        """Upper-level function, a scalar tensor (on the validation samples
        ``batch``, for a problem with samples; None: all of them)."""
        raise NotImplementedError

    def g(self, x, y, batch=None):
        """Lower-level function, a scalar tensor, strongly convex in ``y``
        unless ``lower_level_convex`` is False (on the training samples
        ``batch``; None: all of them)."""
        raise NotImplementedError

    def inner_strong_convexity(self, x):
        """A lower bound, valid for every y, on the eigenvalues of
        d2_yy g(x, y); None where the problem has none. It turns a residual
        into an error bound, ||y - y*(x)|| <= ||d_y g(x, y)|| / mu, with
        which the reference metrics solve only as accurately as their
        reported digits need."""
        return None

    def hessian_preconditioner(self, x, y):
        """``r -> M^-1 r`` for a symmetric positive definite M close to
        d2_yy g(x, y) whose inverse costs little next to an HVP, or None.
        Only the reference metrics use it, to solve y*(x) and v*(x) in
        fewer HVPs: a solver's method is never changed by it."""
        return None

    # Closed-form derivatives. Each derivative of g takes the ``batch`` of
    # ``g`` (training samples), each derivative of f the ``batch`` of ``f``
    # (validation samples), for a problem with samples. They cost what the
    # arithmetic needs: a reverse-mode gradient of 1/2 y^T G y computes G y
    # in its forward pass and G^T (...) in its backward pass, a closed form
    # one product; and they call no torch.func transform, whose fixed cost
    # is many times the arithmetic of a small problem.

    def closed_form_grad_inner_xy(self, x, y, batch=None):
        """(d_x g(x, y), d_y g(x, y)) by the problem's own formulas."""
        raise NotImplementedError

    def closed_form_grad_inner(self, x, y, batch=None):
        """d_y g(x, y); a problem overrides it to skip d_x g."""
        on_batch = batch_arguments(batch)
        return self.closed_form_grad_inner_xy(x, y, *on_batch)[1]

    def closed_form_grad_inner_x(self, x, y, batch=None):
        """d_x g(x, y); a problem overrides it to skip d_y g."""
        on_batch = batch_arguments(batch)
        return self.closed_form_grad_inner_xy(x, y, *on_batch)[0]

    def closed_form_grad_outer(self, x, y, batch=None):
        """(d_x f(x, y), d_y f(x, y)) by the problem's own formulas."""
        raise NotImplementedError


    def closed_form_hvp(self, x, y, v, batch=None):
        """d2_yy g(x, y) v by the problem's own formula."""
        raise NotImplementedError

    def closed_form_hessian_at(self, x, y, batch=None):
        """``v -> d2_yy g(x, y) v`` at a fixed (x, y); a problem overrides
        it to compute once what does not depend on v."""
        on_batch = batch_arguments(batch)
        return lambda v: self.closed_form_hvp(x, y, v, *on_batch)

    def closed_form_cross(self, x, y, v, batch=None):
        """d2_xy g(x, y) v (a vector of the size of x) by its own formula."""
        raise NotImplementedError

    def closed_form_cross_transpose(self, x, y, u, batch=None):
        """d2_yx g(x, y) u = (d2_xy g)^T u, the change of d_y g along x in
        the direction u (a vector of the size of y), by its own formula."""
        raise NotImplementedError

    def closed_form_hvp_and_cross(self, x, y, v, batch=None):
        """Both products; a problem overrides it to share their work."""
        on_batch = batch_arguments(batch)
        return (self.closed_form_hvp(x, y, v, *on_batch),
                self.closed_form_cross(x, y, v, *on_batch))

    def test_metrics(self, x, y):
        """Held-out metrics (``test_accuracy``, ``test_loss``...) at the
        solver's point, for problems that have a test split."""
        return {}

    def to(self, device, dtype):
        """Copy of the problem with every floating tensor on ``device`` in
        ``dtype`` (integer tensors such as labels keep their dtype)."""
        moved = copy.copy(self)
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                if value.is_floating_point():
                    value = value.to(device=device, dtype=dtype)
                else:
                    value = value.to(device=device)
                setattr(moved, key, value)
        return moved

    @property
    def device(self):
        return self.x0.device

    @property
    def dtype(self):
        return self.x0.dtype


def batch_arguments(batch):
    """The arguments after ``(x, y)`` (or ``(x, y, v)``) of a problem's
    functions for ``batch``: none for the full data, so that a problem
    without samples keeps its functions of ``(x, y)``."""
    return () if batch is None else (batch,)


def select_samples(data, batch):
    """The rows ``batch`` of a per-sample tensor (or of sparse features);
    all of them, the tensor itself, for ``batch=None``."""
    return data if batch is None else data[batch]
