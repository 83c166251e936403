"""Iterative differentiation (ITD): the hypergradient of x -> f(x, y_T(x))
through T unrolled gradient steps on the lower level, by reverse mode.

The steps  y_{t+1} = y_t - theta d_y g(x, y_t),  t = 0..T-1,  from a y_0
taken as constant in x, have Jacobians  d y_{t+1} / d y_t = I - theta A_t
and  d y_{t+1} / d x = -theta B_t^T, with A_t = d2_yy g(x, y_t) and
B_t = d2_xy g(x, y_t). Back-propagating the adjoint alpha from y_T gives the
reverse-mode hypergradient (Franceschi et al., 2017)

    alpha_T = d_y f(x, y_T),   h = d_x f(x, y_T),
    h <- h - theta B_t alpha_{t+1},   alpha_t = (I - theta A_t) alpha_{t+1}

for t = T-1 down to T-K: K = T is the full unroll, K < T the K-step
truncated back-propagation (K-RMD) of Shaban et al. (2019).
"""
import torch


def unrolled_gradient_descent(oracles, x, y, n_steps, step_size,
                              next_batch=None):
    """``n_steps`` steps of  y <- y - step_size * d_y g(x, y)  from ``y``,
    each on the batch ``next_batch()`` draws (the full data when
    ``next_batch`` is None).

    Returns the last iterate y_T and the steps taken: the points
    y_0..y_{T-1} where the gradients were taken, each with its batch, at
    which the reverse pass linearises g.
    """
    steps = []
    for _ in range(n_steps):
        batch = None if next_batch is None else next_batch()
        steps.append((y, batch))
        y = torch.add(y, oracles.grad_inner(x, y, batch), alpha=-step_size)
    return y, steps


def unrolled_hypergradient(oracles, x, steps, grad_x_f, grad_y_f,
                           step_size, n_backprop_steps=None):
    """Reverse pass through the steps that produced ``y_T`` from ``iterates``.

    Parameters
    ----------
    oracles : Oracles
        Counting oracles; each step back costs one linearisation of d g.
    x : tensor
        Outer variable.
    steps : list of (tensor, batch)
        y_0..y_{T-1} with their batches, as returned by
        :func:`unrolled_gradient_descent`.
    grad_x_f, grad_y_f : tensors
        d_x f and d_y f at (x, y_T).
    step_size : float
        The inner step theta of the forward pass.
    n_backprop_steps : int or None
        Number K of steps back-propagated through, the last K ones (None:
        all T).

    Returns
    -------
    The hypergradient estimate h, of the size of x. Per call: K cross
    products and K - 1 HVPs (the adjoint after the last step back is not
    needed, so that step only takes the cross product).
    """
    n_steps = len(steps)
    n_backprop = n_steps if n_backprop_steps is None else n_backprop_steps
    hypergradient, alpha = grad_x_f, grad_y_f
    for t in range(n_steps - 1, n_steps - n_backprop - 1, -1):
        y, batch = steps[t]
        if t == n_steps - n_backprop:
            cross = oracles.cross(x, y, alpha, batch)
        else:
            hvp, cross = oracles.hvp_and_cross(x, y, alpha, batch)
            alpha = torch.add(alpha, hvp, alpha=-step_size)
        hypergradient = torch.add(hypergradient, cross, alpha=-step_size)
    return hypergradient
