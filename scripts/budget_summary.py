"""What each curve of a results file has reached within solver-time budgets:
for each dataset, solver curve and budget, the metric at the curve's last
evaluation within the budget (the median over repetitions), the best value
of the metric within it, and the HVPs and epochs spent by then (in
full-batch passes); where the results carry it, the peak memory used by
then (``objective_memory_peak_bytes``, in MiB), in a column of its own
per budget. One markdown table per dataset, a row per curve, labelled by
its solver's name, its batch size (``batch_size=full`` for full batch)
and every parameter whose value differs between the curves of that
solver.

A curve that ended before a budget (converged, diverged, failed, or
stopped by the stopping rule) keeps its last point; a diverged or failed
one is marked. Rows are in rank order, by the best value within the
largest budget, a diverged or failed curve after every one that
finished.

Usage (from the benchmark folder):
    python scripts/budget_summary.py RESULTS.parquet
        [--metric objective_test_accuracy] [--time-budget 30 300]
"""
import argparse
import math
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_utils.plotting.budget import (  # noqa: E402
    best_within_budget, ended_runs, ranked)

#: The counts reported next to the metric.
COUNTS = ("objective_n_hvp", "objective_n_epochs")
#: The peak memory (the largest so far, in bytes), in columns of its own.
MEMORY = "objective_memory_peak_bytes"
MIB = 2 ** 20


def curve_labels(df):
    """solver_name -> a short label: the solver's name, its batch size and
    every parameter (benchopt's ``p_solver_*`` columns) whose value
    differs between the curves of the same solver."""
    parameters = [column for column in df.columns
                  if column.startswith("p_solver_")]
    curves = df.drop_duplicates("solver_name").set_index("solver_name")
    names = curves.index.str.split("[").str[0]
    labels = {}
    for name in names.unique():
        same = curves[names == name]
        shown = [column for column in parameters
                 if column == "p_solver_batch_size"
                 or same[column].astype(str).nunique() > 1]
        for solver, row in same.iterrows():
            parts = [f"{column.removeprefix('p_solver_')}={row[column]}"
                     for column in shown if pd.notna(row[column])]
            labels[solver] = name + (f"[{','.join(parts)}]" if parts
                                     else "")
    return labels


def reached_within(df, columns, budget):
    """(dataset, solver) -> the median over repetitions of ``columns`` at
    each repetition's last evaluation with ``time <= budget``."""
    within = df[df["time"] <= budget].sort_values("stop_val")
    last = within.groupby(["dataset_name", "solver_name", "idx_rep"])[
        list(columns)].last()
    return last.groupby(level=["dataset_name", "solver_name"]).median()


def summary(df, metric, budgets):
    """{dataset: [(label, {budget: (reached, best, n_hvp, n_epochs,
    peak_memory)}, 'diverged', 'failed' or None)]}, in rank order."""
    reported = [column for column in (*COUNTS, MEMORY)
                if column in df.columns]
    ended = ended_runs(df)
    labels = curve_labels(df)
    tables = {}
    for budget in budgets:
        reached = reached_within(df, [metric, *reported], budget)
        best = best_within_budget(df, metric, "time", budget)
        for (dataset, solver), row in reached.iterrows():
            entries = tables.setdefault(dataset, {}).setdefault(solver, {})
            entries[budget] = (row[metric], best[dataset, solver],
                               *(row.get(column, math.nan)
                                 for column in (*COUNTS, MEMORY)))
    last = max(budgets)
    ranking = {}
    for dataset, by_solver in tables.items():
        solvers = sorted(by_solver, key=labels.get)
        ranking[dataset] = ranked(
            solvers, [by_solver[solver].get(last, (math.nan,) * 2)[1]
                      for solver in solvers], metric,
            [ended.get((dataset, solver)) for solver in solvers])
    return {dataset: [(labels[solver], tables[dataset][solver],
                       ended.get((dataset, solver)))
                      for solver in solvers]
            for dataset, solvers in ranking.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--metric", default="objective_test_accuracy")
    parser.add_argument("--time-budget", type=float, nargs="+",
                        default=[30.0, 300.0])
    args = parser.parse_args(argv)
    if not args.results.is_file():
        sys.exit(f"budget_summary.py: no results file at {args.results}")
    df = pd.read_parquet(args.results)
    if args.metric not in df.columns:
        sys.exit(f"budget_summary.py: {args.results} has no column "
                 f"{args.metric}")
    metric = args.metric.removeprefix("objective_")
    header = ["solver"] + [
        f"{metric} / best / HVPs / epochs within {budget:g} s"
        for budget in args.time_budget]
    with_memory = MEMORY in df.columns
    if with_memory:
        header += [f"peak memory within {budget:g} s (MiB)"
                   for budget in args.time_budget]
    for dataset, rows in summary(df, args.metric,
                                 args.time_budget).items():
        print(f"\n{dataset}\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for label, entries, ended in rows:
            cells, memory_cells = [], []
            for budget in args.time_budget:
                if budget not in entries:
                    cells.append("-")
                    memory_cells.append("-")
                    continue
                reached, best, n_hvp, n_epochs, memory = entries[budget]
                cells.append(f"{reached:.3g} / {best:.3g} / {n_hvp:.4g} / "
                             f"{n_epochs:.4g}")
                memory_cells.append(f"{memory / MIB:.3g}")
            if with_memory:
                cells += memory_cells
            mark = f" ({ended})" if ended else ""
            print(f"| {label}{mark} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
