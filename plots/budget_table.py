from benchopt import BasePlot

from benchmark_utils.plotting.budget import (COST_COLUMNS,
                                             best_within_budget, budget_cells,
                                             curve_labels, dataset_labels,
                                             disqualified_runs,
                                             gradient_equivalent_work,
                                             hvp_free_runs, larger_is_better,
                                             PerResults, metric_options,
                                             problem_costs,
                                             ranked, ranks, records,
                                             shown_metric)

#: The column of gradient-equivalent work added to the results.
WORK_COLUMN = "gradient_equivalent_work"
#: The cell of a curve that spends no HVP, in the HVP budget's column.
FIRST_ORDER = "n/a: first-order"


def with_work(df):
    """``df`` with the gradient-equivalent work of each row, each dataset
    on its own measured costs (NaN for results without them)."""
    df = df.assign(**{WORK_COLUMN: float("nan")})
    if set(COST_COLUMNS) <= set(df.columns):
        for _, rows in df.groupby("dataset_name"):
            df.loc[rows.index, WORK_COLUMN] = gradient_equivalent_work(
                rows, *problem_costs(rows))
    return df


#: The labels and budget columns of the results being drawn.
per_results = PerResults()


class Plot(BasePlot):
    """For each dataset that records the metric and each solver curve, the
    best value of the metric within a solver-time budget (benchopt's
    ``time``, seconds), within an HVP budget (``objective_n_hvp``) and
    within the same budget of gradient-equivalent work (``n_grad + r_hvp
    n_hvp + r_cross n_cross``): the median over repetitions of each
    repetition's best.

    Values are printed to 3 significant digits. In each column the best
    value, and every value within a relative gap of 0.1% of it (a tie), is
    in bold; every other value carries its gap to the best. The HVP budget
    ranks only the curves that spend HVPs: a first-order or Hessian-free
    curve reads "n/a: first-order" there. A curve of which a repetition
    diverged or failed, or (for a metric other than the value) ended the
    budget with a value above its start, or (for a hypergradient norm)
    reached exactly 0, a derivative that vanished, carries the reason and
    is never in bold. Rows are in rank order within the time budget: the
    other curves by their value (tied curves share a rank), then the
    marked ones, a diverged or failed curve last. A dataset that does not
    record the metric is left out (if none does, the table shows the
    hyper-objective, and its title says so).
    """

    name = "Budget table"
    type = "table"
    options = {
        "objective": ...,
        "metric": metric_options,
        "time_budget": [1, 10, 60, 600],
        "oracle_budget": [100, 1000, 10000, 100000],
    }

    def plot(self, df, objective, metric, time_budget, oracle_budget):
        labels = per_results(df, "curves", lambda: curve_labels(df))
        datasets = per_results(df, "datasets", lambda: dataset_labels(df))
        data = per_results(df, ("results", objective), lambda: with_work(
            df[df["objective_name"] == objective]))
        metric = shown_metric(data, metric)
        budgets = [("time", time_budget), ("objective_n_hvp", oracle_budget),
                   (WORK_COLUMN, oracle_budget)]
        best = [per_results(df, ("best", objective, metric, *budget),
                            lambda budget=budget: best_within_budget(
                                data, metric, *budget))
                for budget in budgets]
        disqualified = [
            per_results(df, ("disqualified", objective, metric, *budget),
                        lambda budget=budget: disqualified_runs(
                            data, metric, *budget))
            for budget in budgets]
        first_order = per_results(df, ("first-order", objective),
                                  lambda: hvp_free_runs(data))
        rows = []
        for dataset in data["dataset_name"].unique():
            if not records(data[data["dataset_name"] == dataset], metric):
                continue
            solvers = data.loc[data["dataset_name"] == dataset,
                               "solver_name"].unique()
            solvers = ranked(
                solvers, [float(best[0][dataset, solver])
                          for solver in solvers], metric,
                [disqualified[0].get((dataset, solver))
                 for solver in solvers])
            columns = []
            for column, reasons, (budget_column, _) in zip(
                    best, disqualified, budgets):
                counted = [solver for solver in solvers
                           if budget_column != "objective_n_hvp"
                           or (dataset, solver) not in first_order]
                cells = dict(zip(counted, budget_cells(
                    [float(column[dataset, solver]) for solver in counted],
                    metric, [reasons.get((dataset, solver))
                             for solver in counted])))
                columns.append([cells.get(solver, FIRST_ORDER)
                                for solver in solvers])
            rank = ranks([float(best[0][dataset, solver])
                          for solver in solvers], metric,
                         [disqualified[0].get((dataset, solver))
                          for solver in solvers])
            rows.extend([datasets[dataset], "-" if r is None else r,
                         labels[solver], *cells]
                        for solver, r, *cells in zip(solvers, rank,
                                                     *columns))
        return rows

    def get_metadata(self, df, objective, metric, time_budget,
                     oracle_budget):
        shown = per_results(df, ("shown", metric),
                            lambda: shown_metric(df, metric))
        better = "largest" if larger_is_better(shown) else "smallest"
        name = shown.removeprefix("objective_")
        note = ("" if shown == metric else
                f"\nno dataset records {metric.removeprefix('objective_')}"
                f": {name} shown")
        return {
            "title": (f"Best {name} within each budget ({better} is best, "
                      "median over repetitions; ties: within 0.1%)" + note),
            "columns": ["dataset", "rank", "curve", f"<= {time_budget} s",
                        f"<= {oracle_budget} HVPs",
                        f"<= {oracle_budget} grad-equiv."],
            "default_order_ascending": True,
            "default_order_column": 0,
        }
