"""The bilevel problem contract shared by every dataset.

    min_x  phi(x) = f(x, y*(x))   with   y*(x) = argmin_y g(x, y)

``x`` and ``y`` are flat 1-D tensors; a problem whose variables have more
structure (a weight matrix) reshapes them inside ``f`` and ``g``.
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
    #: True for a problem that implements the ``closed_form_*`` products
    #: below (the oracles' ``hvp_mode='closed_form'``); each must equal its
    #: automatic derivative (a test checks it).
    has_closed_form_hvp = False

    def f(self, x, y):
        """Upper-level function, a scalar tensor."""
        raise NotImplementedError

    def g(self, x, y):
        """Lower-level function, a scalar tensor, strongly convex in ``y``."""
        raise NotImplementedError

    def inner_strong_convexity(self, x):
        """A lower bound, valid for every y, on the eigenvalues of
        d2_yy g(x, y); None where the problem has none. It turns a residual
        into an error bound, ||y - y*(x)|| <= ||d_y g(x, y)|| / mu, with
        which the reference metrics solve only as accurately as their
        reported digits need."""
        return None

    def closed_form_hvp(self, x, y, v):
        """d2_yy g(x, y) v by the problem's own formula."""
        raise NotImplementedError

    def closed_form_hessian_at(self, x, y):
        """``v -> d2_yy g(x, y) v`` at a fixed (x, y); a problem overrides
        it to compute once what does not depend on v."""
        return lambda v: self.closed_form_hvp(x, y, v)

    def closed_form_cross(self, x, y, v):
        """d2_xy g(x, y) v (a vector of the size of x) by its own formula."""
        raise NotImplementedError

    def closed_form_hvp_and_cross(self, x, y, v):
        """Both products; a problem overrides it to share their work."""
        return self.closed_form_hvp(x, y, v), self.closed_form_cross(x, y, v)

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
