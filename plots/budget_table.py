from benchopt import BasePlot

from benchmark_utils.plotting.budget import (best_within_budget, bold_best,
                                             disqualified_runs,
                                             larger_is_better, metric_columns,
                                             ranked)


class Plot(BasePlot):
    """For each dataset and solver, the best value of a metric reached within
    a time budget (benchopt's solver ``time``, seconds) and within an HVP
    budget (``objective_n_hvp``): the median over repetitions of each
    repetition's best. The best solver of each dataset is in bold, the
    largest value for accuracies and F1 scores, the smallest otherwise.

    A solver of which a repetition diverged or failed, or (for a metric
    other than the value) ended the budget with a value above its start,
    or (for a hypergradient norm) reached exactly 0, a derivative that
    vanished, is marked so and never in bold. Rows are in rank order
    within the time budget: the other solvers by their value, best first,
    then the marked ones, a diverged or failed run last."""

    name = "Budget table"
    type = "table"
    options = {
        "objective": ...,
        "metric": metric_columns,
        "time_budget": [1, 10, 60, 600],
        "hvp_budget": [10, 100, 1000, 10000],
    }

    def plot(self, df, objective, metric, time_budget, hvp_budget):
        df = df.query("objective_name == @objective")
        budgets = [("time", time_budget), ("objective_n_hvp", hvp_budget)]
        best = [best_within_budget(df, metric, *budget) for budget in budgets]
        disqualified = [disqualified_runs(df, metric, *budget)
                        for budget in budgets]
        rows = []
        for dataset in df["dataset_name"].unique():
            solvers = df.query("dataset_name == @dataset")[
                "solver_name"].unique()
            solvers = ranked(
                solvers, [float(best[0][dataset, solver])
                          for solver in solvers], metric,
                [disqualified[0].get((dataset, solver))
                 for solver in solvers])
            cells = [bold_best([float(column[dataset, solver])
                                for solver in solvers], metric,
                               [reasons.get((dataset, solver))
                                for solver in solvers])
                     for column, reasons in zip(best, disqualified)]
            rows.extend([dataset, solver, *values]
                        for solver, *values in zip(solvers, *cells))
        return rows

    def get_metadata(self, df, objective, metric, time_budget, hvp_budget):
        better = "largest" if larger_is_better(metric) else "smallest"
        return {
            "title": (f"{objective}\nBest {metric} within the budget "
                      f"({better} is best; median over repetitions)"),
            "columns": ["dataset", "solver", f"within {time_budget} s",
                        f"within {hvp_budget} HVPs"],
            "default_order_ascending": True,
            "default_order_column": 0,
        }
