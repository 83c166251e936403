"""Measured cost of the oracles of a problem, in units of one gradient.

The gradient-equivalent work of a run (the budget plots' work axis) is
``n_grad + r_hvp * n_hvp + r_cross * n_cross``: ``r_hvp`` and ``r_cross`` are
the times of one HVP and one cross product divided by the time of one
gradient ``d_y g``, measured here once per problem on its own device and
dtype. Theory bounds an HVP by a small constant number of gradients (about
2 for reverse-over-reverse; Griewank and Walther, *Evaluating Derivatives*,
2008, Section 4.6); the measured ratio includes the overheads of the
hardware and of ``torch.func``.
"""
import math
import statistics
import time

import torch

from benchmark_utils.oracles import Oracles, available_hvp_modes
from benchmark_utils.validation import check_int, check_positive

#: Oracle calls timed, by name; each takes the oracles and a point (x, y, v).
ORACLE_CALLS = {
    "grad": lambda oracles, x, y, v: oracles.grad_inner(x, y),
    "hvp": lambda oracles, x, y, v: oracles.hvp(x, y, v),
    "cross": lambda oracles, x, y, v: oracles.cross(x, y, v),
    "hvp_and_cross": lambda oracles, x, y, v: oracles.hvp_and_cross(x, y, v),
}


def wait_for(device):
    """Block until the device has finished its queued work: CUDA kernels
    run asynchronously, so a timer read without it measures the launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_calls(call, n_calls, device):
    """Seconds per call of ``n_calls`` successive calls of ``call``, with
    the device synchronised before the clock starts and before it stops."""
    wait_for(device)
    start = time.perf_counter()
    for _ in range(n_calls):
        call()
    wait_for(device)
    return (time.perf_counter() - start) / n_calls


def median_call_times(calls, device, n_samples=5, min_sample_time=2e-3):
    """Median seconds per call of each function of ``calls`` (a dict of
    calls without arguments).

    Each is called once untimed (``torch.func`` builds its transforms and
    the allocator warms up on the first call), then timed ``n_samples``
    times, the calls taking turns so that a slow spell of a shared machine
    hits all of them alike. A sample times as many successive calls as
    fill ``min_sample_time`` seconds, so that microsecond oracles of small
    problems are not lost in the timer's resolution.
    """
    check_int("n_samples", n_samples, 1)
    check_positive("min_sample_time", min_sample_time)
    calls_per_sample = {}
    for name, call in calls.items():
        _time_calls(call, 1, device)
        one_call = _time_calls(call, 1, device)
        calls_per_sample[name] = max(1, math.ceil(min_sample_time / one_call))
    samples = {name: [] for name in calls}
    for _ in range(n_samples):
        for name, call in calls.items():
            samples[name].append(
                _time_calls(call, calls_per_sample[name], device))
    return {name: statistics.median(times) for name, times in samples.items()}


def measure_oracle_costs(problem, hvp_mode="reverse", n_samples=5,
                         min_sample_time=2e-3):
    """Median time of one call of each oracle at the problem's start point.

    Timed by :func:`median_call_times`: one untimed call each, then
    ``n_samples`` samples, the oracles taking turns.

    Parameters
    ----------
    problem : BilevelProblem
        The problem, on the device and in the dtype the solvers use.
    hvp_mode : str
        The oracles' HVP mode (see :class:`Oracles`).
    n_samples : int
        Timed samples per oracle; the median is kept.
    min_sample_time : float
        Shortest duration of one sample, in seconds.

    Returns
    -------
    dict
        ``time_grad`` (seconds per gradient ``d_y g``) and, as ratios to it,
        ``r_hvp``, ``r_cross`` and ``r_hvp_and_cross`` (the fused call).
    """
    oracles = Oracles(problem, hvp_mode)
    x, y = problem.x0, problem.y0
    v = torch.ones_like(y)
    calls = {name: (lambda call=call: call(oracles, x, y, v))
             for name, call in ORACLE_CALLS.items()}
    medians = median_call_times(calls, problem.device, n_samples,
                                min_sample_time)
    time_grad = medians.pop("grad")
    return dict(time_grad=time_grad,
                **{f"r_{name}": seconds / time_grad
                   for name, seconds in medians.items()})


def select_hvp_mode(problem, **measure_options):
    """The derivative mode that 'auto' picks for this problem.

    The problem's closed forms where it supplies them: they compute what
    the formulas need and nothing more, without torch.func's fixed cost
    (docs/performance.md has their costs next to automatic
    differentiation's on every problem), and a choice that does not depend
    on a timing keeps the same arithmetic, so the same curve, from one run
    to the next. Otherwise the faster of the automatic-differentiation
    modes, by measurement: their speed depends on the problem and the
    hardware (forward-over-reverse was 4 to 40 times slower than
    reverse-over-reverse on this benchmark's CPU problems). A mode that
    cannot differentiate the problem (forward mode through an operation
    without a forward-mode rule) is passed over.

    Returns
    -------
    mode : str
        'reverse', 'forward' or 'closed_form'.
    costs : dict
        The :func:`measure_oracle_costs` of the chosen mode.
    """
    if problem.has_closed_form_derivatives:
        return "closed_form", measure_oracle_costs(problem, "closed_form",
                                                   **measure_options)
    modes = available_hvp_modes(problem)
    measured = {}
    for mode in modes:
        try:
            measured[mode] = measure_oracle_costs(problem, mode,
                                                  **measure_options)
        except (RuntimeError, NotImplementedError):
            continue
    if not measured:
        raise RuntimeError(
            f"No HVP mode of {modes} can differentiate this problem.")
    # Both modes take the same reverse-mode gradient: compare ratios, each
    # HVP time divided by a gradient timed in turn with it, so that a slow
    # spell of a shared machine between the two measurements does not
    # decide the choice.
    mode = min(measured, key=lambda m: measured[m]["r_hvp"])
    return mode, measured[mode]
