"""Curves, budget tables, labels and colours from benchopt's results
table, for plots/.

One row of the results is one evaluation of one solver's run: its
``stop_val`` (the evaluation's index on the curve), its ``idx_rep``
(repetition), its solver ``time`` and the ``objective_*`` columns of
``Objective.evaluate_result``. Repetitions are aligned on ``stop_val``, as in
benchopt's own ``objective_curve``.

A run that diverged, failed, ended above its start or whose hypergradient
vanished never ranks first (:func:`disqualified_runs`, :func:`ranked`);
ranks and bold cells rest on relative gaps, not on printed digits
(:data:`RELATIVE_TIE`, :func:`budget_cells`); a curve is labelled by its
solver's name and the parameters that differ between that solver's curves
(:func:`curve_labels`), with a colour of :data:`PALETTE` and a marker of
its own (:func:`curve_styles`).
"""
import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from benchmark_utils.stopping import OVER_BUDGET_COLUMN

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
#: The step sizes a curve used, resolved from 'auto' or 'tuned' (one column
#: per step-size parameter, the same on every point of a curve).
STEP_SIZE_COLUMN_PREFIX = "objective_step_size_"
#: Columns of a point's status, not of its quality (OVER_BUDGET_COLUMN: the
#: points after the solver-time budget, as the stopping rule marks them).
STATUS_COLUMNS = (DIVERGED_COLUMN, FAILED_COLUMN, OVER_BUDGET_COLUMN)
#: The reasons that keep a run from ranking first, from the least to the
#: most serious: a run with none ranks before every run with one, a run
#: that finished before one that diverged or failed.
DISQUALIFICATIONS = ("hypergradient vanished", "value above start",
                     "diverged", "failed")
#: Hypergradient norms, which fall to VANISHED_RATIO of their start only
#: where a derivative vanished.
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
            and column not in STATUS_COLUMNS
            and not column.startswith(STEP_SIZE_COLUMN_PREFIX)
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
    what it reached with the budget it had. Before a repetition's first
    row, NaN.
    """
    stops, stop_index = np.unique(df["stop_val"].to_numpy(),
                                  return_inverse=True)
    reps, rep_index = np.unique(df["idx_rep"].to_numpy(),
                                return_inverse=True)
    rows = np.full((len(stops), len(reps)), -1)
    rows[stop_index, rep_index] = np.arange(len(df))
    for k in range(1, len(stops)):
        rows[k] = np.where(rows[k] < 0, rows[k - 1], rows[k])
    values = np.asarray(values, dtype=float)
    return np.where(rows < 0, np.nan, values[rows])


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

    NaN values (diverged iterates) and the points marked as diverged,
    failed or over the solver-time budget are skipped; a solver with no
    finite value within the budget gets NaN.
    Returns a Series indexed by (dataset_name, solver_name), in the order
    of ``df``.
    """
    runs = ["dataset_name", "solver_name"]
    kept = df[budget_column] <= budget
    for status in STATUS_COLUMNS:
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


#: A hypergradient norm at most this times its start has vanished: the
#: round-off of a float64 computation stops a converging method near
#: eps (2.2e-16) times its scale, so a norm below eps squared of its start
#: is an underflow, not a stationary point.
VANISHED_RATIO = float(np.finfo(np.float64).eps) ** 2


def vanished_hypergradient(df, metric, budget_column, budget):
    """The (dataset_name, solver_name) pairs of which a repetition's
    ``metric`` (a hypergradient norm) falls to :data:`VANISHED_RATIO` of
    its non-zero start or below within the budget: in floating point that
    is a derivative that vanished (hyper-cleaning weights sigma(x_i)
    saturated at 0 or 1, where sigma'(x_i) underflows: the quickstart's
    tuned AmIGO-GD reaches 8e-68 there), not a stationary point."""
    runs = ["dataset_name", "solver_name", "idx_rep"]
    within = df.loc[df[budget_column] <= budget].sort_values("stop_val")
    values = within.groupby(runs)[metric]
    vanished = ((values.min() <= VANISHED_RATIO * values.first().abs())
                & (values.first() != 0))
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


def hvp_free_runs(df):
    """The (dataset_name, solver_name) pairs that did work (gradients) but
    spent no HVP: first-order and Hessian-free methods, which an HVP
    budget cannot rank."""
    runs = df.groupby(["dataset_name", "solver_name"])
    free = ((runs["objective_n_hvp"].max() == 0)
            & (runs["objective_n_grad"].max() > 0))
    return set(free[free].index)


# Labels, colours and the dataset a plot opens on.

#: Twenty colours that stay apart on a white page: matplotlib's tab10,
#: then ten darker or complementary ones chosen greedily to be as far as
#: possible (CIEDE2000) from those already taken. Each curve also gets its
#: own marker, so that two similar colours are still told apart.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#0b4008", "#0504aa",
    "#7d7103", "#750851", "#00555a", "#fe7b7c", "#b2996e", "#363737",
    "#770001", "#8f99fb")
