"""Curves and budget tables from benchopt's results table, for plots/.

One row of the results is one evaluation of one solver's run: its
``stop_val`` (the evaluation's index on the curve), its ``idx_rep``
(repetition), its solver ``time`` and the ``objective_*`` columns of
``Objective.evaluate_result``. Repetitions are aligned on ``stop_val``, as in
benchopt's own ``objective_curve``.
"""
import numpy as np
from pandas.api.types import is_numeric_dtype

#: Oracle counts and the measured oracle costs: budgets, not quality metrics.
COUNT_COLUMNS = ("objective_n_grad", "objective_n_hvp", "objective_n_cross",
                 "objective_n_epochs", "objective_n_outer")
COST_COLUMNS = ("objective_r_hvp", "objective_r_cross")
#: Passes over the training samples, the x-axis of stochastic methods.
EPOCH_COLUMN = "objective_n_epochs"
#: True on the point where a curve was ended as diverged.
DIVERGED_COLUMN = "objective_diverged"
#: True on the point where a curve was ended by a failure (its solver
#: raised, or its evaluation ran out of time).
FAILED_COLUMN = "objective_failed"
#: The reasons that keep a run from ranking first, from the least to the
#: most serious: a run with none ranks before every run with one, a run
#: that finished before one that diverged or failed.
DISQUALIFICATIONS = ("hypergradient vanished", "value above start",
                     "diverged", "failed")
#: Hypergradient norms, which are exactly 0 only where a derivative
#: vanished.
VANISHING_METRICS = ("objective_hypergrad_norm",
                     "objective_hypergrad_norm_at_y")
#: Metrics where a larger value is better; every other one is minimised.
LARGER_IS_BETTER = ("objective_test_accuracy", "objective_val_accuracy",
                    "objective_corrupted_f1")
#: The band drawn around a median curve: these quantiles over repetitions
#: (benchopt's own curves use the same).
BAND_QUANTILES = (0.2, 0.8)


def metric_columns(df):
    """The numeric ``objective_*`` columns that measure quality."""
    return [column for column in df.columns
            if column.startswith("objective_") and column != "objective_name"
            and column not in COUNT_COLUMNS + COST_COLUMNS
            and column not in (DIVERGED_COLUMN, FAILED_COLUMN)
            and is_numeric_dtype(df[column])]


def larger_is_better(metric):
    return metric in LARGER_IS_BETTER


def problem_costs(df):
    """(r_hvp, r_cross) of one problem: the median of its measurements (the
    objective measures them once per set-up, so runs of the same problem
    carry slightly different values; one problem gets one work axis)."""
    return (float(df["objective_r_hvp"].median()),
            float(df["objective_r_cross"].median()))


def gradient_equivalent_work(df, r_hvp, r_cross):
    """n_grad + r_hvp n_hvp + r_cross n_cross of every row."""
    return (df["objective_n_grad"] + r_hvp * df["objective_n_hvp"]
            + r_cross * df["objective_n_cross"])


def aligned_by_repetition(df, values):
    """``values`` (one per row of ``df``) as an array (stop_val, repetition).

    A repetition whose curve ended earlier (time-out, divergence, stopping
    rule) keeps its last row for the later ``stop_val``: its final state is
    what it reached with the budget it had.
    """
    rows = (df.assign(row=np.arange(len(df)))
            .pivot_table(index="stop_val", columns="idx_rep", values="row",
                         aggfunc="last")
            .sort_index().ffill())
    values = np.asarray(values, dtype=float)
    return np.where(rows.isna(), np.nan,
                    values[rows.fillna(0).to_numpy(dtype=int)])


def _finite_or_nan(array):
    return np.where(np.isfinite(array), array, np.nan).tolist()


def median_curve(df, x_values, metric):
    """The median over repetitions of ``metric`` against the median of
    ``x_values``, with the band of quantiles ``BAND_QUANTILES`` of the
    metric when there are several repetitions.

    A missing value (NaN: a diverged iterate) counts as the worst possible
    one, so a diverging repetition pulls the median and the band down
    instead of dropping out of them; a median that is itself the worst value
    is left out of the curve (NaN).
    """
    x = np.median(aligned_by_repetition(df, x_values), axis=1)
    y = aligned_by_repetition(df, df[metric])
    worst = -np.inf if larger_is_better(metric) else np.inf
    y = np.where(np.isnan(y), worst, y)
    curve = dict(x=x.tolist(), y=_finite_or_nan(np.median(y, axis=1)))
    if y.shape[1] > 1:
        # Between two worst values the interpolation gives NaN: left out.
        with np.errstate(invalid="ignore"):
            low, high = np.quantile(y, BAND_QUANTILES, axis=1)
        curve.update(y_low=_finite_or_nan(low), y_high=_finite_or_nan(high))
    return curve


def best_within_budget(df, metric, budget_column, budget):
    """For each dataset and solver, the median over repetitions of the best
    ``metric`` among the rows whose ``budget_column`` is at most ``budget``.

    NaN values (diverged iterates) and the points marked as diverged or
    failed are skipped; a solver with no finite value within the budget
    gets NaN.
    Returns a Series indexed by (dataset_name, solver_name), in the order
    of ``df``.
    """
    runs = ["dataset_name", "solver_name"]
    kept = df[budget_column] <= budget
    for status in (DIVERGED_COLUMN, FAILED_COLUMN):
        if status in df.columns:
            kept &= ~df[status].fillna(False).astype(bool)
    within = df.loc[kept, [*runs, "idx_rep", metric]]
    per_repetition = within.groupby([*runs, "idx_rep"])[metric]
    best = (per_repetition.max() if larger_is_better(metric)
            else per_repetition.min())
    all_runs = df[runs].drop_duplicates().set_index(runs).index
    return best.groupby(level=runs).median().reindex(all_runs)


