"""Tune every solver's step sizes on the datasets of a run config, by the
protocol of docs/tuning.md, and write one run config per dataset,
``configs/tuned/<dataset>.yml``, that runs every solver with its tuned
step sizes.

Per dataset, every solver curve (AmIGO: one per linear solver) tunes its
step sizes one at a time (y, then v, then x: coordinate search), the
others held at their current values: the values of the step's grid
(``benchmark_utils.tuning.step_size_grid``) are run with ``benchopt run``
on the tuning seeds, each curve for a budget of solver time, and the
candidate with the lowest median score over the seeds is kept
(``benchmark_utils.tuning.select_candidate``). One benchopt run per
dataset, seed and step covers every solver. The tuned configs come from
the same rule applied to every candidate run; all the results go to one
parquet table (``--results``), and ``--read-only TABLE`` applies the rule
to such a table and writes the configs without running a solver.

The tuning seeds (``--seeds``) give the datasets and the random solvers
other draws than the evaluation runs' (benchopt's default seed, 0).

Usage (from the benchmark folder):
    python scripts/tune_step_sizes.py [--config configs/quickstart.yml]
        [--timeout SECONDS] [--max-runs N] [--seeds 1001 1002]
        [--passes 1] [--dataset NAME ...] [--solver NAME ...]
        [--results outputs/tuning/<config>.parquet]
        [--out-dir configs/tuned]
    python scripts/tune_step_sizes.py --read-only RESULTS.parquet
        [the same options]
"""
import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import click
import pandas as pd
import yaml
from benchopt.benchmark import Benchmark
from benchopt.results import read_results
from benchopt.utils.parametrized_name_mixin import _get_used_parameters
from benchopt.utils.run_context import RunContext

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = Benchmark(ROOT)

from benchmark_utils.tuning import (  # noqa: E402
    GRID_SIZE, SHORT_CURVE, STABILITY_LIMIT, TIE_TOLERANCE, TuningCurve,
    check_columns, format_value, normalize, resolve_step, select_candidate,
    solver_curves, tuned_step_sizes)

#: The run-config keys that the tuned configs do not copy from the source
#: config: they write their own dataset and solver lists, and each would
#: overwrite the others' output file.
NOT_COPIED = ("dataset", "solver", "output")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path,
                        default=ROOT / "configs" / "quickstart.yml",
                        help="the run config whose datasets (and solvers, "
                        "if it names them) are tuned")
    parser.add_argument("--timeout", type=float, default=None,
                        help="solver-time budget per curve, in seconds "
                        "(default: the config's timeout)")
    parser.add_argument("--max-runs", type=int, default=None,
                        help="evaluations per curve (default: the config's "
                        "max-runs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1001, 1002],
                        help="tuning seeds, distinct from the evaluation's")
    parser.add_argument("--passes", type=int, default=1,
                        help="passes of coordinate search over the steps")
    parser.add_argument("--dataset", nargs="+", default=None,
                        help="only the config's datasets of these names")
    parser.add_argument("--solver", nargs="+", default=None,
                        help="only the solvers of these names")
    parser.add_argument("--results", type=Path, default=None,
                        help="the parquet table of every tuning run "
                        "(default: outputs/tuning/<config name>.parquet)")
    parser.add_argument("--out-dir", type=Path,
                        default=ROOT / "configs" / "tuned",
                        help="where the tuned configs are written")
    parser.add_argument("--read-only", type=Path, default=None,
                        metavar="RESULTS",
                        help="select from this results table and write the "
                        "configs, without running a solver")
    args = parser.parse_args(argv)
    if args.passes < 1:
        parser.error("--passes must be at least 1")
    if args.timeout is not None and not args.timeout > 0:
        parser.error("--timeout must be positive")
    if args.results is None:
        args.results = ROOT / "outputs" / "tuning" / (
            args.config.stem + ".parquet")
    return args


def load_run_config(path):
    if not path.is_file():
        raise ValueError(f"no run config at {path}")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or "dataset" not in config:
        raise ValueError(f"{path} is not a run config with a 'dataset' list")
    return config


