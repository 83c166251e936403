"""Tune every solver curve of a run config by the protocol of
docs/tuning.md, and write one run config per dataset,
``configs/tuned/<dataset>.yml``, that runs every solver at its tuned
parameters.

Per dataset and solver curve (AmIGO: one per linear solver), an Optuna
study searches the curve's steps and the parameters its solver declares in
``tuning_space`` (``benchmark_utils.tuning.SearchSpace``): ``--trials``
candidates, the default first, each run in this process for the run's own
solver-time budget (the config's ``timeout``) on the tuning seed's
instance, a candidate that falls behind at 1/9 or 1/3 of the budget
stopped there (successive halving), and the candidate with the lowest
score among those that ran the whole budget kept
(``benchmark_utils.tuning.select_candidate``). Every trial is kept in an
SQLite file (``--storage``): an interrupted tuning resumes where it
stopped when run again, and ``--read-only`` writes the configs from it
without running a solver.

The tuning seed (``--seed``) gives the datasets and the random solvers
other draws than the evaluation runs' (benchopt's default seed, 0).

``--jobs N`` shares the curves among N processes of one thread each (the
curves of the benchmark's problems keep one core busy, not two): each
takes every N-th (dataset, curve) pair and its studies, and the configs
are written once they have all finished. The candidates are then judged
at the speed of one core.

Usage (from the benchmark folder):
    python scripts/tune.py [--config configs/quickstart.yml]
        [--timeout SECONDS] [--max-runs N] [--seed 1001] [--trials 12]
        [--dataset NAME ...] [--solver NAME ...] [--jobs 1]
        [--storage outputs/tuning/<config>.db] [--out-dir configs/tuned]
        [--read-only]
"""
import argparse
import math
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import torch
import yaml
from benchopt.benchmark import Benchmark
from benchopt.utils.parametrized_name_mixin import _get_used_parameters
from benchopt.utils.run_context import RunContext

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = Benchmark(ROOT)

from benchmark_utils.tuning import (  # noqa: E402
    N_STARTUP_TRIALS, REDUCTION_FACTOR, RUNGS, TIE_TOLERANCE, SearchSpace,
    curve_score, finished_candidates, format_value, make_study, run_curve,
    select_candidate, set_up_problem, solver_curves, tune_curve)
from benchmark_utils.tuned_parameters import (  # noqa: E402
    tunable_parameters)

#: The run-config keys that the tuned configs do not copy from the source
#: config: they write their own dataset and solver lists, and each would
#: overwrite the others' output file.
NOT_COPIED = ("dataset", "solver", "output")
#: A chosen value within this factor of an end of its range is reported:
#: a wider range might do better.
AT_AN_END = 1.2


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
                        "(default: the config's timeout, the run's own)")
    parser.add_argument("--max-runs", type=int, default=None,
                        help="evaluations per curve (default: the config's "
                        "max-runs)")
    parser.add_argument("--seed", type=int, default=1001,
                        help="tuning seed, distinct from the evaluation's")
    parser.add_argument("--trials", type=int, default=12,
                        help="candidates per curve, the default included")
    parser.add_argument("--dataset", nargs="+", default=None,
                        help="only the config's datasets of these names")
    parser.add_argument("--solver", nargs="+", default=None,
                        help="only the solvers of these names")
    parser.add_argument("--storage", type=Path, default=None,
                        help="the SQLite file of every trial (default: "
                        "outputs/tuning/<config name>.db)")
    parser.add_argument("--out-dir", type=Path,
                        default=ROOT / "configs" / "tuned",
                        help="where the tuned configs are written")
    parser.add_argument("--read-only", action="store_true",
                        help="write the configs from the storage's trials, "
                        "without running a solver")
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes of one thread each that share the "
                        "curves")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.timeout is not None and not args.timeout > 0:
        parser.error("--timeout must be positive")
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    if args.storage is None:
        args.storage = ROOT / "outputs" / "tuning" / (
            args.config.stem + ".db")
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


