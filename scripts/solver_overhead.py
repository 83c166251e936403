"""Solver overhead: time per outer iteration over the cost of its oracles.

For each solver, one run: untimed warm-up iterations until the solver is
at its steady state, then ``--repeat`` blocks of K timed outer iterations,
every oracle call of a block being counted by method; right after each
block (inside the callback, untimed), the unit cost of each method it
called is its median time on the same problem. The overhead ratio of a
block is

    measured time / sum over methods of (calls x unit time),

1 meaning that the solver spends its time in the oracles only; the median
block is printed. Function values (AID-exact's line search) count as
oracle calls too, and so does each product of a ``hessian_at`` operator
(the linear solves of AID-exact and of Newton-CG), and its building.

The steady state matters for LancBiO, whose Krylov basis grows with its
subspace dimension m: the warm-up lets m reach its maximum by the
problem's ``subspace_schedule`` (synthetic problem: 80, x1.1 every 20
iterations, so 560 iterations) and the basis fill once at that m (80 more),
so that the timed iterations pay the Lanczos process at its largest. A
method without a growing state is warmed up by 2 iterations.
``--warmup`` sets one number for every solver.

The oracles use the HVP mode that the objective's default
``hvp_mode='auto'`` picks; on CUDA, the device is synchronised before each
read of the clock. Problems: the quickstart's quadratic, the synthetic one
(n = 1,000 and 2,000), hyper-cleaning on the offline MNIST digits (2,000
training samples) and regularization selection on 2,000 random
news20-shaped documents (sparse).

Usage (from the benchmark folder):
    python scripts/solver_overhead.py [--n-outer 20] [--repeat 3]
        [--warmup N] [--device cpu|cuda] [--problem LABEL_PART]
        [--solver NAME_PART]
"""
import argparse
import itertools
import math
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path

import torch
from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_cost import load_dataset  # noqa: E402
from sparse_hvp import news20_shaped_problem  # noqa: E402

from benchmark_utils.oracle_cost import (median_call_times,  # noqa: E402
                                         wait_for)

#: Oracle methods, and for each, how to make a call of it at (x, y, v) (u of
#: the size of x for cross_transpose) for its unit time. Each product of a
#: ``hessian_at`` operator (the linear solves of AID-exact and of Newton-CG)
#: counts as one 'hessian_at product', timed with the operator built once,
#: as a solve uses it; building it counts as one 'hessian_at'.
METHODS = {
    "grad_inner": lambda o, x, y, v: partial(o.grad_inner, x, y),
    "grad_inner_x": lambda o, x, y, v: partial(o.grad_inner_x, x, y),
    "grad_inner_xy": lambda o, x, y, v: partial(o.grad_inner_xy, x, y),
    "grad_outer": lambda o, x, y, v: partial(o.grad_outer, x, y),
    "hvp": lambda o, x, y, v: partial(o.hvp, x, y, v),
    "cross": lambda o, x, y, v: partial(o.cross, x, y, v),
    "cross_transpose": lambda o, x, y, v: partial(o.cross_transpose, x, y,
                                                  torch.ones_like(x)),
    "hvp_and_cross": lambda o, x, y, v: partial(o.hvp_and_cross, x, y, v),
    "hessian_at": lambda o, x, y, v: partial(o.hessian_at, x, y),
    "hessian_at product": lambda o, x, y, v: partial(o.hessian_at(x, y), v),
    "value_inner": lambda o, x, y, v: partial(o.value_inner, x, y),
    "value_outer": lambda o, x, y, v: partial(o.value_outer, x, y),
}


def set_up(solver, objective):
    """``solver`` (an instance) set up on ``objective`` as benchopt's runner
    sets it up (repetition 0, seed 0); returned."""
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    return solver


#: Warm-up iterations of a method without a growing state.
N_WARMUP = 2


def steady_state_warmup(solver):
    """Untimed iterations after which ``solver`` (set up) is at its steady
    state: for a Krylov method with a subspace schedule (LancBiO's
    ``subspace_dim`` and ``schedule``: largest m, growth, iterations
    between growths), until m reaches its maximum, then one full basis at
    it; :data:`N_WARMUP` for the others."""
    if "subspace_dim" not in solver._parameters:
        return N_WARMUP
    max_dim, growth, every = solver.schedule
    m, iterations = solver.subspace_dim, 0
    while m < max_dim:
        m = min(math.ceil(growth * m), max_dim)
        iterations += every
    return iterations + max_dim


def counting_oracles(oracles):
    """Make ``oracles`` count its calls by method (each product of a
    ``hessian_at`` operator too), in ``oracles.calls``, while
    ``oracles.counting`` is true."""
    oracles.calls = Counter()
    oracles.counting = False

    def counted(method, name):
        def call(*args, **kwargs):
            if oracles.counting:
                oracles.calls[name] += 1
            return method(*args, **kwargs)
        return call

    for name in METHODS:
        if hasattr(oracles, name):
            setattr(oracles, name, counted(getattr(oracles, name), name))
    build_hessian = oracles.hessian_at
    oracles.hessian_at = lambda *args, **kwargs: counted(
        build_hessian(*args, **kwargs), "hessian_at product")
    return oracles