def selection_string(name, params):
    """A benchopt selection string that names every parameter."""
    return f"{name}[" + ",".join(f"{key}={format_value(value)}"
                                 for key, value in params.items()) + "]"


def select_by_name(items, names, kind, name_of):
    """``items`` whose name is in ``names`` (all if None); an error naming
    the unknown ones."""
    if names is None:
        return items
    known = {name_of(item) for item in items}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"no {kind} named {', '.join(unknown)} in the "
                         f"config; its {kind}s: {', '.join(sorted(known))}")
    return [item for item in items if name_of(item) in names]


def config_datasets(config, names):
    """[(dataset class, params, label)] for the datasets of the config."""
    datasets = [
        (cls, params, str(cls.get_instance(**params)))
        for cls, selection in BENCHMARK.check_dataset_patterns(
            config["dataset"])
        for params in _get_used_parameters(cls, selection)]
    return select_by_name(datasets, names, "dataset", lambda d: d[0].name)


def config_solvers(config, names):
    """[(solver class, params)], one per curve to tune: the config's
    solvers, or every solver of the benchmark at its defaults."""
    if "solver" in config:
        selected = BENCHMARK.check_solver_patterns(config["solver"])
    else:
        selected = [(cls, {}) for cls in BENCHMARK.get_solvers()]
    curves = [(cls, params) for cls, selection in selected
              for params in solver_curves(cls, selection)]
    return select_by_name(curves, names, "solver", lambda c: c[0].name)


#: inner_lipschitz's estimates, by dataset label and seeds: both the search
#: and the configs it writes need them.
LIPSCHITZ_CACHE = {}


def inner_lipschitz(dataset, solver, seeds):
    """The largest, over the tuning seeds, of the start's largest
    eigenvalue of d2_yy g, as ``BilevelSolver.inner_lipschitz`` estimates
    it (the objective's defaults, HVPs in reverse mode: the same number up
    to round-off, without timing every HVP mode). The largest, so that a
    grid capped at 2 / (1.1 L) is stable on every tuning instance."""
    dataset_class, dataset_params, label = dataset
    if (label, tuple(seeds)) in LIPSCHITZ_CACHE:
        return LIPSCHITZ_CACHE[label, tuple(seeds)]
    estimates = []
    for seed in seeds:
        objective = BENCHMARK.get_benchmark_objective().get_instance(
            hvp_mode="reverse")
        instance = dataset_class.get_instance(**dataset_params)
        solver_instance = solver[0].get_instance(**solver[1])
        # The seeds that `benchopt run --seed SEED` gives repetition 0.
        RunContext().set_run_context(objective, instance, solver_instance,
                                     repetition=0, base_seed=seed)
        objective.set_data(**instance.get_data())
        solver_instance.set_objective(**objective.get_objective())
        estimates.append(solver_instance.inner_lipschitz())
    LIPSCHITZ_CACHE[label, tuple(seeds)] = max(estimates)
    return max(estimates)


def run_benchopt(config, dataset_selection, selections, seed, budget,
                 max_runs, workdir):
    """One ``benchopt run`` of ``selections`` on one dataset and seed; its
    results table."""
    output = workdir / f"run_{time.monotonic_ns()}.parquet"
    run_config = {
        "dataset": [dataset_selection], "solver": selections,
        "timeout": budget, "n-repetitions": 1, "seed": seed,
        "plot": False, "html": False, "display": False, "no-cache": True,
        "output": str(output),
    }
    if max_runs is not None:
        run_config["max-runs"] = max_runs
    if "objective" in config:
        run_config["objective"] = config["objective"]
    config_path = output.with_suffix(".yml")
    config_path.write_text(yaml.safe_dump(run_config, sort_keys=False))
    completed = subprocess.run(
        [sys.executable, "-m", "benchopt", "run", str(ROOT), "--config",
         str(config_path)], cwd=ROOT, capture_output=True, text=True)
    if completed.returncode != 0 or not output.is_file():
        log = (completed.stdout + completed.stderr).replace("\r", "\n")
        raise RuntimeError("benchopt run failed:\n" + "\n".join(
            log.strip().splitlines()[-30:]))
    return read_results(output)