def config_objective(config):
    """The objective's parameters that the config selects (one set; the
    defaults when it names none)."""
    if "objective" not in config:
        return {}
    selected = [params for cls, selection in
                BENCHMARK.check_objective_filters(config["objective"])
                for params in _get_used_parameters(cls, selection)]
    if len(selected) != 1:
        raise ValueError("the config selects several objectives; tune one "
                         "at a time")
    return selected[0]


def inner_lipschitz(objective, dataset, solvers, seed):
    """The start's largest eigenvalue of d2_yy g on the tuning instance, as
    ``BilevelSolver.inner_lipschitz`` estimates it (through the first
    curve's solver, set up on the objective)."""
    cls, params = solvers[0]
    solver = cls.get_instance(**params)
    RunContext().set_run_context(objective, dataset, solver, repetition=0,
                                 base_seed=seed)
    skip, reason = solver._set_objective(objective)
    if skip:
        raise ValueError(f"{solver} cannot be set up on {dataset}: {reason}")
    return solver.inner_lipschitz()


#: The study attribute that keeps the L its steps were searched with.
LIPSCHITZ_ATTR = "lipschitz"


def stored_lipschitz(storage, label):
    """{study name: the L its steps were searched with} of the studies of
    the dataset ``label`` in ``storage`` that record it: a rerun, a
    resumed tuning and the configs written after the workers of ``--jobs``
    use the same search ranges and the same 'auto' as the trials, whatever
    a process's threads do to the last digits of a new estimate."""
    return {summary.study_name: summary.user_attrs[LIPSCHITZ_ATTR]
            for summary in optuna.get_all_study_summaries(
                storage, include_best_trial=False)
            if summary.study_name.startswith(f"{label} | ")
            and LIPSCHITZ_ATTR in summary.user_attrs}


def study_name(label, space):
    """The study of one curve on one dataset: named by both."""
    return f"{label} | {space.selection(space.default)}"


def worker_share(worker):
    """(index, count) of ``--worker index/count``: the worker runs the
    studies of every count-th (dataset, curve) pair from the index-th."""
    index, count = (int(part) for part in worker.split("/"))
    return index, count


def tune(args, config, datasets, solvers, budget, max_runs, storage):
    """Run the studies of every dataset and curve (resuming those in
    ``storage``; a worker, those of its share only); {dataset label:
    (lipschitz, [space])}."""
    spaces = {}
    share = None if args.worker is None else worker_share(args.worker)
    pair = -1
    for dataset_class, dataset_params, label in datasets:
        objective, dataset = set_up_problem(
            BENCHMARK, dataset_class, dataset_params, args.seed,
            config_objective(config))
        stored = stored_lipschitz(storage, label)
        lipschitz = (next(iter(stored.values())) if stored else
                     inner_lipschitz(objective, dataset, solvers, args.seed))
        spaces[label] = (lipschitz, [])
        for cls, params in solvers:
            space = SearchSpace(cls, params, lipschitz)
            # The study's name does not depend on L; its ranges do.
            space = SearchSpace(cls, params, stored.get(
                study_name(label, space), lipschitz))
            spaces[label][1].append(space)
            pair += 1
            if args.read_only or (share is not None
                                  and pair % share[1] != share[0]):
                continue
            study = make_study(storage, study_name(label, space), args.seed)
            study.set_user_attr(LIPSCHITZ_ATTR, space.lipschitz)

            def run(candidate, trial, protected, space=space):
                if args.worker is not None:
                    trial.set_user_attr("worker", args.worker)
                rows = run_curve(objective, dataset, space.solver_class,
                                 space.parameters(candidate), budget,
                                 max_runs, args.seed, trial, protected)
                return curve_score(rows, budget) if rows else math.inf

            tic = time.perf_counter()
            tune_curve(study, space, run, args.trials)
            trials = study.get_trials(deepcopy=False)
            pruned = sum(t.state == optuna.trial.TrialState.PRUNED
                         for t in trials)
            print(f"{label}: {space.selection(space.default)}: "
                  f"{len(trials)} trials ({pruned} stopped early) in "
                  f"{time.perf_counter() - tic:.0f} s", flush=True)
    return spaces


