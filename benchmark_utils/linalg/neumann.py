"""Neumann-series approximations of  v* = A^{-1} b  for SPD A, by HVPs only.

For 0 < eta < 2 / L (L the largest eigenvalue of A),

    A^{-1} = eta sum_{i >= 0} (I - eta A)^i.

Both approximations take Q, ``n_steps``, the number of HVPs that the
truncated sum of Q + 1 terms costs: stocBiO keeps those terms
(:func:`neumann_series`); TTSA and BSA replace their sum by one term of
random index (:func:`neumann_sample`), an unbiased estimate that costs on
average Q / 2 HVPs instead of Q.
"""
import torch


def neumann_series(hvp, b, step_size, n_steps):
    """``eta sum_{i=0}^{n_steps} (I - eta A)^i b`` with ``n_steps`` HVPs.

    The recurrence  u_{i+1} = u_i - eta A u_i,  u_0 = b  gives each term
    from the previous one, as in Ji, Yang and Liang (2021), Algorithm 2. In
    closed form the result is  (I - (I - eta A)^{n_steps + 1}) A^{-1} b.
    """
    term = b
    total = b
    for _ in range(n_steps):
        # One fused pass each: term - eta A term, and the running sum.
        term = torch.add(term, hvp(term), alpha=-step_size)
        total = torch.add(total, term)
    return step_size * total


def draw_truncation(generator, n_steps):
    """A truncation index p uniform on {0, ..., n_steps}.

    Drawn on the host from a CPU ``generator``: p is a loop length, and a
    CPU draw needs no device synchronisation.
    """
    return int(torch.randint(n_steps + 1, (), generator=generator,
                             device="cpu"))


def neumann_sample(hvp, b, step_size, n_steps, generator):
    """``(n_steps + 1) eta (I - eta A)^p b`` with p from
    :func:`draw_truncation`, at the cost of p HVPs: the hypergradient
    estimator of BSA (Ghadimi and Wang 2018, Algorithm 2) and of TTSA (Hong
    et al. 2023, Algorithm 1).

    Its mean over p is  eta sum_{i=0}^{n_steps} (I - eta A)^i b, i.e.
    :func:`neumann_series` with the same ``n_steps``.
    """
    term = b
    for _ in range(draw_truncation(generator, n_steps)):
        term = torch.add(term, hvp(term), alpha=-step_size)
    return ((n_steps + 1) * step_size) * term
