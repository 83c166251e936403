"""Performance profiles across problems (Dolan and Moré, 'Benchmarking
optimization software with performance profiles', Math. Program. 2002).

For each problem p (a dataset of the results) and solver curve s, t(p, s)
is the solver time that s takes to reach the problem's target (infinite if
it never does within its budget); the performance ratio is r(p, s) =
t(p, s) / min over s' of t(p, s'), and the profile of s is

    rho_s(tau) = |{p : r(p, s) <= tau}| / |P|,

the fraction of problems that s solves within a factor tau of the fastest
curve: rho_s(1) is how often s is the fastest, rho_s(tau) for large tau
how often it reaches the target at all.

The target of a problem is the convergence test of Moré and Wild
('Benchmarking derivative-free optimization algorithms', SIAM J. Optim.
2009) on the metric: for a metric that is minimised,

    m <= m_best + tolerance (m_start - m_best),

with m_start the metric at the start (every curve of a problem leaves from
the same point) and m_best the best value that any qualified curve reached
within its budget; mirrored for a metric that is maximised. A curve that
cannot rank first (diverged, failed, value above its start, vanished
hypergradient: :func:`benchmark_utils.plotting.budget.disqualified_runs`)
solves no problem, and a point after the solver-time budget does not
count.
"""
import math

import numpy as np

from benchmark_utils.plotting.budget import (FALLBACK_METRIC, STATUS_COLUMNS,
                                             disqualified_runs,
                                             larger_is_better, records)

#: The performance ratios at which the command line prints a profile.
PRINTED_RATIOS = (1.0, 1.5, 2.0, 4.0, 10.0, 100.0)
#: The targets offered by the report's plot: the fraction of the gap
#: between the start and the best value left to close. Written as text:
#: the page builds a plot's key from a saved view's values, and JavaScript
#: writes 1e-6 as 0.000001 where Python writes 1e-06.
TOLERANCES = ["1e-1", "1e-3", "1e-6"]


def _kept_points(df):
    """The rows that count: not marked diverged, failed or over budget."""
    kept = np.ones(len(df), dtype=bool)
    for status in STATUS_COLUMNS:
        if status in df.columns:
            kept &= ~df[status].fillna(False).to_numpy(dtype=bool)
    return df[kept]


def problems_of(df, metric):
    """The datasets of ``df`` that record ``metric``, in their order."""
    return [dataset for dataset in df["dataset_name"].unique()
            if records(df[df["dataset_name"] == dataset], metric)]


def times_to_target(df, metric, tolerance):
    """{problem: {solver_name: t(p, s)}} over the problems that record
    ``metric`` and every curve of ``df``: the median over repetitions of
    the solver time of each repetition's first point at the target
    (infinite where a repetition never reaches it, so that a curve solves
    a problem when most of its repetitions do)."""
    sign = -1.0 if larger_is_better(metric) else 1.0
    df = df[[column for column in df.columns if column in (
        "dataset_name", "solver_name", "idx_rep", "stop_val", "time",
        metric, FALLBACK_METRIC, *STATUS_COLUMNS)]]
    disqualified = disqualified_runs(df, metric, "time", math.inf)
    solvers = list(df["solver_name"].unique())
    times = {}
    for problem in problems_of(df, metric):
        data = df[df["dataset_name"] == problem].sort_values("stop_val")
        # The metric made minimised: sign * metric.
        values = sign * data[metric].astype(float)
        start = float(values[data["stop_val"] == data["stop_val"].min()]
                      .median())
        kept = _kept_points(data)
        qualified = kept[[(problem, solver) not in disqualified
                          for solver in kept["solver_name"]]]
        reached = sign * qualified[metric].astype(float)
        best = float(np.nanmin(reached)) if reached.notna().any() \
            else math.nan
        target = best + tolerance * (start - best)
        times[problem] = {}
        for solver in solvers:
            runs = qualified[qualified["solver_name"] == solver]
            if runs.empty:
                times[problem][solver] = math.inf
                continue
            per_repetition = [
                float(rep["time"][sign * rep[metric] <= target].min())
                if (sign * rep[metric] <= target).any() else math.inf
                for _, rep in runs.groupby("idx_rep")]
            times[problem][solver] = float(np.median(per_repetition))
    return times


def performance_ratios(times):
    """{problem: {solver: r(p, s)}}: each time over the problem's fastest
    (1 for a time of 0 that is the fastest, infinite where the fastest is
    0 and the curve's time is not, or where nobody reached the target)."""
    ratios = {}
    for problem, by_solver in times.items():
        fastest = min(by_solver.values(), default=math.inf)
        ratios[problem] = {
            solver: (math.inf if not math.isfinite(time)
                     or not math.isfinite(fastest)
                     else 1.0 if time == fastest
                     else math.inf if fastest == 0 else time / fastest)
            for solver, time in by_solver.items()}
    return ratios


def profile(ratios, taus):
    """{solver: [rho_s(tau) for tau in taus]}; at tau = inf, the fraction
    of the problems solved at all (an infinite ratio is never within
    tau)."""
    problems = list(ratios)
    solvers = list(dict.fromkeys(solver for by_solver in ratios.values()
                                 for solver in by_solver))

    def within(ratio, tau):
        return math.isfinite(ratio) and ratio <= tau

    return {solver: [sum(within(ratios[p].get(solver, math.inf), tau)
                         for p in problems) / len(problems)
                     for tau in taus]
            for solver in solvers}


def profile_steps(ratios, solver, tau_max):
    """The profile of ``solver`` as a step curve (x, y) from tau = 1 to
    ``tau_max``: a point at 1, two at each ratio where it steps up (its
    value before and after), and one at ``tau_max``."""
    n_problems = len(ratios)
    own = sorted(ratios[p].get(solver, math.inf) for p in ratios)
    finite = [ratio for ratio in own if math.isfinite(ratio)]
    x, y = [1.0], [sum(ratio <= 1.0 for ratio in own) / n_problems]
    for ratio in sorted(set(finite)):
        if ratio <= 1.0:
            continue
        x += [ratio, ratio]
        y += [y[-1], sum(r <= ratio for r in own) / n_problems]
    x.append(max(tau_max, x[-1]))
    y.append(y[-1])
    return x, y


def largest_finite_ratio(ratios):
    """The largest finite performance ratio (1 if none), where a profile
    plot ends."""
    finite = [ratio for by_solver in ratios.values()
              for ratio in by_solver.values() if math.isfinite(ratio)]
    return max(finite, default=1.0)