def header(args, argv, budget, lipschitz, earlier_commands, lines):
    """The comment at the top of a tuned config: the command (and the
    ``earlier_commands`` whose solvers it keeps), the protocol and, per
    solver, ``lines``."""
    # The configs written by --read-only are those of the tuning itself.
    command = "#   " + shlex.join(["python", "scripts/tune.py", *(
        argument for argument in argv if argument != "--read-only")])
    protocol = (
        f"Per solver curve, {args.trials} candidates (the default first, "
        f"then {N_STARTUP_TRIALS} at random and the rest by Optuna's TPE "
        f"sampler, seed {args.seed}) on the instance of seed {args.seed}, "
        f"each for {budget:g} s of solver time; a candidate not in the best "
        f"1/{REDUCTION_FACTOR} of those that reached {RUNGS[0]}% or "
        f"{RUNGS[1]}% of the budget before it is stopped there (the default "
        "never is). Steps are searched log-uniformly within a factor 31.6 "
        "of their default ('auto' = 1 / (1.1 L), L = "
        f"{lipschitz:.4g} at the start; y and v steps at most 2 / (1.1 L)), "
        "with the solver's tuning_space. Score of a curve: the mean of "
        "log10 hypergrad_norm over the budget; +inf if it diverged, failed, "
        "turned non-finite, ended above its starting value or its "
        "hypergrad_norm vanished (at most eps^2 of its start). Chosen: the "
        "lowest score among the candidates that ran the whole budget; "
        f"within {TIE_TOLERANCE:g} of it, the closest to the default. Per "
        "solver: the choice, its score (the default's), the trials, and "
        "what was searched.")
    return "\n".join([
        "# Parameters tuned by the protocol of docs/tuning.md, with:",
        *dict.fromkeys([*earlier_commands, command]),
        *textwrap.wrap(protocol, width=79, initial_indent="# ",
                       subsequent_indent="# "),
        *lines, ""])


def describe(space, study, chosen, scores):
    """The header lines of one curve: its choice and score next to the
    default's, how many trials ran and were stopped early, what was
    searched, and the values chosen near an end of their range."""
    trials = study.get_trials(deepcopy=False)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    default = next((score for candidate, score, is_default in scores
                    if is_default), math.inf)
    chosen_score = next(score for candidate, score, _ in scores
                        if candidate == chosen)
    at_an_end = [d.name for d in space.dimensions
                 if d.high > d.low and (chosen[d.name] <= d.low * AT_AN_END
                                        or chosen[d.name] * AT_AN_END
                                        >= d.high)]
    lines = [f"{space.selection(chosen)}: score {chosen_score:.3f} "
             f"(default {default:.3f}); {len(trials)} trials, {pruned} "
             "stopped early",
             "searched: " + "; ".join(space.describe())]
    if at_an_end:
        lines.append("near an end of the range: " + ", ".join(at_an_end))
    return [f"# {lines[0]}"] + [
        wrapped for line in lines[1:] for wrapped in textwrap.wrap(
            line, width=79, initial_indent="#   ",
            subsequent_indent="#     ")]


def curve_key(cls, params):
    """A curve's identity across tunings: its solver's name and its
    parameters other than the ones it tunes."""
    tunable = set(tunable_parameters(cls, params))
    return cls.name, tuple(sorted(
        (key, repr(value)) for key, value in params.items()
        if key not in tunable))


def single_curve(entry):
    """(solver class, params) of a selection string naming one curve."""
    ((cls, selection),) = BENCHMARK.check_solver_patterns([entry])
    (params,) = _get_used_parameters(cls, selection)
    return cls, params


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


