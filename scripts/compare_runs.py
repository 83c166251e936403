"""Two results files side by side: the budget table's best value of a
metric within a time budget, for each dataset and solver curve, in a run
before a change (for example at the default step sizes) and after it (at
the tuned ones).

Curves are matched by solver and by their parameters other than the ones
that the tuning protocol tunes (the step sizes ``step_size_*`` and the
solver's ``tuning_space``), so ``SOBA[inner=auto,outer=1.0]`` meets
``SOBA[inner=tuned,outer=tuned]``. The cells are those of the
``budget_table`` plot (docs/budget_plots.md): the median over repetitions
of each repetition's best within the budget; a curve that cannot rank
first (diverged, value above its start, vanished hypergradient) carries
the reason. Prints one markdown table per dataset.

Usage (from the benchmark folder):
    python scripts/compare_runs.py BEFORE.parquet AFTER.parquet
        [--metric objective_hypergrad_norm] [--time-budget 10]
"""
import argparse
import math
import sys
from pathlib import Path

import pandas as pd
from benchopt.benchmark import Benchmark

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_utils.plotting.budget import (  # noqa: E402
    best_within_budget, disqualified_runs)
from benchmark_utils.tuned_parameters import STEP_SIZE_PREFIX  # noqa: E402

#: The parameters of each solver that the tuning protocol tunes besides
#: the steps.
TUNING_SPACES = {cls.name: set(getattr(cls, "tuning_space", {}))
                 for cls in Benchmark(ROOT).get_solvers()}


def curve_keys(df):
    """solver_name -> (solver, its untuned parameters that are set)."""
    params = [column for column in df.columns
              if column.startswith("p_solver_")
              and not column[len("p_solver_"):].startswith(STEP_SIZE_PREFIX)]
    keys = {}
    for _, row in df.drop_duplicates("solver_name").iterrows():
        name = row["solver_name"].split("[")[0]
        tuned = TUNING_SPACES.get(name, set())
        fixed = tuple((column[len("p_solver_"):], str(row[column]))
                      for column in params if pd.notna(row[column])
                      and column[len("p_solver_"):] not in tuned)
        keys[row["solver_name"]] = (name, fixed)
    return keys


def best_cells(df, metric, budget):
    """(dataset, curve key) -> (best within the budget, reason or None),
    and dataset -> the metric at the start (the median of every curve's
    first point: the same point for every solver)."""
    best = best_within_budget(df, metric, "time", budget)
    reasons = disqualified_runs(df, metric, "time", budget)
    keys = curve_keys(df)
    first = df.sort_values("stop_val").groupby(
        ["dataset_name", "solver_name", "idx_rep"])[metric].first()
    starts = first.groupby(level="dataset_name").median()
    return {(dataset, keys[solver]): (float(value),
                                      reasons.get((dataset, solver)))
            for (dataset, solver), value in best.items()}, starts


def label(key, all_keys):
    """The solver's name, with the fixed parameters that tell its curves
    apart (AmIGO's inner_solver)."""
    name, fixed = key
    siblings = [k[1] for k in all_keys if k[0] == name]
    differing = [f"{param}={value}" for param, value in fixed
                 if len({dict(s).get(param) for s in siblings}) > 1]
    return name + (f"[{','.join(differing)}]" if differing else "")


def cell(entry):
    if entry is None:
        return "-"
    value, reason = entry
    text = f"{value:.2e}" if math.isfinite(value) else "nan"
    return text + (f" ({reason})" if reason else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--metric", default="objective_hypergrad_norm")
    parser.add_argument("--time-budget", type=float, default=10.0)
    args = parser.parse_args()
    tables, starts = {}, {}
    for name in ("before", "after"):
        path = getattr(args, name)
        if not path.is_file():
            sys.exit(f"compare_runs.py: no results file at {path}")
        df = pd.read_parquet(path)
        if args.metric not in df.columns:
            sys.exit(f"compare_runs.py: {path} has no column {args.metric}")
        tables[name], starts[name] = best_cells(df, args.metric,
                                                args.time_budget)
    keys = sorted(set(tables["before"]) | set(tables["after"]))
    curves = {key for _, key in keys}
    for dataset in sorted({dataset for dataset, _ in keys}):
        print(f"\n{dataset}: best {args.metric} within "
              f"{args.time_budget:g} s (start "
              f"{starts['after'].get(dataset, math.nan):.3g})\n")
        print(f"| solver | {args.before.name} | {args.after.name} | "
              "after / before |")
        print("|---|---|---|---|")
        for key in sorted(k for d, k in keys if d == dataset):
            before = tables["before"].get((dataset, key))
            after = tables["after"].get((dataset, key))
            ratio = (f"{after[0] / before[0]:.2g}" if before and after
                     and before[0] > 0 and math.isfinite(after[0])
                     else "-")
            print(f"| {label(key, curves)} | {cell(before)} | "
                  f"{cell(after)} | {ratio} |")


if __name__ == "__main__":
    main()