def save_results(tables, path):
    """Write the concatenated tables; parameter columns as strings, since
    one column holds 'auto' and numbers."""
    results = pd.concat(tables, ignore_index=True)
    for column in results.columns:
        if column.startswith("p_") and results[column].dtype == object:
            results[column] = results[column].map(
                lambda v: None if normalize(v) is None else str(v))
    path.parent.mkdir(parents=True, exist_ok=True)
    results.to_parquet(path)
    return results


def earlier_results(args, datasets, solvers):
    """The rows of the results table (``--results``) that a run keeps: all
    but those of the datasets and solvers it tunes."""
    if not args.results.is_file():
        return []
    results = read_results(args.results)
    redone = (results["dataset_name"].isin([label for *_, label in datasets])
              & results["solver_name"].str.partition("[")[0].isin(
                  [cls.name for cls, _ in solvers]))
    return [results[~redone]]


def tune(args, config, datasets, solvers, budget, max_runs):
    """Run the coordinate search on every dataset; the results table."""
    tables, n_candidate_runs = earlier_results(args, datasets, solvers), 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        for dataset in datasets:
            _, dataset_params, label = dataset
            lipschitz = inner_lipschitz(dataset, solvers[0], args.seeds)
            curves = [TuningCurve(cls, params, lipschitz)
                      for cls, params in solvers]
            incumbents = [curve.default for curve in curves]
            evaluated = [set() for _ in curves]
            dataset_selection = selection_string(dataset[0].name,
                                                 dataset_params)
            n_rounds = max(len(curve.steps) for curve in curves)
            for pass_index in range(args.passes):
                for position in range(n_rounds):
                    # The candidates of this step, for every curve.
                    rounds = [
                        (i, curve, curve.coordinate_candidates(
                            incumbents[i], curve.steps[position]))
                        for i, curve in enumerate(curves)
                        if position < len(curve.steps)]
                    pending = [(i, curve, candidate)
                               for i, curve, candidates in rounds
                               for candidate in candidates
                               if candidate not in evaluated[i]]
                    for seed in args.seeds if pending else ():
                        tic = time.perf_counter()
                        tables.append(run_benchopt(
                            config, dataset_selection,
                            [curve.selection(candidate)
                             for _, curve, candidate in pending],
                            seed, budget, max_runs, Path(workdir)))
                        n_candidate_runs += len(pending)
                        print(f"{label}, pass {pass_index + 1}, step "
                              f"{position + 1}, seed {seed}: {len(pending)}"
                              f" candidates in "
                              f"{time.perf_counter() - tic:.0f} s",
                              flush=True)
                    for i, _, candidate in pending:
                        evaluated[i].add(candidate)
                    if not pending:
                        continue
                    results = save_results(tables, args.results)
                    rows = results[results["dataset_name"] == label]
                    for i, curve, candidates in rounds:
                        scores = curve.candidate_scores(rows, budget)
                        incumbents[i] = select_candidate(
                            {c: scores.get(c, float("inf"))
                             for c in candidates}, curve)
    elapsed = time.perf_counter() - start
    print(f"{n_candidate_runs} candidate runs in {elapsed:.0f} s "
          f"({elapsed / max(n_candidate_runs, 1):.1f} s each, set-up "
          f"included); results in {args.results}")
    return save_results(tables, args.results)