def tuned_config_path(out_dir, dataset_class, dataset_params, label,
                      shared_name):
    """Where the tuned config of a dataset goes: ``<dataset name>.yml``,
    unless the run config tunes several datasets of that name
    (``shared_name``) or that file already holds another instance of it
    (another split), in which case the file is named after the whole
    label, so that the tuned parameters of each instance stay."""
    path = out_dir / f"{dataset_class.name}.yml"
    if not shared_name and (not path.is_file() or yaml.safe_load(
            path.read_text()).get("dataset") == [
                selection_string(dataset_class.name, dataset_params)]):
        return path
    return out_dir / (re.sub(r"[^\w.=-]+", "_", label).strip("_") + ".yml")


def write_configs(args, argv, config, datasets, spaces, budget, storage):
    """Apply the selection rule to every study and write one tuned config
    per dataset; the paths written."""
    names = [d[0].name for d in datasets]
    written = []
    for dataset_class, dataset_params, label in datasets:
        lipschitz, curve_spaces = spaces[label]
        selections, lines = [], []
        for space in curve_spaces:
            name = study_name(label, space)
            try:
                study = optuna.load_study(study_name=name, storage=storage)
            except KeyError:
                raise ValueError(f"{args.storage} has no study {name!r}: "
                                 "tune it first") from None
            scores = finished_candidates(study, space)
            if not scores:
                raise ValueError(f"the study {name!r} has no finished "
                                 "trial: tune it first")
            chosen = select_candidate(
                [(candidate, score) for candidate, score, _ in scores], space)
            selections.append(space.selection(chosen))
            lines += describe(space, study, chosen, scores)
        path = tuned_config_path(args.out_dir, dataset_class,
                                 dataset_params, label,
                                 names.count(dataset_class.name) > 1)
        commands = []
        if args.solver is not None:
            # A rerun for some solvers keeps the others' tuned entries.
            entries, kept_lines, commands = kept_entries(path, {
                curve_key(space.solver_class, space.params)
                for space in curve_spaces})
            selections, lines = entries + selections, kept_lines + lines
        tuned = {"dataset": [selection_string(dataset_class.name,
                                              dataset_params)],
                 "solver": selections,
                 **{k: v for k, v in config.items() if k not in NOT_COPIED}}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            header(args, argv, budget, lipschitz, commands, lines)
            + yaml.safe_dump(tuned, sort_keys=False, width=79))
        written.append(path)
    return written


def run_workers(argv, jobs):
    """Run ``jobs`` worker processes of this command, one thread each, and
    wait for them all; an error if one failed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, __file__, *argv,
                                 "--worker", f"{index}/{jobs}"], env=env)
               for index in range(jobs)]
    failed = [index for index, worker in enumerate(workers)
              if worker.wait() != 0]
    if failed:
        raise ValueError(f"worker(s) {failed} of {jobs} failed (above); "
                         "the same command resumes the tuning")


def main(argv):
    args = parse_args(argv)
    config = load_run_config(args.config)
    budget = args.timeout or config.get("timeout")
    if budget is None:
        raise ValueError(f"{args.config} has no timeout: give --timeout")
    max_runs = args.max_runs or config.get("max-runs")
    datasets = config_datasets(config, args.dataset)
    solvers = config_solvers(config, args.solver)
    if args.read_only and not args.storage.is_file():
        raise ValueError(f"no tuning storage at {args.storage}")
    args.storage.parent.mkdir(parents=True, exist_ok=True)
    # Workers write to one SQLite file: each waits for the others' writes.
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{args.storage.resolve()}",
        engine_kwargs={"connect_args": {"timeout": 300}})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    tuning = not args.read_only
    if tuning and args.jobs > 1 and args.worker is None:
        run_workers(argv, args.jobs)
        args.read_only = True
    if args.worker is not None:
        torch.set_num_threads(1)
    spaces = tune(args, config, datasets, solvers, float(budget), max_runs,
                  storage)
    if args.worker is not None:
        return
    if tuning:
        print(f"tuned in {time.perf_counter() - start:.0f} s; trials in "
              f"{args.storage}")
    for path in write_configs(args, argv, config, datasets, spaces,
                              float(budget), storage):
        print(f"wrote {path}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ValueError as error:
        sys.exit(f"tune.py: {error}")
