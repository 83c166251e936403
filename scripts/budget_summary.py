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
stopped by the stopping rule) keeps its last point. A curve that the
report's budget table does not rank is marked with the reason (diverged,
failed, value above start, hypergradient vanished). Rows are in rank
order, by the best value within the largest budget, the marked curves
after the others and a diverged or failed one last.

With ``--profile TOLERANCE``, it prints instead the performance profile
of every curve across the datasets that record the metric (Dolan and
Moré, 2002; benchmark_utils/plotting/profile.py): each curve's solver time
to the target of each dataset (all but TOLERANCE of the gap between the
start and the best value reached), and the fraction of the datasets that
it solves within a factor tau of the fastest curve.

Usage (from the benchmark folder):
    python scripts/budget_summary.py RESULTS.parquet
        [--metric METRIC] [--time-budget 30 300]
        [--profile 1e-3]
"""
import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_utils.plotting.budget import (  # noqa: E402
    best_within_budget, curve_labels, dataset_labels, disqualified_runs,
    metric_columns, ranked)
from benchmark_utils.plotting.profile import (  # noqa: E402
    PRINTED_RATIOS, performance_ratios, profile, times_to_target)

#: The metric summarised by default: the first that the results record
#: (classification tasks have a test accuracy; every problem has a
#: hypergradient norm).
DEFAULT_METRICS = ("objective_test_accuracy", "objective_hypergrad_norm")
#: The counts reported next to the metric.
COUNTS = ("objective_n_hvp", "objective_n_epochs")
#: The peak memory (the largest so far, in bytes), in columns of its own.
MEMORY = "objective_memory_peak_bytes"
MIB = 2 ** 20


def reached_within(df, columns, budget):
    """(dataset, solver) -> the median over repetitions of ``columns`` at
    each repetition's last evaluation with ``time <= budget``."""
    within = df[df["time"] <= budget].sort_values("stop_val")
    last = within.groupby(["dataset_name", "solver_name", "idx_rep"])[
        list(columns)].last()
    return last.groupby(level=["dataset_name", "solver_name"]).median()


def summary(df, metric, budgets):
    """{dataset: [(label, {budget: (reached, best, n_hvp, n_epochs,
    peak_memory)}, why it is not ranked or None)]}, in rank order: the
    budget table's rules (a diverged or failed curve, a value above its
    start, a vanished hypergradient: ``disqualified_runs``) within the
    largest budget."""
    reported = [column for column in (*COUNTS, MEMORY)
                if column in df.columns]
    ended = disqualified_runs(df, metric, "time", max(budgets))
    labels = curve_labels(df, always=("p_solver_batch_size",))
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


def print_profile(df, metric, tolerance):
    """The times to target per dataset, then the profile at
    PRINTED_RATIOS and the fraction of the datasets solved at all, one row
    per curve, most often fastest first."""
    labels, datasets = curve_labels(df), dataset_labels(df)
    times = times_to_target(df, metric, tolerance)
    if not times:
        sys.exit(f"budget_summary.py: no dataset records {metric}")
    # The last column, at tau = inf: the fraction solved at all.
    rho = profile(performance_ratios(times), [*PRINTED_RATIOS, math.inf])
    order = sorted(rho, key=lambda solver: ([-value for value in
                                             rho[solver]], labels[solver]))
    name = metric.removeprefix("objective_")
    print(f"\nSolver time (s) to reach all but {tolerance:g} of the gap "
          f"between the start and the best {name}\n")
    print("| curve | " + " | ".join(datasets[p] for p in times) + " |")
    print("|" + "---|" * (len(times) + 1))
    for solver in order:
        cells = [f"{times[p][solver]:.3g}" if np.isfinite(times[p][solver])
                 else "-" for p in times]
        print(f"| {labels[solver]} | " + " | ".join(cells) + " |")
    print(f"\nPerformance profile on {len(times)} dataset(s): the fraction "
          "solved within tau times the fastest curve's time\n")
    print("| curve | " + " | ".join(f"tau={tau:g}" for tau in PRINTED_RATIOS)
          + " | solved |")
    print("|" + "---|" * (len(PRINTED_RATIOS) + 2))
    for solver in order:
        print(f"| {labels[solver]} | "
              + " | ".join(f"{value:.2f}" for value in rho[solver]) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--metric", default=None,
                        help="default: objective_test_accuracy where the "
                        "results record it, else objective_hypergrad_norm")
    parser.add_argument("--time-budget", type=float, nargs="+",
                        default=[30.0, 300.0])
    parser.add_argument("--profile", type=float, metavar="TOLERANCE",
                        help="print the performance profile instead")
    args = parser.parse_args(argv)
    if not args.results.is_file():
        sys.exit(f"budget_summary.py: no results file at {args.results}")
    df = pd.read_parquet(args.results)
    if args.metric is None:
        args.metric = next(metric for metric in DEFAULT_METRICS
                           if metric in df.columns
                           and df[metric].notna().any())
        print(f"metric: {args.metric} (--metric chooses another)")
    if args.metric not in df.columns:
        sys.exit(f"budget_summary.py: {args.results} has no column "
                 f"{args.metric}; its metrics: "
                 + ", ".join(metric_columns(df)))
    if args.profile is not None:
        print_profile(df, args.metric, args.profile)
        return
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