def marked_runs(df, column):
    """The (dataset_name, solver_name) pairs of which a repetition has a
    row marked in the boolean ``column``."""
    if column not in df.columns:
        return set()
    marked = df[column].fillna(False).to_numpy(dtype=bool)
    return set(df.loc[marked, ["dataset_name", "solver_name"]]
               .itertuples(index=False, name=None))


def failed_runs(df):
    """The (dataset_name, solver_name) pairs of which a repetition failed
    (a row marked in ``objective_failed``)."""
    return marked_runs(df, FAILED_COLUMN)


def diverged_runs(df):
    """The (dataset_name, solver_name) pairs of which a repetition diverged
    (a row marked in ``objective_diverged``, or a non-finite value where no
    failure explains it)."""
    marked = np.zeros(len(df), dtype=bool)
    if "objective_value" in df.columns:
        marked |= ~np.isfinite(df["objective_value"].to_numpy(dtype=float))
    if FAILED_COLUMN in df.columns:
        marked &= ~df[FAILED_COLUMN].fillna(False).to_numpy(dtype=bool)
    diverged = set(df.loc[marked, ["dataset_name", "solver_name"]]
                   .itertuples(index=False, name=None))
    return diverged | marked_runs(df, DIVERGED_COLUMN)


def ended_runs(df):
    """(dataset, solver) -> 'failed' or 'diverged', for the runs that did
    not finish (failed first: a failure explains what follows it)."""
    return {**dict.fromkeys(diverged_runs(df), "diverged"),
            **dict.fromkeys(failed_runs(df), "failed")}


def ended_above_start(df, budget_column, budget):
    """The (dataset_name, solver_name) pairs of which a repetition's last
    value within the budget is above its first: a run that made the
    upper level worse (saturated hyper-cleaning weights, where the
    hypergradient is exactly 0) must not rank first on another metric."""
    if "objective_value" not in df.columns:
        return set()
    runs = ["dataset_name", "solver_name", "idx_rep"]
    within = df.loc[df[budget_column] <= budget].sort_values("stop_val")
    values = within.groupby(runs)["objective_value"]
    worse = values.last() > values.first()
    return {run[:2] for run in worse[worse].index}


def vanished_hypergradient(df, metric, budget_column, budget):
    """The (dataset_name, solver_name) pairs of which a repetition's
    ``metric`` (a hypergradient norm) is exactly 0 within the budget after
    a non-zero start: in floating point that is a derivative that vanished
    (hyper-cleaning weights sigma(x_i) saturated at 0 or 1, where
    sigma'(x_i) rounds to 0), not a stationary point."""
    runs = ["dataset_name", "solver_name", "idx_rep"]
    within = df.loc[df[budget_column] <= budget].sort_values("stop_val")
    values = within.groupby(runs)[metric]
    vanished = (values.min() == 0) & (values.first() != 0)
    return {run[:2] for run in vanished[vanished].index}


def disqualified_runs(df, metric, budget_column, budget):
    """(dataset, solver) -> why it cannot rank first within the budget:
    'failed' or 'diverged'; for a hypergradient norm, 'hypergradient
    vanished'; for a metric other than the value itself, 'value above
    start'."""
    reasons = {}
    if metric in VANISHING_METRICS:
        reasons.update(dict.fromkeys(
            vanished_hypergradient(df, metric, budget_column, budget),
            "hypergradient vanished"))
    if metric != "objective_value":
        reasons.update(dict.fromkeys(
            ended_above_start(df, budget_column, budget), "value above start"))
    reasons.update(ended_runs(df))
    return reasons


def ranked(solvers, values, metric, disqualified):
    """``solvers`` in rank order: the runs without a disqualification by
    their ``values`` (best first, NaN last), then the others by the
    seriousness of their reason (:data:`DISQUALIFICATIONS`: a diverged or
    failed run after every run that finished), each group by value."""
    sign = -1.0 if larger_is_better(metric) else 1.0

    def key(item):
        solver, value, reason = item
        severity = 0 if reason is None else 1 + DISQUALIFICATIONS.index(
            reason)
        finite = np.isfinite(value)
        return severity, not finite, sign * value if finite else 0.0, solver

    return [solver for solver, _, _ in sorted(
        zip(solvers, values, disqualified), key=key)]


def bold_best(values, metric, disqualified=None):
    """Table cells: the best of ``values`` (all of them, on a tie) as
    ``**value**``, which benchopt's HTML table renders in bold.

    ``disqualified`` (one reason or None per value) marks the values that
    cannot be best: they are shown as ``value (reason)`` and never bold.
    """
    disqualified = disqualified or [None] * len(values)
    finite = [value for value, reason in zip(values, disqualified)
              if np.isfinite(value) and reason is None]
    best = (None if not finite else max(finite) if larger_is_better(metric)
            else min(finite))
    return [f"{float(value)!r} ({reason})" if reason is not None
            else f"**{float(value)!r}**" if value == best else value
            for value, reason in zip(values, disqualified)]