#: The dataset option of the plots that picks, for the plot's metric, the
#: first dataset of the results that records it: a saved view of a test
#: metric then never opens on a problem without test data.
FIRST_WITH_METRIC = "first with the metric"
#: The metric shown instead on a dataset that does not record the metric
#: asked for (a view of the test accuracy on a run of the quadratic only).
FALLBACK_METRIC = "objective_value"
#: Metrics recorded only by problems with held-out data (classification
#: tasks): offered on every report, so that a saved view of one opens on
#: any run (on a run without them it shows FALLBACK_METRIC, and says so).
HELD_OUT_METRICS = ("objective_test_accuracy", "objective_test_loss",
                    "objective_val_accuracy", "objective_corrupted_f1")
#: Axis titles of the metrics.
METRIC_TITLES = {
    "objective_value": "hyper-objective phi(x)",
    "objective_hypergrad_norm": "hypergradient norm ||grad phi(x)||",
    "objective_hypergrad_norm_at_y": "hypergradient formula at the "
                                     "solver's y",
    "objective_inner_gap": "inner gap ||y - y*(x)||",
    "objective_linsys_residual": "linear-system residual ||A v - b||",
    "objective_test_accuracy": "test accuracy",
    "objective_test_loss": "test loss",
    "objective_val_accuracy": "validation accuracy",
    "objective_corrupted_f1": "F1 score of the corrupted samples found",
    "objective_memory_state_bytes": "memory kept between iterations (bytes)",
    "objective_memory_peak_bytes": "peak memory so far (bytes)",
}


def metric_title(metric):
    """A metric's axis title, with the direction that is better."""
    better = "higher" if larger_is_better(metric) else "lower"
    name = METRIC_TITLES.get(metric, metric.removeprefix("objective_"))
    return f"{name} ({better} is better)"


def metric_options(df):
    """The metric menu of a plot: the quality metrics of the results and
    the held-out metrics, recorded or not."""
    columns = metric_columns(df)
    return columns + [metric for metric in HELD_OUT_METRICS
                      if metric not in columns]


def records(df, metric):
    """Whether ``df`` has a finite value of ``metric``."""
    return metric in df.columns and bool(
        np.isfinite(df[metric].to_numpy(dtype=float)).any())


def dataset_options(df):
    """The dataset menu of a plot: FIRST_WITH_METRIC, then the datasets."""
    return [FIRST_WITH_METRIC, *df["dataset_name"].unique()]


def shown_metric(df, metric):
    """``metric`` if ``df`` records it, else FALLBACK_METRIC (or, in
    results without it, the first metric they record)."""
    if records(df, metric):
        return metric
    return next((column for column in (FALLBACK_METRIC, *metric_columns(df))
                 if records(df, column)), metric)


def resolve_dataset(df, dataset, metric):
    """(dataset, metric shown): FIRST_WITH_METRIC resolved to the first
    dataset that records ``metric`` (the first dataset if none does), and
    the metric :func:`shown_metric` shows there."""
    datasets = list(df["dataset_name"].unique())
    if dataset == FIRST_WITH_METRIC:
        recording = [name for name in datasets
                     if records(df[df["dataset_name"] == name], metric)]
        dataset = (recording or datasets)[0]
    return dataset, shown_metric(df[df["dataset_name"] == dataset], metric)


def fallback_note(metric, shown):
    """The sentence a plot's title carries when it shows FALLBACK_METRIC
    instead of ``metric``; empty otherwise."""
    if shown == metric:
        return ""
    return (f"no {metric.removeprefix('objective_')} on this dataset: "
            f"{shown.removeprefix('objective_')} shown")


def short_name(solver_name):
    """A benchopt curve name without its parameters."""
    return solver_name.split("[")[0]


def short_labels(df, name_column, prefix, always=()):
    """name -> a short label, for the benchopt names of ``name_column``
    (``solver_name`` or ``dataset_name``): the class's name and every
    parameter (the ``prefix*`` columns) whose value differs between the
    names of that class in ``df``, as ``name[param=value,...]``, plus the
    parameters of ``always`` (e.g. ``('p_solver_batch_size',)``)."""
    parameters = [column for column in df.columns
                  if column.startswith(prefix)]
    rows = (df[[name_column, *parameters]].drop_duplicates(name_column)
            .set_index(name_column))
    text = rows.astype(str)
    classes = rows.index.map(short_name)
    labels = {}
    for name in classes.unique():
        same = classes == name
        shown = [column for column in parameters
                 if column in always or text.loc[same, column].nunique() > 1]
        for full_name, row in rows.loc[same, shown].iterrows():
            parts = [f"{column.removeprefix(prefix)}={row[column]}"
                     for column in shown if pd.notna(row[column])]
            labels[full_name] = name + (f"[{','.join(parts)}]" if parts
                                        else "")
    return labels


def curve_labels(df, always=()):
    """solver_name -> its short label (:func:`short_labels`): the
    solver's name and the parameters that differ between its curves."""
    return short_labels(df, "solver_name", "p_solver_", always)


def dataset_labels(df):
    """dataset_name -> its short label (:func:`short_labels`)."""
    return short_labels(df, "dataset_name", "p_dataset_")