class TimedBlocks:
    """The solver's callback: ``warmup`` untimed iterations, then
    ``n_blocks`` blocks of ``n_outer`` timed ones. At the end of each block
    it calls ``after_block(seconds, calls)`` (untimed: the clock of the next
    block starts when it returns), with the oracle calls of the block by
    method."""

    def __init__(self, oracles, warmup, n_outer, n_blocks, after_block):
        self.oracles, self.warmup = oracles, warmup
        self.n_outer, self.n_blocks = n_outer, n_blocks
        self.after_block = after_block
        self.iterations_done, self.blocks_done = 0, 0

    def __call__(self):
        wait_for(self.oracles.device)
        now = time.perf_counter()
        timed = self.iterations_done - self.warmup
        if timed > 0 and timed % self.n_outer == 0:
            self.oracles.counting = False
            self.after_block(now - self.start, Counter(self.oracles.calls))
            self.blocks_done += 1
        self.iterations_done += 1
        if timed >= 0 and timed % self.n_outer == 0:
            self.oracles.calls.clear()
            self.oracles.counting = self.blocks_done < self.n_blocks
            wait_for(self.oracles.device)
            self.start = time.perf_counter()
        return self.blocks_done < self.n_blocks


def unit_times(oracles, x, y, methods):
    """Median seconds per call of each oracle method of ``methods`` at
    (x, y, 1), samples of at least 20 ms, the methods taking turns."""
    v = torch.ones_like(y)
    calls = {name: METHODS[name](oracles, x, y, v) for name in methods}
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


def problems(benchmark, label_part=""):
    """(label, problem) of the problems whose label contains
    ``label_part``, each built only then: the quickstart's quadratic (50 +
    100 variables, where the fixed cost of a call shows), and problems of
    at least 1,000 samples or variables."""
    datasets = {dataset.name: dataset for dataset in benchmark.get_datasets()}
    for name, params in [("quadratic", {}), ("synthetic", {"n": 1000}),
                         ("synthetic", {"n": 2000}),
                         ("hyperclean_mnist5k", {})]:
        if label_part in str(datasets[name].get_instance(**params)):
            yield load_dataset(benchmark, name, params)
    label = "regsel, news20-shaped (random, 2,000 documents)"
    if label_part in label:
        yield label, news20_shaped_problem(2_000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-outer", type=int, default=20,
                        help="timed outer iterations per block")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed blocks per solver (the median is kept)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed iterations before the timed ones, for "
                        "every solver (default: each solver's steady "
                        "state, see above)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--problem", default="",
                        help="only the problems whose label contains this")
    parser.add_argument("--solver", default="",
                        help="only the solvers whose name contains this")
    args = parser.parse_args()
    benchmark = Benchmark(Path(__file__).resolve().parents[1])
    objective_class = benchmark.get_benchmark_objective()
    warmed_up = (
        f"{args.warmup} untimed iterations" if args.warmup is not None
        else "untimed iterations to each solver's steady state (LancBiO: "
        "its subspace at its largest m, then one full basis; the others: "
        f"{N_WARMUP})")
    print(f"Medians of {args.repeat} blocks of {args.n_outer} outer "
          f"iterations, after {warmed_up}.\n")
    print("| problem (HVP mode) | solver | ms per outer iteration | oracle "
          "share (ms) | overhead ratio |")
    print("|---|---|---|---|---|")
    for label, problem in problems(benchmark, args.problem):
        objective = objective_class.get_instance(device=args.device)
        objective.set_data(problem)
        problem = objective.problem
        for solver_class in benchmark.get_solvers():
            if args.solver not in solver_class.name:
                continue
            for solver in default_instances(solver_class):
                set_up(solver, objective)
                counting_oracles(solver.oracles)
                blocks = []

                def after_block(seconds, calls, oracles=solver.oracles):
                    # Unit times right after each block: a slow spell of a
                    # shared machine then weighs on both sides alike.
                    units = unit_times(oracles, problem.x0, problem.y0,
                                       list(calls))
                    oracle_time = sum(count * units[name]
                                      for name, count in calls.items())
                    blocks.append((seconds / oracle_time, seconds,
                                   oracle_time))

                warmup = (steady_state_warmup(solver) if args.warmup is None
                          else args.warmup)
                solver.run(TimedBlocks(solver.oracles, warmup, args.n_outer,
                                       args.repeat, after_block))
                ratio, seconds, oracle_time = sorted(blocks)[len(blocks) // 2]
                print(f"| {label} ({objective.resolved_hvp_mode}) | "
                      f"{solver} | {1e3 * seconds / args.n_outer:.3g} | "
                      f"{1e3 * oracle_time / args.n_outer:.3g} | "
                      f"{ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
