"""Variance-reduced stochastic estimators of the bilevel directions, shared
by SABA, SRBA, MA-SOBA, MRBO, VRBO, FSLA and SUSTAIN.

The directions are SOBA's (Dagréou, Ablin, Vaiter and Moreau, NeurIPS
2022), at (x, y, v):

    D_y = d_y g,   D_v = A v - d_y f,   D_x = d_x f - d2_xy g v,

or a hypergradient estimate ``h = d_x f - d2_xy g v`` with v from a
Neumann series of HVPs (stocBiO's, or BSA's random truncation). The
estimators correct a minibatch estimate with memory:

- SAGA (:class:`SagaMemory`): a table of each batch's last value and their
  running mean;
- SARAH / SPIDER (:func:`recursive`): the last direction plus the change of
  the estimate between two points, on the same batch;
- STORM (:func:`storm`): the same with a momentum.

Estimates at two points that a recursion compares are taken on the same
batches (:class:`DirectionBatches`), so that their difference carries
the change of the point and not the noise of the batches.
"""
import math
from dataclasses import dataclass

import torch

from benchmark_utils.linalg.neumann import neumann_series
from benchmark_utils.sampling import FULL_BATCH


def storm(new, old, direction, momentum):
    """STORM's estimator (Cutkosky and Orabona, NeurIPS 2019):
    ``new + momentum (direction - old)``, with ``new`` and ``old`` one
    batch's estimates at the current and the previous point. Momentum 0 is
    the plain minibatch estimate."""
    return new + momentum * (direction - old)


def recursive(new, old, direction):
    """SARAH's and SPIDER's estimator: ``direction + new - old``."""
    return direction + (new - old)


class SagaMemory:
    """SAGA's memory of one quantity (Defazio, Bach and Lacoste-Julien,
    NeurIPS 2014), per fixed batch: the last value seen on each batch and
    their mean, weighted by the batches' sizes.

    Parameters
    ----------
    batch_sizes : list of int
        The size of each fixed batch.
    like : tensor
        A value of the quantity: its shape, dtype and device.
    """

    def __init__(self, batch_sizes, like):
        self.table = torch.zeros((len(batch_sizes), *like.shape),
                                 dtype=like.dtype, device=like.device)
        self.mean = torch.zeros_like(like)
        self.weights = [size / sum(batch_sizes) for size in batch_sizes]

    def update(self, index, value):
        """The variance-reduced direction ``value - table[index] + mean``
        (before the update), then ``value`` stored for batch ``index`` and
        the mean moved accordingly."""
        change = value - self.table[index]
        direction = change + self.mean
        self.mean = self.mean + self.weights[index] * change
        self.table[index] = value
        return direction


@dataclass
class DirectionBatches:
    """The batches of one estimate of the directions: ``inner`` (training
    samples, for d_y g, the HVP of D_v and the cross product), ``outer``
    (validation samples, for d f) and ``neumann`` (one batch per HVP of a
    Neumann series)."""
    inner: object
    outer: object
    neumann: list


def soba_directions(oracles, x, y, v, batches):
    """SOBA's (D_y, D_v, D_x) at (x, y, v), the three of g on
    ``batches.inner`` and those of f on ``batches.outer``: one gradient of
    each and one fused HVP and cross product."""
    grad_y_g = oracles.grad_inner(x, y, batches.inner)
    hvp, cross = oracles.hvp_and_cross(x, y, v, batches.inner)
    grad_x_f, grad_y_f = oracles.grad_outer(x, y, batches.outer)
    return grad_y_g, hvp - grad_y_f, grad_x_f - cross


def neumann_hypergradient(oracles, x, y, batches, step_size, n_steps,
                          random_truncation=False):
    """``d_x f - d2_xy g v`` at (x, y) with ``v`` a Neumann series for
    ``A^-1 d_y f`` of step ``step_size`` and ``n_steps`` = Q HVPs, each on
    its batch of ``batches.neumann``: stocBiO's sum of Q + 1 terms, or,
    with ``random_truncation``, BSA's single term
    ``(Q + 1) eta (I - eta A)^p d_y f`` with p = ``len(batches.neumann)``
    (drawn by the caller). d f on ``batches.outer``, the cross product on
    ``batches.inner``."""
    grad_x_f, grad_y_f = oracles.grad_outer(x, y, batches.outer)
    neumann_batches = iter(batches.neumann)

    def hvp(u):
        return oracles.hvp(x, y, u, next(neumann_batches))
    if random_truncation:
        v = grad_y_f
        for _ in batches.neumann:
            v = v - step_size * hvp(v)
        v = (n_steps + 1) * step_size * v
    else:
        v = neumann_series(hvp, grad_y_f, step_size, n_steps)
    return grad_x_f - oracles.cross(x, y, v, batches.inner)


def full_pass_period(period, batch_size, problem):
    """The outer iterations between two full passes of SRBA and VRBO:
    ``period``, or for 'auto' (n_train + n_val) / (2 B), benchopt's
    benchmark_bilevel's choice for SRBA (a full pass per half epoch of
    minibatch work); 1 in full batch, where every pass is full."""
    if batch_size == FULL_BATCH:
        return 1
    if period == "auto":
        return max(1, math.ceil(
            (problem.n_inner_samples + problem.n_outer_samples)
            / (2 * batch_size)))
    return period


def memory_bytes(tables):
    """The bytes of memory tables given as (rows, like) pairs."""
    return sum(rows * like.numel() * like.element_size()
               for rows, like in tables)


class MomentumHypergradient:
    """The STORM steps of MRBO and SUSTAIN: one step on y along a STORM
    estimate of d_y g and one on x along a STORM estimate of a Neumann
    hypergradient estimate (:func:`neumann_hypergradient`), both estimates
    of a pair, at the current and at the previous point, on the same
    batches (and, with a random truncation, the same truncation).

    Parameters
    ----------
    solver : BilevelSolver
        Its oracles, batch streams, ``linsys_step`` and
        ``n_neumann_steps``.
    random_truncation : bool
        BSA's random truncation of the Neumann series (SUSTAIN) instead of
        stocBiO's full sum (MRBO).
    """

    def __init__(self, solver, random_truncation=False):
        self.solver = solver
        self.random_truncation = random_truncation
        self.previous = self.directions = None

    def estimates(self, x, y, batches):
        """(d_y g, the hypergradient estimate) at (x, y) on ``batches``."""
        solver = self.solver
        return (solver.oracles.grad_inner(x, y, batches.inner),
                neumann_hypergradient(
                    solver.oracles, x, y, batches, solver.linsys_step,
                    solver.n_neumann_steps, self.random_truncation))

    def directions_at(self, x, y, n_hvp_batches, momentum):
        """The STORM directions (d_y, d_x) at (x, y) with weight
        ``momentum`` on the past, from fresh batches (``n_hvp_batches`` for
        the Neumann series): the plain estimates at the first point."""
        solver = self.solver
        batches = DirectionBatches(
            solver.inner_batch(), solver.outer_batch(),
            [solver.second_order_batch() for _ in range(n_hvp_batches)])
        new = self.estimates(x, y, batches)
        if self.previous is None:
            self.directions = new
        else:
            old = self.estimates(*self.previous, batches)
            self.directions = [storm(*estimates, momentum)
                               for estimates in zip(new, old,
                                                    self.directions)]
        self.previous = (x, y)
        return self.directions
