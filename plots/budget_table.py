from benchopt import BasePlot

from benchmark_utils.plotting.budget import (COST_COLUMNS, PerResults,
                                             best_within_budget, budget_cells,
                                             curve_labels, dataset_options,
                                             disqualified_runs, fallback_note,
                                             gradient_equivalent_work,
                                             hvp_free_runs, larger_is_better,
                                             metric_options, problem_costs,
                                             ranked, ranks, resolve_dataset)

#: The column of gradient-equivalent work added to the results.
WORK_COLUMN = "gradient_equivalent_work"
#: The cell of a curve that spends no HVP, in the HVP budget's column.
FIRST_ORDER = "n/a: first-order"
#: The rank of a curve that cannot rank (diverged, failed...): text, which
#: benchopt's table sorts after the numbers.
NOT_RANKED = "not ranked"


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
    """For each solver curve of a dataset, the best value of the metric
    within a solver-time budget (benchopt's ``time``, seconds), within an
    HVP budget (``objective_n_hvp``) and within the same budget of
    gradient-equivalent work (``n_grad + r_hvp n_hvp + r_cross n_cross``):
    the median over repetitions of each repetition's best.

    Values are printed to 3 significant digits. In each column the best
    value, and every value within a relative gap of 0.1% of it (a tie), is
    in bold; every other value carries its gap to the best. The HVP budget
    ranks only the curves that spend HVPs: a first-order or Hessian-free
    curve reads "n/a: first-order" there. A curve of which a repetition
    diverged or failed, or (for a metric other than the value) ended the
    budget with a value above its start, or (for a hypergradient norm)
    fell to eps² of its start, a derivative that vanished, carries the
    reason, is never in bold and is not ranked. Rows are in rank order
    within the time budget: the other curves by their value (tied curves
    share a rank), then the marked ones, a diverged or failed curve last.

    ``dataset`` 'first with the metric' opens on the first dataset that
    records the metric; a dataset that does not record it shows the
    hyper-objective, and the title says so.
    """

    name = "Budget table"
    type = "table"
    options = {
        "dataset": dataset_options,
        "objective": ...,
        "metric": metric_options,
        "time_budget": [1, 10, 60, 600],
        "oracle_budget": [100, 1000, 10000, 100000],
    }

    def plot(self, df, dataset, objective, metric, time_budget,
             oracle_budget):
        labels = per_results(df, "curves", lambda: curve_labels(df))
        data = per_results(df, ("results", objective), lambda: with_work(
            df[df["objective_name"] == objective]))
        dataset, metric = resolve_dataset(data, dataset, metric)
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
        solvers = data.loc[data["dataset_name"] == dataset,
                           "solver_name"].unique()
        solvers = ranked(
            solvers, [float(best[0][dataset, solver]) for solver in solvers],
            metric, [disqualified[0].get((dataset, solver))
                     for solver in solvers])
        columns = []
        for column, reasons, (budget_column, _) in zip(best, disqualified,
                                                       budgets):
            counted = [solver for solver in solvers
                       if budget_column != "objective_n_hvp"
                       or (dataset, solver) not in first_order]
            cells = dict(zip(counted, budget_cells(
                [float(column[dataset, solver]) for solver in counted],
                metric, [reasons.get((dataset, solver))
                         for solver in counted])))
            columns.append([cells.get(solver, FIRST_ORDER)
                            for solver in solvers])
        rank = ranks([float(best[0][dataset, solver]) for solver in solvers],
                     metric, [disqualified[0].get((dataset, solver))
                              for solver in solvers])
        return [[NOT_RANKED if r is None else r, labels[solver], *cells]
                for solver, r, *cells in zip(solvers, rank, *columns)]

    def get_metadata(self, df, dataset, objective, metric, time_budget,
                     oracle_budget):
        asked = metric
        dataset, metric = resolve_dataset(df, dataset, metric)
        better = "largest" if larger_is_better(metric) else "smallest"
        note = fallback_note(asked, metric)
        return {
            "title": (f"Data: {dataset}\nbest "
                      f"{metric.removeprefix('objective_')} within each "
                      f"budget ({better} is best; bold: the best and ties "
                      "within 0.1%)" + (f"\n{note}" if note else "")),
            "columns": ["rank", "curve", f"{time_budget} s",
                        f"{oracle_budget} HVPs",
                        f"{oracle_budget} grad-equiv."],
            "default_order_ascending": True,
            "default_order_column": 0,
        }
