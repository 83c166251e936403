"""Inner loops on the lower-level problem, shared by solvers and metrics."""
import math

import torch

from benchmark_utils.linalg.krylov import conjugate_gradient

ARMIJO = 1e-4
#: Newton-CG stops after this many steps without a new smallest gradient:
#: its gradient has reached the round-off of g's gradient.
MAX_STALLED_STEPS = 3


def inner_gradient_descent(oracles, x, y, n_steps, step_size,
                           next_batch=None):
    """``n_steps`` steps of  y <- y - step_size * d_y g(x, y), from ``y``;
    each step's gradient on the batch ``next_batch()`` draws (stochastic
    gradient descent), or on the full data when ``next_batch`` is None."""
    for _ in range(n_steps):
        batch = None if next_batch is None else next_batch()
        # One fused pass over y: y - step_size * d_y g(x, y).
        y = torch.add(y, oracles.grad_inner(x, y, batch), alpha=-step_size)
    return y


def newton_cg(oracles, x, y, tol, max_newton_steps=100, max_cg_steps=None,
              gradient_target=None, preconditioner_at=None):
    """Minimise g(x, .) from ``y`` by a globalised inexact Newton method.

    Each step solves the Newton system by conjugate gradient with HVPs, to
    the forcing tolerance min(0.5, sqrt(||grad||)) ||grad|| that gives
    superlinear convergence (Nocedal and Wright, Thm 7.2), then backtracks
    (Armijo) on g. It stops after a step shorter than
    ``tol * max(1, ||y||)``: with quadratic convergence, the error after
    that step is far below the step itself. Every derivative goes through
    ``oracles`` and is counted there. It also stops, returning the point of
    smallest gradient, once :data:`MAX_STALLED_STEPS` steps in a row found
    no smaller gradient: the gradient has reached its round-off (with
    kappa = 1e5 that is above 1e-10 of ||y||), and a target below it
    would otherwise cost ``max_newton_steps`` steps.

    ``gradient_target`` (a function of y) sets a gradient norm that is
    enough at y: the method stops as soon as ``||grad|| <= target``, and
    its CG solves stop at half the target instead of going further.

    ``preconditioner_at`` (a function of (x, y) returning a preconditioner
    of d2_yy g(x, y), or None) preconditions each Newton system's CG.
    """
    max_cg_steps = 10 * y.numel() if max_cg_steps is None else max_cg_steps
    best_norm, best_y, stalled = math.inf, y, 0
    gradient = None
    for _ in range(max_newton_steps):
        if gradient is None:
            gradient = oracles.grad_inner(x, y)
        gradient_norm = float(torch.linalg.vector_norm(gradient))
        # Solved exactly, or diverged: nothing more to gain here.
        if gradient_norm == 0.0 or not math.isfinite(gradient_norm):
            break
        if gradient_norm < best_norm:
            best_norm, best_y, stalled = gradient_norm, y, 0
        else:
            stalled += 1
            if stalled >= MAX_STALLED_STEPS:
                # Round-off: the last steps only moved y within it.
                return best_y
        cg_tol = min(0.5, math.sqrt(gradient_norm)) * gradient_norm
        if gradient_target is not None:
            target = gradient_target(y)
            if gradient_norm <= target:
                break
            cg_tol = max(cg_tol, 0.5 * target)
        direction, _ = conjugate_gradient(
            oracles.hessian_at(x, y), gradient,
            tol=cg_tol, max_iter=max_cg_steps, preconditioner=(
                None if preconditioner_at is None
                else preconditioner_at(x, y)))
        full_step = y - direction
        # What the step's acceptance and the stopping test read, in one
        # host read: each read waits for the device.
        value, slope, full_step_value, direction_norm, full_step_norm = (
            torch.stack([
                oracles.value_inner(x, y), torch.dot(gradient, direction),
                oracles.value_inner(x, full_step),
                torch.linalg.vector_norm(direction),
                torch.linalg.vector_norm(full_step)]).tolist())
        step = 1.0
        # The slack absorbs round-off in g near the minimiser.
        slack = 1e-14 * max(1.0, abs(value))
        next_gradient = None
        if full_step_value > value - ARMIJO * slope + slack:
            # Near y* with kappa = 1e5, g's change over a Newton step can
            # be below the round-off of g itself (its quadratic term's
            # entries cancel): the full step is then judged by the
            # gradient, kept for the next step if it is taken.
            next_gradient = oracles.grad_inner(x, full_step)
            if float(torch.linalg.vector_norm(next_gradient)) > (
                    1 - ARMIJO) * gradient_norm:
                next_gradient = None
                step = 0.5
                while (float(oracles.value_inner(x, y - step * direction))
                       > value - ARMIJO * step * slope + slack
                       and step > 1e-12):
                    step *= 0.5
        gradient = next_gradient
        if step == 1.0:
            y, y_norm = full_step, full_step_norm
        else:
            y = y - step * direction
            y_norm = float(torch.linalg.vector_norm(y))
        if step * direction_norm <= tol * max(1.0, y_norm):
            break
    return y
