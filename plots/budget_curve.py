from benchopt import BasePlot

from benchmark_utils.plotting.budget import (COST_COLUMNS, EPOCH_COLUMN,
                                             ended_runs,
                                             gradient_equivalent_work,
                                             larger_is_better, median_curve,
                                             metric_columns, problem_costs)

HVP_AXIS = "HVPs"
WORK_AXIS = "Gradient-equivalent work"
EPOCH_AXIS = "Epochs"
#: Metrics that span orders of magnitude: log y-axis by default.
LOG_SCALE_METRICS = ("objective_hypergrad_norm", "objective_inner_gap",
                     "objective_linsys_residual")


class Plot(BasePlot):
    """Any metric against the HVPs spent (``objective_n_hvp``), against the
    gradient-equivalent work ``n_grad + r_hvp n_hvp + r_cross n_cross``, with
    ``r_hvp``, ``r_cross`` the problem's measured oracle costs, or against
    the epochs (``objective_n_epochs``: passes over the training samples by
    all the oracles of g, the axis of stochastic methods): one curve per
    solver, the median over repetitions and its 20-80% quantile band.

    Methods that spend no HVP (F2SA, HJFBiO, BOME) stay at 0 HVPs: compare
    them with the others on the work axis or against time. A solver of
    which a repetition diverged or failed is labelled "(diverged)" or
    "(failed)"; its curve ends at the point where it diverged or failed.
    """

    name = "Budget curve"
    type = "scatter"
    options = {
        "dataset": ...,
        "objective": ...,
        "metric": metric_columns,
        "X_axis": [HVP_AXIS, WORK_AXIS, EPOCH_AXIS],
    }

    def plot(self, df, dataset, objective, metric, X_axis):
        df = df.query(
            "dataset_name == @dataset and objective_name == @objective")
        if X_axis == WORK_AXIS:
            if not set(COST_COLUMNS) <= set(df.columns):
                return []   # results written before the costs were measured
            x_values = gradient_equivalent_work(df, *problem_costs(df))
        elif X_axis == EPOCH_AXIS:
            if EPOCH_COLUMN not in df.columns:
                return []   # results written before epochs were counted
            x_values = df[EPOCH_COLUMN]
        else:
            x_values = df["objective_n_hvp"]
        ended = {solver: reason
                 for (_, solver), reason in ended_runs(df).items()}
        curves = []
        for solver, solver_df in df.groupby("solver_name"):
            curve = median_curve(solver_df, x_values.loc[solver_df.index],
                                 metric)
            label = (f"{solver} ({ended[solver]})" if solver in ended
                     else solver)
            curves.append(dict(**curve, label=label,
                               **self.get_style(solver)))
        return curves

    def get_metadata(self, df, dataset, objective, metric, X_axis):
        df = df.query(
            "dataset_name == @dataset and objective_name == @objective")
        xlabel = "HVPs (objective_n_hvp)"
        if X_axis == EPOCH_AXIS:
            xlabel = ("epochs: passes over the training samples "
                      "(objective_n_epochs)")
        if X_axis == WORK_AXIS and set(COST_COLUMNS) <= set(df.columns):
            r_hvp, r_cross = problem_costs(df)
            xlabel = (f"gradient-equivalent work: n_grad + {r_hvp:.2f} n_hvp"
                      f" + {r_cross:.2f} n_cross")
        better = "higher" if larger_is_better(metric) else "lower"
        return {
            "title": f"{objective}\nData: {dataset}",
            "xlabel": xlabel,
            "ylabel": f"{metric} ({better} is better)",
            "scale": ("semilog-y" if metric in LOG_SCALE_METRICS
                      else "linear"),
        }
