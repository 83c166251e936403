"""Solver overhead: time per outer iteration over the cost of its oracles.

For each solver, K outer iterations are timed (after a few untimed ones),
every oracle call being counted by method; the unit cost of each method is
its median time on the same problem. The overhead ratio is

    measured time / sum over methods of (calls x unit time),

1 meaning that the solver spends its time in the oracles only. Function
values (AID-exact's line search) count as oracle calls too. The oracles
use the HVP mode that the objective's default ``hvp_mode='auto'`` picks.
Problems: the synthetic one (n = 1,000), hyper-cleaning on the offline
MNIST digits (2,000 training samples) and regularization selection on
2,000 random news20-shaped documents (sparse).

Usage (from the benchmark folder):
    python scripts/solver_overhead.py [--n-outer 20] [--repeat 3]
        [--problem LABEL_PART] [--solver NAME_PART]
"""
import argparse
import itertools
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_cost import load_dataset  # noqa: E402
from sparse_hvp import news20_shaped_problem  # noqa: E402

from benchmark_utils.oracle_cost import median_call_times  # noqa: E402

#: Oracle methods, and how to call each at (x, y, v) for its unit time.
METHODS = {
    "grad_inner": lambda o, x, y, v: o.grad_inner(x, y),
    "grad_inner_x": lambda o, x, y, v: o.grad_inner_x(x, y),
    "grad_inner_xy": lambda o, x, y, v: o.grad_inner_xy(x, y),
    "grad_outer": lambda o, x, y, v: o.grad_outer(x, y),
    "hvp": lambda o, x, y, v: o.hvp(x, y, v),
    "cross": lambda o, x, y, v: o.cross(x, y, v),
    "hvp_and_cross": lambda o, x, y, v: o.hvp_and_cross(x, y, v),
    "value_inner": lambda o, x, y, v: o.value_inner(x, y),
    "value_outer": lambda o, x, y, v: o.value_outer(x, y),
}
N_WARMUP = 2


def counting_oracles(oracles):
    """Make ``oracles`` count its calls by method, in ``oracles.calls``,
    while ``oracles.counting`` is true."""
    oracles.calls = Counter()
    oracles.counting = False
    for name in METHODS:
        method = getattr(oracles, name)

        def counted(*args, _name=name, _method=method):
            if oracles.counting:
                oracles.calls[_name] += 1
            return _method(*args)
        setattr(oracles, name, counted)
    return oracles


def timed_run(solver, n_outer):
    """(seconds, oracle calls by method) of ``n_outer`` outer iterations,
    after N_WARMUP untimed ones."""
    oracles = solver.oracles
    oracles.calls.clear()
    marks = []

    def callback():
        marks.append(time.perf_counter())
        # Count the calls made between the first and the last timed mark.
        oracles.counting = len(marks) > N_WARMUP
        return len(marks) <= N_WARMUP + n_outer

    solver.run(callback)
    oracles.counting = False
    return marks[-1] - marks[N_WARMUP], Counter(oracles.calls)


def unit_times(oracles, x, y, methods):
    """Median seconds per call of each oracle method of ``methods`` at
    (x, y, 1), samples of at least 20 ms, the methods taking turns."""
    v = torch.ones_like(y)
    calls = {name: (lambda call=METHODS[name]: call(oracles, x, y, v))
             for name in methods}
    return median_call_times(calls, oracles.device, min_sample_time=0.02)


def default_instances(solver_class):
    """One instance per combination of the solver's default parameter
    values (AmIGO has two: gd and cg)."""
    grids = []
    for key, values in solver_class.parameters.items():
        names = [name.strip() for name in key.split(",")]
        grids.append([dict(zip(names, value if len(names) > 1 else (value,)))
                      for value in values])
    return [solver_class.get_instance(**{k: v for part in combo
                                         for k, v in part.items()})
            for combo in itertools.product(*grids)]


def problems(benchmark):
    """(label, problem): every problem has at least 1,000 samples."""
    for name, params in [("synthetic", {"n": 1000}),
                         ("hyperclean_mnist5k", {})]:
        yield load_dataset(benchmark, name, params)
    yield ("regsel, news20-shaped (random, 2,000 documents)",
           news20_shaped_problem(2_000))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-outer", type=int, default=20,
                        help="timed outer iterations per run")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per solver (the median is kept)")
    parser.add_argument("--problem", default="",
                        help="only the problems whose label contains this")
    parser.add_argument("--solver", default="",
                        help="only the solvers whose name contains this")
    args = parser.parse_args()
    benchmark = Benchmark(Path(__file__).resolve().parents[1])
    objective_class = benchmark.get_benchmark_objective()
    print(f"Medians of {args.repeat} runs of {args.n_outer} outer "
          "iterations.\n")
    print("| problem (HVP mode) | solver | ms per outer iteration | oracle "
          "share (ms) | overhead ratio |")
    print("|---|---|---|---|---|")
    for label, problem in problems(benchmark):
        if args.problem not in label:
            continue
        objective = objective_class.get_instance(device="cpu")
        objective.set_data(problem)
        problem = objective.problem
        for solver_class in benchmark.get_solvers():
            if args.solver not in solver_class.name:
                continue
            for solver in default_instances(solver_class):
                RunContext().set_run_context(objective, "dataset", solver,
                                             repetition=0, base_seed=0)
                solver.set_objective(**objective.get_objective())
                counting_oracles(solver.oracles)
                runs = []
                for _ in range(args.repeat):
                    seconds, calls = timed_run(solver, args.n_outer)
                    # Unit times right after each run: a slow spell of a
                    # shared machine then weighs on both sides alike.
                    units = unit_times(solver.oracles, problem.x0,
                                       problem.y0, list(calls))
                    oracle_time = sum(count * units[name]
                                      for name, count in calls.items())
                    runs.append((seconds / oracle_time, seconds,
                                 oracle_time))
                ratio, seconds, oracle_time = sorted(runs)[len(runs) // 2]
                print(f"| {label} ({objective.resolved_hvp_mode}) | "
                      f"{solver} | {1e3 * seconds / args.n_outer:.2f} | "
                      f"{1e3 * oracle_time / args.n_outer:.2f} | "
                      f"{ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