def curve_styles(df):
    """solver_name -> {'color', 'marker'}: one colour of PALETTE and one
    marker per curve, in the order of the curves' names, the same in every
    plot of a results table."""
    solvers = sorted(df["solver_name"].unique())
    return {solver: dict(color=PALETTE[index % len(PALETTE)], marker=index)
            for index, solver in enumerate(solvers)}


#: benchopt's column of a solver's step-size parameter.
STEP_PARAMETER = "p_solver_step_size_"


def parameter_text(value):
    """A parameter's value as a config writes it (5, not 5.0: a column of
    integers with NaN for other solvers is float)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def curve_parameters(df, solver, leave_out=None):
    """The parameters of a curve, as ``name=value`` text, but those whose
    column starts with ``leave_out``."""
    row = df.loc[df["solver_name"] == solver].iloc[0]
    return ", ".join(
        f"{column.removeprefix('p_solver_')}={parameter_text(row[column])}"
        for column in df.columns
        if column.startswith("p_solver_") and pd.notna(row[column])
        and not (leave_out and column.startswith(leave_out)))


def steps_used(df):
    """{step: (smallest, largest)} of the step sizes that a curve's rows
    (``df``) record, for the steps ``inner``, ``linsys``, ``outer``
    (``step_size_inner``...): the steps it ran with, 'auto' and 'tuned'
    resolved; the same on every point of a repetition, and of every
    repetition unless each draws its own problem (an 'auto' step then
    follows each problem's curvature)."""
    order = ("inner", "linsys", "outer")
    steps = {column.removeprefix(STEP_SIZE_COLUMN_PREFIX):
             (float(df[column].min()), float(df[column].max()))
             for column in df.columns
             if column.startswith(STEP_SIZE_COLUMN_PREFIX)
             and df[column].notna().any()}
    return dict(sorted(steps.items(), key=lambda item: (
        order.index(item[0]) if item[0] in order else len(order), item[0])))


# Ranking: relative gaps, values to 3 significant digits.

#: Two values whose relative gap |a - b| / max(|a|, |b|) is at most this
#: tie: they share a rank and are both in bold. The table prints 3
#: significant digits and each value's gap to the best, so that no rank
#: rests on digits the reader cannot see.
RELATIVE_TIE = 1e-3


def relative_gap(a, b):
    """|a - b| / max(|a|, |b|), 0 for two zeros."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def significant(value):
    """``value`` to 3 significant digits, trailing zeros kept."""
    return f"{value:#.3g}"


def gap_text(value, best):
    """How far ``value`` is from ``best``: a signed percentage of the
    best, a factor from 10 times the best on, or the difference when the
    best is 0."""
    if best == 0:
        return f"{value - best:+.3g}"
    ratio = value / best
    if ratio >= 10:
        return f"\u00d7{ratio:.3g}"
    return f"{100 * (value - best) / abs(best):+.3g}%"


def is_better(a, b, metric):
    """Whether ``a`` beats ``b`` by more than a tie."""
    if relative_gap(a, b) <= RELATIVE_TIE:
        return False
    return a > b if larger_is_better(metric) else a < b


def ranks(values, metric, disqualified):
    """One rank per value: 1 + the number of qualified values that beat it
    by more than a tie (tied values share a rank); None for a
    disqualified or non-finite value."""
    qualified = [value for value, reason in zip(values, disqualified)
                 if reason is None and np.isfinite(value)]
    return [None if reason is not None or not np.isfinite(value)
            else 1 + sum(is_better(other, value, metric)
                         for other in qualified)
            for value, reason in zip(values, disqualified)]


def budget_cells(values, metric, disqualified):
    """Table cells of one budget column: each value to 3 significant
    digits; the best and the values tied with it in bold (benchopt's
    table renders ``**...**`` in bold), each other value with its gap to
    the best; a disqualified value with its reason, never bold.

    The cells are text, never a bare number: benchopt's table would print
    a number to a fixed 4 decimals (1e-6 and 1e-9 both as 0.0000)."""
    rank = ranks(values, metric, disqualified)
    qualified = [value for value, r in zip(values, rank) if r is not None]
    best = (None if not qualified else max(qualified)
            if larger_is_better(metric) else min(qualified))
    cells = []
    for value, reason, r in zip(values, disqualified, rank):
        if reason is not None:
            cells.append(f"{significant(value)} ({reason})")
        elif r is None:
            cells.append("n/a: no finite value")
        elif r == 1:
            tie = "best" if value == best else (
                f"tie, {gap_text(value, best)}")
            cells.append(f"**{significant(value)}** ({tie})")
        else:
            cells.append(f"{significant(value)} ({gap_text(value, best)})")
    return cells


class PerResults:
    """Values computed once per results table: benchopt draws a plot for
    every combination of its options on the same table
    (``BasePlot._get_all_plots``), and many combinations share a
    computation (the labels, one budget column of several tables).
    ``cache(df, key, compute)`` returns ``compute()``, computed once per
    ``key`` while ``df`` is the same table."""

    def __init__(self):
        self.results, self.values = None, {}

    def __call__(self, df, key, compute):
        if df is not self.results:
            self.results, self.values = df, {}
        if key not in self.values:
            self.values[key] = compute()
        return self.values[key]