def header(args, argv, budget, lipschitz, seeds, earlier_commands, lines):
    """The comment at the top of a tuned config: the command (and the
    ``earlier_commands`` whose solvers it keeps), the protocol and, per
    solver, ``lines``."""
    command = "#   " + shlex.join(
        ["python", "scripts/tune_step_sizes.py", *argv])
    passes = ("as many passes as the table's run made" if args.read_only
              else f"{args.passes} pass" + "es" * (args.passes > 1))
    protocol = (
        f"Grid: {GRID_SIZE} values a factor sqrt(10) apart around each "
        f"default step ('auto' = 1 / (1.1 L), L = {lipschitz:.4g} at the "
        "start, the largest over the tuning seeds; y and v steps at most "
        f"{STABILITY_LIMIT:g} / (1.1 L)), tuned one step at a time (y, v, "
        f"then x; {passes}) on seeds {', '.join(map(str, seeds))}, "
        f"{budget:g} s of solver time per curve. Score of a curve: the "
        "mean of log10 hypergrad_norm over the budget (of value_at_y on a "
        "lower level that is not convex); +inf if it "
        "diverged, turned non-finite or ended above its starting value. "
        "Chosen: the lowest median score over the seeds; within "
        f"{TIE_TOLERANCE:g} of it, the closest to the default. Per solver: "
        "the choice and its score (the default's), the values tried.")
    return "\n".join([
        "# Step sizes tuned by the protocol of docs/tuning.md, with:",
        *dict.fromkeys([*earlier_commands, command]),
        *textwrap.wrap(protocol, width=79, initial_indent="# ",
                       subsequent_indent="# "),
        *lines, ""])


def describe(curve, scores, chosen, short):
    """The header lines of one curve: its choice and score next to the
    default's, the values tried for each step, the steps chosen at an end
    of the values tried (a wider grid might do better) and ``short``, the
    counts of :meth:`TuningCurve.short_curves`."""
    tried, at_an_end = [], []
    for position, step in enumerate(curve.steps):
        values = sorted({candidate[position] for candidate in scores},
                        key=lambda v, s=step: resolve_step(
                            s, v, curve.lipschitz))
        tried.append(f"{step} in "
                     + ", ".join(format_value(value) for value in values))
        if len(values) > 1 and chosen[position] in (values[0], values[-1]):
            at_an_end.append(step)
    default = scores.get(curve.default, float("inf"))
    lines = [f"{curve.selection(chosen)}: score {scores[chosen]:.3f} "
             f"(default {default:.3f})", *tried]
    if at_an_end:
        lines.append("at an end of the values tried: "
                     + ", ".join(at_an_end))
    if short[0]:
        lines.append(f"{short[0]} of {short[1]} qualified curves stop before"
                     f" {SHORT_CURVE:.0%} of the budget")
    return [f"# {lines[0]}"] + [
        wrapped for line in lines[1:] for wrapped in textwrap.wrap(
            line, width=79, initial_indent="#   ",
            subsequent_indent="#     ")]


def curve_key(cls, params):
    """A curve's identity across tunings: its solver's name and its
    parameters other than the steps it tunes."""
    steps = set(tuned_step_sizes(cls.name, params))
    return cls.name, tuple(sorted(
        (key, repr(normalize(value))) for key, value in params.items()
        if key not in steps))


def kept_entries(path, tuned_now):
    """What a rerun for some solvers (``--solver``) keeps of the tuned
    config at ``path``: the solver entries of the other curves (keys not
    in ``tuned_now``), their header lines, and the commands that tuned
    them."""
    if not path.is_file():
        return [], [], []
    lines = path.read_text().splitlines()
    entries = [entry for entry in yaml.safe_load("\n".join(lines))["solver"]
               if curve_key(*single_curve(entry)) not in tuned_now]
    commands = [line for line in lines[1:]
                if line.startswith("#   python ")]
    kept_lines = []
    for entry in entries:
        # An entry's block: its "# ENTRY: score ..." line and the indented
        # comment lines after it.
        in_block = False
        for line in lines:
            in_block = (line.startswith(f"# {entry}: score")
                        or in_block and line.startswith("#   "))
            if in_block:
                kept_lines.append(line)
    return entries, kept_lines, commands


def single_curve(entry):
    """(solver class, params) of a selection string naming one curve."""
    ((cls, selection),) = BENCHMARK.check_solver_patterns([entry])
    (params,) = _get_used_parameters(cls, selection)
    return cls, params


