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
                 "objective_n_outer")
COST_COLUMNS = ("objective_r_hvp", "objective_r_cross")
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

    NaN values (diverged iterates) are skipped; a solver with no finite value
    within the budget gets NaN. Returns a Series indexed by
    (dataset_name, solver_name), in the order of ``df``.
    """
    runs = ["dataset_name", "solver_name"]
    within = df.loc[df[budget_column] <= budget, [*runs, "idx_rep", metric]]
    per_repetition = within.groupby([*runs, "idx_rep"])[metric]
    best = (per_repetition.max() if larger_is_better(metric)
            else per_repetition.min())
    all_runs = df[runs].drop_duplicates().set_index(runs).index
    return best.groupby(level=runs).median().reindex(all_runs)


def bold_best(values, metric):
    """Table cells: the best of ``values`` (all of them, on a tie) as
    ``**value**``, which benchopt's HTML table renders in bold."""
    finite = [value for value in values if np.isfinite(value)]
    if not finite:
        return list(values)
    best = max(finite) if larger_is_better(metric) else min(finite)
    return [f"**{float(value)!r}**" if value == best else value
            for value in values]
