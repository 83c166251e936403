"""Second-order products of g from first-order oracles, by central
differences of gradients (Hessian/Jacobian-free methods).

    d2_yy g(x, y) v ~ (d_y g(x, y + h u) - d_y g(x, y - h u)) / (2 h) ||v||
    d2_xy g(x, y) v ~ (d_x g(x, y + h u) - d_x g(x, y - h u)) / (2 h) ||v||

with u = v / ||v|| and h = delta (1 + ||y||). The error is O(h^2) (the
third derivatives of g) plus a round-off O(eps ||d g|| / h), eps the dtype's
machine epsilon; both are balanced by delta ~ eps^(1/3), the default. Taking
the step along the unit direction and relative to ||y|| makes delta
independent of the scale of v and keeps y +- h u distinct from y in floating
point (as in Jacobian-free Newton-Krylov methods).
"""
import torch


def default_relative_step(dtype):
    """eps^(1/3): the delta that balances the O(h^2) truncation error of a
    central difference against its O(eps / h) round-off."""
    return torch.finfo(dtype).eps ** (1 / 3)


def hvp_and_cross_fd(oracles, x, y, v, delta, batch=None):
    """(d2_yy g v, d2_xy g v) by central differences with relative step
    ``delta``: two ``grad_inner_xy`` calls on the same ``batch`` (None: the
    full data), i.e. 2 gradients and no HVP."""
    norm_v = torch.linalg.vector_norm(v)
    h = delta * (1 + torch.linalg.vector_norm(y))
    # The step h v / ||v||, its scalar formed first: one pass over v. A zero
    # v gives a zero step and both products exactly 0 (no division by 0).
    step = v * (h / norm_v.clamp_min(torch.finfo(v.dtype).tiny))
    grad_x_plus, grad_y_plus = oracles.grad_inner_xy(x, y + step, batch)
    grad_x_minus, grad_y_minus = oracles.grad_inner_xy(x, y - step, batch)
    scale = norm_v / (2 * h)
    return ((grad_y_plus - grad_y_minus) * scale,
            (grad_x_plus - grad_x_minus) * scale)


def hvp_and_cross_fd_along(oracles, x, y, v, delta, batch=None):
    """(d2_yy g v, d2_xy g v) by central differences at y +- delta v, v
    not normalised and delta absolute: the LancBiO authors' HJFBiO on
    hyper-cleaning (``variant='lancbio_code'``). The step then grows with
    ||v||, and so does the O(delta^2 ||v||^2) truncation error. Two
    ``grad_inner_xy`` calls on the same ``batch``: 2 gradients."""
    step = delta * v
    grad_x_plus, grad_y_plus = oracles.grad_inner_xy(x, y + step, batch)
    grad_x_minus, grad_y_minus = oracles.grad_inner_xy(x, y - step, batch)
    scale = 1 / (2 * delta)
    return ((grad_y_plus - grad_y_minus) * scale,
            (grad_x_plus - grad_x_minus) * scale)