def tuned_config_path(out_dir, dataset_class, dataset_params, label,
                      shared_name):
    """Where the tuned config of a dataset goes: ``<dataset name>.yml``,
    unless the run config tunes several datasets of that name
    (``shared_name``) or that file already holds another instance of it
    (another split), in which case the file is named after the whole
    label, so that the tuned steps of each instance stay."""
    path = out_dir / f"{dataset_class.name}.yml"
    if not shared_name and (not path.is_file() or yaml.safe_load(
            path.read_text()).get("dataset") == [
                selection_string(dataset_class.name, dataset_params)]):
        return path
    return out_dir / (re.sub(r"[^\w.=-]+", "_", label).strip("_") + ".yml")


def write_configs(args, argv, config, datasets, solvers, results, budget,
                  seeds):
    """Apply the selection rule to ``results`` and write one tuned config
    per dataset; the paths written."""
    check_columns(results)
    names = [d[0].name for d in datasets]
    written = []
    for dataset in datasets:
        dataset_class, dataset_params, label = dataset
        rows = results[results["dataset_name"] == label]
        if rows.empty:
            raise ValueError(
                f"the results table has no rows for dataset {label}; it has "
                + ", ".join(sorted(results["dataset_name"].unique())))
        lipschitz = inner_lipschitz(dataset, solvers[0], seeds)
        selections, lines = [], []
        for cls, params in solvers:
            curve = TuningCurve(cls, params, lipschitz)
            scores = curve.candidate_scores(rows, budget)
            if not scores:
                raise ValueError(
                    f"the results table has no curve of "
                    f"{curve.selection(curve.default)} on {label}; select "
                    "the solvers it holds with --solver")
            chosen = select_candidate(scores, curve)
            selections.append(curve.selection(chosen))
            short = curve.short_curves(rows, budget)
            lines += describe(curve, scores, chosen, short)
            if short[0] > short[1] / 2:
                print(f"warning: {short[0]} of {short[1]} curves of "
                      f"{curve.name} on {label} stop before "
                      f"{SHORT_CURVE:.0%} of the {budget:g} s budget (see "
                      "docs/tuning.md, 'Cost')", file=sys.stderr)
        path = tuned_config_path(args.out_dir, dataset_class,
                                 dataset_params, label,
                                 names.count(dataset_class.name) > 1)
        commands = []
        if args.solver is not None:
            # A rerun for some solvers keeps the others' tuned entries.
            entries, kept_lines, commands = kept_entries(path, {
                curve_key(cls, params) for cls, params in solvers})
            selections, lines = entries + selections, kept_lines + lines
        tuned = {"dataset": [selection_string(dataset_class.name,
                                              dataset_params)],
                 "solver": selections,
                 **{k: v for k, v in config.items() if k not in NOT_COPIED}}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            header(args, argv, budget, lipschitz, seeds, commands, lines)
            + yaml.safe_dump(tuned, sort_keys=False, width=79))
        written.append(path)
    return written


def main(argv):
    args = parse_args(argv)
    config = load_run_config(args.config)
    budget = args.timeout or config.get("timeout")
    if budget is None:
        raise ValueError(f"{args.config} has no timeout: give --timeout")
    max_runs = args.max_runs or config.get("max-runs")
    datasets = config_datasets(config, args.dataset)
    solvers = config_solvers(config, args.solver)
    if args.read_only is not None:
        if not args.read_only.is_file():
            raise ValueError(f"no results table at {args.read_only}")
        results = read_results(args.read_only)
        check_columns(results)
        seeds = sorted(int(seed) for seed in results["base_seed"].unique())
    else:
        results = tune(args, config, datasets, solvers, float(budget),
                       max_runs)
        seeds = args.seeds
    for path in write_configs(args, argv, config, datasets, solvers,
                              results, float(budget), seeds):
        print(f"wrote {path}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ValueError, RuntimeError, click.ClickException) as error:
        sys.exit(f"tune_step_sizes.py: {error}")
