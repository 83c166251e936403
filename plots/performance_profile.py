from benchopt import BasePlot

from benchmark_utils.plotting.budget import (PerResults, curve_labels,
                                             curve_styles, metric_options,
                                             metric_title, shown_metric)
from benchmark_utils.plotting.profile import (TOLERANCES,
                                              largest_finite_ratio,
                                              performance_ratios,
                                              problems_of, profile_steps,
                                              times_to_target)


#: The labels and styles of the results being drawn.
per_results = PerResults()


class Plot(BasePlot):
    """The performance profile of every solver curve across the datasets
    of the results (Dolan and Moré, Math. Program. 2002): for each ratio
    tau (log-scaled), the fraction of the datasets on which the curve
    reaches the target within tau times the solver time of the fastest
    curve there. At tau = 1: how often the curve is the fastest; at large
    tau: how often it reaches the target at all.

    The target of a dataset closes all but ``tolerance`` of the gap
    between the metric at the start and the best value that a qualified
    curve reached (Moré and Wild, SIAM J. Optim. 2009). A diverged or
    failed curve, one whose value ended above its start or whose
    hypergradient vanished, reaches no target, and a point after the
    solver-time budget does not count
    (:mod:`benchmark_utils.plotting.profile`). Datasets that do not
    record the metric are left out; if none does, the profile is of the
    hyper-objective, and the title says so.
    """

    name = "Performance profile"
    type = "scatter"
    options = {
        "objective": ...,
        "metric": metric_options,
        "tolerance": TOLERANCES,
    }

    def plot(self, df, objective, metric, tolerance):
        labels = per_results(df, "labels", lambda: curve_labels(df))
        styles = per_results(df, "styles", lambda: curve_styles(df))
        df = df.query("objective_name == @objective")
        metric = shown_metric(df, metric)
        ratios = performance_ratios(
            times_to_target(df, metric, float(tolerance)))
        tau_max = 2 * largest_finite_ratio(ratios)
        curves = []
        for solver in sorted(df["solver_name"].unique()):
            x, y = profile_steps(ratios, solver, tau_max)
            curves.append(dict(x=x, y=y, label=labels[solver],
                               **styles[solver]))
        return curves

    def get_metadata(self, df, objective, metric, tolerance):
        df = df.query("objective_name == @objective")
        shown = shown_metric(df, metric)
        problems = problems_of(df, shown)
        note = ("" if shown == metric else
                f" (no dataset records {metric.removeprefix('objective_')})")
        return {
            "title": (f"Performance profile on {len(problems)} dataset(s): "
                      f"{metric_title(shown)}{note}\ntarget: all but "
                      f"{tolerance} of the gap from the start to the best"),
            "xlabel": "tau: solver time over the fastest curve's",
            "ylabel": "fraction of datasets solved within tau",
            "scale": "semilog-x",
        }
