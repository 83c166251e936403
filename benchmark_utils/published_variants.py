"""The baselines as the LancBiO authors' code runs them (Yang, Gao and Yuan,
ICLR 2025, the public code of its synthetic and hyper-cleaning
experiments), as an option of each solver: ``variant='lancbio_code'``;
``variant='original'``, the default, is the method as its own paper states
it.

=========  ==============================================================
solver     ``variant='lancbio_code'`` (experiment where the code does it)
=========  ==============================================================
SOBA       sequential: y, then v at the new y, then x with the new v
           (AmIGO-GD with T = Q = 1; synthetic)
TTSA, BSA  v = eta (I - eta A)^p b, p uniform on {0, ..., Q-1}, without
           the factor Q, then Q gradient steps on v; the decaying outer
           step floored at 0.01 (synthetic)
SubBiO     the projected Hessian evaluated at (x, v) instead of (x, y)
           (synthetic)
LancBiO    m grows when k % every == every - 1 (k from 1) and the process
           restarts on a calendar, when m == 1 or k % m == 1 (synthetic)
F2SA       y step gamma (d_y f + lambda d_y g), lambda_{k+1} = lambda_k +
           growth / (k + 1) without a cap, outer step gamma / (k + 1)^(1/7)
           (hyper-cleaning)
HJFBiO     differences at y +- delta v (v not normalised, delta
           absolute), v moving with the y step (hyper-cleaning)
=========  ==============================================================

Written from this description of the differences, not from the authors'
code; each is checked against a step computed by hand
(tests/test_published_variants.py). The authors' start of v is not a
variant of any method: their code gives it to every method of an
experiment, v0 ~ N(0, I) on the synthetic problem and v0 uniform on
[0, 1) on hyper-cleaning (HJFBiO's included), so it is the objective's
``v_start`` ('normal', 'uniform'), one draw for every curve of a
repetition (:func:`seeded_start`). The fixed inner step 1e-5 of their
synthetic experiment is a step-size value of the configs
(configs/paper_synthetic_as_published.yml).
"""
import math

import torch

from benchmark_utils.linalg.neumann import draw_truncation
from benchmark_utils.validation import check_choice

ORIGINAL = "original"
LANCBIO_CODE = "lancbio_code"
VARIANTS = (ORIGINAL, LANCBIO_CODE)
#: The floor of TTSA's and BSA's decaying outer steps in the authors'
#: synthetic experiment, in the problem's outer-step units.
OUTER_STEP_FLOOR = 0.01
#: The exponent of the decay of F2SA's outer step in the authors'
#: hyper-cleaning experiment: gamma / (k + 1)^(1/7).
F2SA_OUTER_DECAY = 1 / 7
#: The distributions of a seeded start.
STARTS = ("normal", "uniform")


def check_variant(value):
    """``variant`` must be 'original' or 'lancbio_code'."""
    check_choice("variant", value, VARIANTS)


def seeded_start(like, seed, distribution):
    """A vector of the shape, dtype and device of ``like``, standard
    normal or uniform on [0, 1) (``distribution``), drawn on the CPU from
    a generator seeded with ``seed`` and then moved: the same vector on
    every device."""
    check_choice("distribution", distribution, STARTS)
    generator = torch.Generator().manual_seed(seed)
    draw = torch.randn if distribution == "normal" else torch.rand
    return draw(like.shape, generator=generator,
                dtype=like.dtype).to(like.device)


def neumann_then_descent(hvp, b, step_size, n_steps, generator):
    """TTSA's and BSA's v in the authors' synthetic code: the term
    ``eta (I - eta A)^p b`` with p uniform on {0, ..., Q-1} (``n_steps`` =
    Q >= 1, drawn by ``generator``), without the factor Q that makes the
    original estimate unbiased, then Q gradient steps
    ``v <- v - eta (A v - b)`` from it. p + Q HVPs."""
    term = b
    for _ in range(draw_truncation(generator, n_steps - 1)):
        term = torch.add(term, hvp(term), alpha=-step_size)
    v = step_size * term
    for _ in range(n_steps):
        v = torch.add(v, hvp(v) - b, alpha=-step_size)
    return v


def calendar_schedule(k, m, growth, every, max_dim):
    """``(m, restart)`` at outer iteration ``k`` (counted from 1) of the
    authors' LancBiO: m becomes min(ceil(growth m), max_dim) when
    k % every == every - 1, then the process restarts when m == 1 or
    k % m == 1. Once m has changed, this calendar no longer restarts when
    the basis holds m vectors: a cycle can be longer or shorter than m."""
    if k % every == every - 1:
        m = min(math.ceil(growth * m), max_dim)
    return m, m == 1 or k % m == 1


def largest_calendar_basis(m, growth, every, max_dim):
    """The most vectors the basis ever holds under
    :func:`calendar_schedule` from m: each growth of m happens at most
    max_dim times, and once m stays fixed the cycles have m iterations, so
    the schedule is followed until then and one cycle more."""
    dim = largest = 0
    horizon = every * (max_dim + 2) + 2 * max_dim
    for k in range(1, horizon + 1):
        m, restart = calendar_schedule(k, m, growth, every, max_dim)
        dim = 1 if restart else dim + 1
        largest = max(largest, dim)
    return largest
