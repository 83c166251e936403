from benchopt import BasePlot

from benchmark_utils.plotting.budget import (COST_COLUMNS, EPOCH_COLUMN,
                                             PerResults, curve_labels,
                                             curve_styles,
                                             dataset_options, ended_runs,
                                             fallback_note,
                                             gradient_equivalent_work,
                                             hvp_free_runs, median_curve,
                                             metric_options, metric_title,
                                             problem_costs, resolve_dataset)

TIME_AXIS = "Time"
HVP_AXIS = "HVPs"
WORK_AXIS = "Gradient-equivalent work"
EPOCH_AXIS = "Epochs"
#: Metrics that span orders of magnitude: log y-axis by default.
LOG_SCALE_METRICS = ("objective_hypergrad_norm",
                     "objective_hypergrad_norm_at_y", "objective_inner_gap",
                     "objective_linsys_residual",
                     "objective_memory_state_bytes",
                     "objective_memory_peak_bytes")


#: The labels and styles of the results being drawn.
per_results = PerResults()


class Plot(BasePlot):
    """Any metric against solver time (log-scaled: curves span decades),
    the HVPs spent (``objective_n_hvp``), the gradient-equivalent work
    ``n_grad + r_hvp n_hvp + r_cross n_cross``, with ``r_hvp``, ``r_cross``
    the problem's measured oracle costs, or the epochs
    (``objective_n_epochs``: passes over the training samples by all the
    oracles of g, the axis of stochastic methods): one curve per solver
    curve, the median over repetitions and its 20-80% quantile band.

    Curves are labelled by the solver's name and the parameters that
    differ between its curves (the full parameters and the steps used are
    in the ``curves_table`` plot), in colours and markers that stay apart
    for 20 curves. On the HVP axis only the curves that spend HVPs are
    drawn: a first-order or Hessian-free method (F2SA, HJFBiO, BOME, PBGD)
    compares with the others on the work axis and against time. A curve
    of which a repetition diverged or failed is labelled "(diverged)" or
    "(failed)"; it ends at the point where it diverged or failed.

    ``dataset`` 'first with the metric' opens on the first dataset that
    records the metric; a dataset that does not record it shows the
    hyper-objective, and the title says so.
    """

    name = "Budget curve"
    type = "scatter"
    options = {
        "dataset": dataset_options,
        "objective": ...,
        "metric": metric_options,
        "X_axis": [TIME_AXIS, HVP_AXIS, WORK_AXIS, EPOCH_AXIS],
    }

    def plot(self, df, dataset, objective, metric, X_axis):
        labels = per_results(df, "labels", lambda: curve_labels(df))
        styles = per_results(df, "styles", lambda: curve_styles(df))
        dataset, metric = resolve_dataset(df, dataset, metric)
        df = per_results(df, ("rows", dataset, objective), lambda: df[
            (df["dataset_name"] == dataset)
            & (df["objective_name"] == objective)])
        if X_axis == TIME_AXIS:
            x_values = df["time"]
        elif X_axis == WORK_AXIS:
            if not set(COST_COLUMNS) <= set(df.columns):
                return []   # results written before the costs were measured
            x_values = gradient_equivalent_work(df, *problem_costs(df))
        elif X_axis == EPOCH_AXIS:
            if EPOCH_COLUMN not in df.columns:
                return []   # results written before epochs were counted
            x_values = df[EPOCH_COLUMN]
        else:
            x_values = df["objective_n_hvp"]
        left_out = hvp_free_runs(df) if X_axis == HVP_AXIS else set()
        ended = {solver: reason
                 for (_, solver), reason in ended_runs(df).items()}
        curves = []
        for solver, solver_df in df.groupby("solver_name"):
            if (dataset, solver) in left_out:
                continue
            curve = median_curve(solver_df, x_values.loc[solver_df.index],
                                 metric)
            label = labels[solver] + (f" ({ended[solver]})"
                                      if solver in ended else "")
            curves.append(dict(**curve, label=label, **styles[solver]))
        return curves

    def get_metadata(self, df, dataset, objective, metric, X_axis):
        asked = metric
        dataset, metric = resolve_dataset(df, dataset, metric)
        df = df.query(
            "dataset_name == @dataset and objective_name == @objective")
        xlabel = {
            TIME_AXIS: "solver time (s)",
            HVP_AXIS: "HVPs (objective_n_hvp)",
            EPOCH_AXIS: ("epochs: passes over the training samples "
                         "(objective_n_epochs)"),
            WORK_AXIS: "gradient-equivalent work",
        }[X_axis]
        if X_axis == WORK_AXIS and set(COST_COLUMNS) <= set(df.columns):
            r_hvp, r_cross = problem_costs(df)
            xlabel = (f"gradient-equivalent work: n_grad + {r_hvp:.2f} n_hvp"
                      f" + {r_cross:.2f} n_cross")
        notes = [fallback_note(asked, metric)]
        if X_axis == HVP_AXIS and hvp_free_runs(df):
            notes.append("curves without HVPs: on the work and time axes")
        log_y = metric in LOG_SCALE_METRICS
        scale = ("loglog" if log_y else "semilog-x") if X_axis == TIME_AXIS \
            else ("semilog-y" if log_y else "linear")
        return {
            "title": "\n".join([f"Data: {dataset}",
                                *filter(None, notes)]),
            "xlabel": xlabel,
            "ylabel": metric_title(metric),
            "scale": scale,
        }
