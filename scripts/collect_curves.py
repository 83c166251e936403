"""Merge the finished curves of a run into one results file: for a run
stopped before benchopt wrote its results (Ctrl-C, a killed job), whose
curves were each written to ``outputs/<name>/.../curve.parquet`` as they
ended (:mod:`benchmark_utils.run_output`). The merged file is read by
``benchopt plot`` and ``scripts/budget_summary.py`` like benchopt's own.

Usage (from the benchmark folder):
    python scripts/collect_curves.py outputs/NAME [--output FILE.parquet]
(by default ``outputs/NAME_collected.parquet``; an existing file is never
overwritten).
"""
import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_utils.run_output import collect_curves  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path,
                        help="the run's output folder, outputs/NAME")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        sys.exit(f"collect_curves.py: no folder {args.folder}")
    output = args.output or args.folder.with_name(
        f"{args.folder.name}_collected.parquet")
    if output.exists():
        sys.exit(f"collect_curves.py: {output} exists; name another file "
                 "with --output")
    try:
        df = collect_curves(args.folder)
    except FileNotFoundError as error:
        sys.exit(f"collect_curves.py: {error}")
    df["run_date"] = pd.Timestamp.now().isoformat()
    df.to_parquet(output)
    print(f"{df.groupby(['dataset_name', 'solver_name', 'idx_rep']).ngroups}"
          f" curves, {len(df)} rows: {output}")


if __name__ == "__main__":
    main()
