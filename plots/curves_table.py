from benchopt import BasePlot

from benchmark_utils.plotting.budget import (OVER_BUDGET_COLUMN,
                                             STEP_PARAMETER,
                                             curve_labels, curve_parameters,
                                             ended_runs, significant,
                                             steps_used)


def last_point(curve):
    """The solver time of a curve's last point (the median over
    repetitions), marked when a point came after the budget."""
    ends = curve.sort_values("stop_val").groupby("idx_rep")["time"].last()
    text = f"{significant(float(ends.median()))} s"
    if OVER_BUDGET_COLUMN in curve.columns and \
            curve[OVER_BUDGET_COLUMN].fillna(False).astype(bool).any():
        text += " (over budget)"
    return text


def steps_text(curve):
    """The steps a curve ran with (their range over repetitions that
    differ), each followed by the parameter's value where it was not a
    number ('auto', 'tuned')."""
    parameters = curve.iloc[0]
    parts = []
    for step, (low, high) in steps_used(curve).items():
        given = parameters.get(f"p_solver_step_size_{step}")
        how = f" ({given})" if isinstance(given, str) else ""
        value = significant(low) + ("" if low == high
                                    else f"-{significant(high)}")
        parts.append(f"{step}={value}{how}")
    return ", ".join(parts) or "-"


class Plot(BasePlot):
    """Every solver curve of a dataset: its short label (as in the other
    plots), the step sizes it ran with (``auto`` and ``tuned`` resolved,
    the parameter's value in parentheses; outer steps in the problem's
    ``outer_step_unit``), whether it finished, diverged or failed, its
    number of evaluations, the solver time of its last point ("over
    budget" when a single iteration outlasted the solver-time budget) and
    its other parameters."""

    name = "Curves table"
    type = "table"
    options = {
        "dataset": ...,
        "objective": ...,
    }

    def plot(self, df, dataset, objective):
        labels = curve_labels(df)
        df = df.query(
            "dataset_name == @dataset and objective_name == @objective")
        ended = ended_runs(df)
        rows = []
        for solver, curve in df.groupby("solver_name"):
            rows.append([
                labels[solver], steps_text(curve),
                ended.get((dataset, solver), "finished"),
                int(curve.groupby("idx_rep")["stop_val"].nunique().median()),
                last_point(curve),
                curve_parameters(df, solver, leave_out=STEP_PARAMETER)])
        return rows

    def get_metadata(self, df, dataset, objective):
        return {
            "title": f"Curves on {dataset}",
            "columns": ["curve", "steps used", "status", "points",
                        "last point", "other parameters"],
            "default_order_ascending": True,
            "default_order_column": 0,
        }
