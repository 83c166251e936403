"""Tensor operations per outer iteration of every solver.

On a small problem, and on a GPU at any size, a solver's time is also paid
per tensor operation it launches (the dispatcher's fixed cost, a kernel
launch each), whatever the operation's size; this counts them. A
``TorchDispatchMode`` sees every aten operation once, at the level where
it runs (after autograd, which is off here), so each product, entrywise
update, reduction, view and copy counts one, with none of the profiler's
overhead or its nested records (``torch.profiler`` lists an operator and
the operators it calls, so its counts depend on what is composite). Host
reads through ``tolist()`` do not pass through the dispatcher and are not
counted.

For every solver in ``solvers/`` (default parameters, full batch) on the
synthetic problem (small n): the mean over ``--iterations`` outer
iterations, after ``solver_overhead.N_WARMUP`` untimed ones; LancBiO at
m = 1 (its first iterations) and at m = 80 (after its subspace reached 80
by the schedule, ``solver_overhead.steady_state_warmup``, over a window of
80 iterations, the length of one basis: each restart's extra HVP is in
the mean). The hand-written twins of LancBiO, SubBiO and SOBA
(``benchmark_utils/testing/handwritten.py``) are counted the same way, as
the floor. Checked by ``tests/test_speed_scripts.py``: LancBiO at m = 1
and at m = 80 within 20% of each other, and at m = 80 at most 1.25 times
its hand-written twin.

``--launch-bound`` estimates instead, per solver, the problem size under
which a GPU's time per outer iteration would be set by its kernel
launches rather than by its arithmetic. Two assumptions, both options:
each aten operation but a view is one kernel launch of a fixed cost
(``--launch-us``, a few microseconds: PyTorch's dispatch and CUDA's
launch, whatever the operation's size), and each operation reads its
inputs and writes its output once at the device's memory bandwidth
(``--bandwidth-tbs``; the products with the data, matrix-vector products,
are bound by memory, not by flops). The launches and the bytes each
operation moves are counted (deterministic counts, not times) at three
sizes of the synthetic problem (n = x and y's dimension) and of
hyper-cleaning on the offline MNIST digits (n = training = validation
samples); the bytes per launch, a polynomial in n fitted to the three
points (degree 2 and 1: the n x n matrix G, the n samples), is solved
for ``launch cost x bandwidth``: below that size
n*, one launch moves less than the bytes the device streams in one launch
time, and the time axis ranks operation counts. Also printed: the share
of the launches in the time floor ``launches x launch cost + bytes /
bandwidth`` at the sizes of the GPU configs (n = 10,000 and 5,000).

Usage (from the benchmark folder):
    python scripts/operation_count.py [--n 200] [--iterations 10]
        [--solvers NAME ...] [--device cpu|cuda] [--by-operation]
    python scripts/operation_count.py --launch-bound [--launch-us 5]
        [--bandwidth-tbs 3.35] [--solvers NAME ...]
"""
import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from benchopt.benchmark import Benchmark
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_cost import COUNTED_CALLS, load_dataset  # noqa: E402
from solver_overhead import (N_WARMUP, default_instances,  # noqa: E402
                             set_up,
                             steady_state_warmup)

#: The launch-bound estimate's defaults: the fixed cost of one kernel
#: launch from PyTorch (an assumption: a few microseconds), and the memory
#: bandwidth of an NVIDIA H100 SXM's HBM3 (3.35 TB/s).
LAUNCH_SECONDS = 5e-6
BANDWIDTH = 3.35e12
#: The problem families of the estimate: dataset, its parameters at size
#: n, the sizes counted, the degree in n of the bytes an operation moves
#: (the synthetic problem's n x n matrix G; hyper-cleaning's n samples of
#: 785 features), and the size of the GPU configs.
LAUNCH_BOUND_FAMILIES = {
    "synthetic": ("synthetic", lambda n: {"n": n, "kappa": 1e5},
                  (100, 200, 400), 2, 10_000),
    "hyper-cleaning": (
        "hyperclean_mnist5k",
        lambda n: {"n_train": n, "n_val": n, "n_test": 100},
        (200, 400, 800), 1, 5_000),
}


def moved_bytes(values):
    """Bytes of the dense tensors among ``values`` (sparse ones aside)."""
    return sum(value.numel() * value.element_size() for value in values
               if isinstance(value, torch.Tensor)
               and value.layout == torch.strided)


class OperationCounter(TorchDispatchMode):
    """Counts the aten operations run while it is active, by name; and the
    launches (operations but views, which launch nothing) and the bytes
    they read and write (their dense inputs and outputs, once each)."""

    def __init__(self):
        super().__init__()
        self.counts = Counter()
        self.launches, self.bytes = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        output = func(*args, **(kwargs or {}))
        if not func.is_view:
            self.launches += 1
            self.bytes += moved_bytes(tree_leaves((args, kwargs, output)))
        return output


class CountingCallback:
    """A solver's callback that lets ``warmup`` iterations run, then counts
    the operations of the next ``n_iterations`` ones."""

    def __init__(self, warmup, n_iterations):
        self.warmup, self.n_iterations = warmup, n_iterations
        self.counter, self.calls = OperationCounter(), 0

    def __call__(self):
        if self.calls == self.warmup:
            self.counter.__enter__()
        elif self.calls == self.warmup + self.n_iterations:
            self.counter.__exit__(None, None, None)
        self.calls += 1
        return self.calls <= self.warmup + self.n_iterations


def solver_operations(solver, warmup, n_iterations):
    """The :class:`OperationCounter` of ``n_iterations`` outer iterations
    of a set-up solver, after ``warmup`` ones, run through
    ``solver.run``."""
    callback = CountingCallback(warmup, n_iterations)
    solver.run(callback)
    return callback.counter


def twin_operations(twin, warmup, n_iterations):
    """The same for a hand-written twin (``step()`` per iteration)."""
    for _ in range(warmup):
        twin.step()
    with OperationCounter() as counter:
        for _ in range(n_iterations):
            twin.step()
    return counter


def dataset_objective(benchmark, name, params, device="cpu"):
    """The objective ('auto' derivatives) on dataset ``name`` with
    ``params``."""
    _, problem = load_dataset(benchmark, name, params)
    objective = benchmark.get_benchmark_objective().get_instance(
        device=device)
    objective.set_data(problem)
    return objective


def synthetic_objective(benchmark, n, device="cpu"):
    """The objective ('auto' derivatives) on the synthetic problem of size
    n, kappa = 1e5."""
    return dataset_objective(benchmark, "synthetic", {"n": n, "kappa": 1e5},
                             device)


def oracle_call_operations(objective):
    """{oracle call: (operations of one call of the benchmark's oracles,
    of the hand-written derivatives)} at the problem's start."""
    from benchmark_utils.oracles import Oracles
    from benchmark_utils.testing.handwritten import SyntheticDerivatives
    problem = objective.problem
    implementations = (Oracles(problem, objective.resolved_hvp_mode),
                       SyntheticDerivatives(problem))
    x, y, v = problem.x0, problem.y0, problem.y0.flip(0)
    counts = {}
    for name, call in COUNTED_CALLS.items():
        counts[name] = []
        for implementation in implementations:
            with OperationCounter() as counter:
                call(implementation, x, y, v)
            counts[name].append(sum(counter.counts.values()))
    return counts


class Window(NamedTuple):
    """What the outer iterations of a window ran: the mean operations per
    iteration, the operations by name over the window, the iterations in
    it, and the mean launches and bytes moved per iteration."""
    mean: float
    counts: Counter
    iterations: int
    launches: float
    bytes: float


def operation_counts(benchmark, objective, n_iterations=10, solvers=None,
                     with_twins=True):
    """{row label: :class:`Window`} for every solver of ``benchmark`` (or
    those named in ``solvers``) on the objective's problem and, after them
    (``with_twins``), the hand-written twins. LancBiO has two rows, at m = 1
    and at its largest m (80 by the synthetic problem's schedule)."""
    from benchmark_utils.testing.handwritten import handwritten
    rows = {}

    def add(label, counter, iterations):
        rows[label] = Window(sum(counter.counts.values()) / iterations,
                             counter.counts, iterations,
                             counter.launches / iterations,
                             counter.bytes / iterations)

    twins = []
    for solver_class in benchmark.get_solvers():
        if solvers is not None and solver_class.name not in solvers:
            continue
        instances = default_instances(solver_class)
        for solver in instances:
            set_up(solver, objective)
            if solver_class.name != "LancBiO":
                # AmIGO has two default instances: their full labels.
                add(solver.name if len(instances) == 1 else str(solver),
                    solver_operations(solver, N_WARMUP, n_iterations),
                    n_iterations)
                if with_twins and solver_class.name in ("SubBiO", "SOBA"):
                    twins.append((f"{solver.name}, hand-written",
                                  handwritten(solver), N_WARMUP,
                                  n_iterations))
                continue
            # m = 1 for the first growth_every iterations; the largest m
            # over a window of one full basis, after the warm-up.
            max_dim = solver.schedule[0]
            add("LancBiO (m = 1)",
                solver_operations(solver, N_WARMUP, n_iterations),
                n_iterations)
            warmup = steady_state_warmup(solver)
            add(f"LancBiO (m = {max_dim})",
                solver_operations(solver, warmup, max_dim), max_dim)
            if with_twins:
                twins += [
                    ("LancBiO (m = 1), hand-written", handwritten(solver),
                     N_WARMUP, n_iterations),
                    (f"LancBiO (m = {max_dim}), hand-written",
                     handwritten(solver), warmup, max_dim)]
    for label, twin, warmup, iterations in twins:
        add(label, twin_operations(twin, warmup, iterations), iterations)
    return rows


def launch_bound_sizes(benchmark, family, solvers=None, n_iterations=10,
                       launch_seconds=LAUNCH_SECONDS, bandwidth=BANDWIDTH):
    """{solver row: (launches per iteration at the largest size counted,
    bytes per launch there, n* in float64, n* in float32, share of the
    launches in the time floor at the GPU configs' size)} on ``family``
    (a key of :data:`LAUNCH_BOUND_FAMILIES`), LancBiO at its largest m;
    n* is None where the bytes per launch never reach the balance."""
    name, params, sizes, degree, config_size = LAUNCH_BOUND_FAMILIES[
        family]
    per_size = [operation_counts(
        benchmark, dataset_objective(benchmark, name, params(size)),
        n_iterations, solvers, with_twins=False) for size in sizes]
    balance = launch_seconds * bandwidth
    rows = {}
    for label in per_size[0]:
        if label == "LancBiO (m = 1)":
            continue
        per_launch = [rows_at[label].bytes / rows_at[label].launches
                      for rows_at in per_size]
        # Exact when the mix of operations does not change with n (it does
        # for AID-exact, whose solves take more steps: an estimate there).
        model = np.polynomial.Polynomial.fit(sizes, per_launch,
                                             degree).convert()

        def balanced_size(target):
            roots = (model - target).roots()
            real = [root.real for root in roots
                    if abs(root.imag) < 1e-9 and root.real > 0]
            return min(real) if real else None

        launches = per_size[-1][label].launches
        config_bytes = model(config_size) * launches
        launch_time = launches * launch_seconds
        rows[label] = (
            launches, per_launch[-1], balanced_size(balance),
            balanced_size(2 * balance),
            launch_time / (launch_time + config_bytes / bandwidth))
    return rows


def print_launch_bound(benchmark, solvers, n_iterations, launch_seconds,
                       bandwidth):
    """The launch-bound estimate of every family, as Markdown tables."""
    print(f"Assumed: {launch_seconds * 1e6:g} µs per kernel launch (one per "
          f"aten operation but views), {bandwidth / 1e12:g} TB/s of memory "
          "bandwidth; each operation moves its dense inputs and output "
          "once. Below n*, an outer iteration's launches take longer than "
          "its memory traffic.")
    for family, (*_, sizes, _, config_size) in (
            LAUNCH_BOUND_FAMILIES.items()):
        rows = launch_bound_sizes(benchmark, family, solvers, n_iterations,
                                  launch_seconds, bandwidth)
        print(f"\n{family} (counted at n = "
              f"{', '.join(map(str, sizes))}, float64):\n")
        print(f"| solver | launches per iteration | bytes per launch at n = "
              f"{sizes[-1]} | n*, float64 | n*, float32 | launches' share "
              f"of the time floor at n = {config_size:,} (float64) |")
        print("|---|---|---|---|---|---|")
        for label, row in rows.items():
            print(launch_bound_row(label, row), flush=True)


def launch_bound_row(label, row):
    """A Markdown row of the launch-bound table: the solver (AmIGO with its
    inner solver only), and the values of :func:`launch_bound_sizes`."""
    launches, per_launch, at_64, at_32, share = row
    if label.startswith("AmIGO["):
        label = label.split(",")[0] + "]"
    sizes_at = [f"{size:,.0f}" if size is not None else "-"
                for size in (at_64, at_32)]
    return (f"| {label} | {launches:.0f} | {per_launch:,.0f} | "
            f"{sizes_at[0]} | {sizes_at[1]} | {share:.0%} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200,
                        help="dimension of x and y of the synthetic problem")
    parser.add_argument("--iterations", type=int, default=10,
                        help="outer iterations counted per solver (LancBiO "
                        "at its largest m: one full basis)")
    parser.add_argument("--solvers", nargs="+", default=None,
                        help="only these solvers (names; default: all)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--by-operation", action="store_true",
                        help="also list each row's operations by name")
    parser.add_argument("--launch-bound", action="store_true",
                        help="estimate the sizes under which a GPU's time "
                        "per iteration is set by its launches")
    parser.add_argument("--launch-us", type=float,
                        default=LAUNCH_SECONDS * 1e6,
                        help="assumed cost of one kernel launch (µs)")
    parser.add_argument("--bandwidth-tbs", type=float,
                        default=BANDWIDTH / 1e12,
                        help="assumed memory bandwidth of the GPU (TB/s)")
    args = parser.parse_args()
    benchmark = Benchmark(Path(__file__).resolve().parents[1])
    if args.launch_bound:
        print_launch_bound(benchmark, args.solvers, args.iterations,
                           args.launch_us * 1e-6, args.bandwidth_tbs * 1e12)
        return
    objective = synthetic_objective(benchmark, args.n, args.device)
    rows = operation_counts(benchmark, objective, args.iterations,
                            args.solvers)
    print("Operations per oracle call, synthetic problem: the benchmark's "
          "oracles / the hand-written derivatives.\n")
    print("| " + " | ".join(COUNTED_CALLS) + " |")
    print("|---" * len(COUNTED_CALLS) + "|")
    calls = oracle_call_operations(objective)
    print("| " + " | ".join(f"{mine} / {twin}"
                            for mine, twin in calls.values()) + " |\n")
    soba = rows["SOBA"].mean if "SOBA" in rows else None
    print(f"Synthetic problem (n = {args.n}), full batch: aten operations "
          "per outer iteration (mean over the iterations counted).\n")
    print("| solver | operations per iteration | / SOBA | iterations "
          "counted |")
    print("|---|---|---|---|")
    for label, row in rows.items():
        over_soba = "-" if soba is None else f"{row.mean / soba:.2f}"
        print(f"| {label} | {row.mean:.1f} | {over_soba} | "
              f"{row.iterations} |")
    if args.by_operation:
        for label, (_, counts, iterations, _, _) in rows.items():
            listed = ", ".join(f"{name} {count / iterations:.2f}"
                               for name, count in counts.most_common())
            print(f"\n{label}: {listed}")


if __name__ == "__main__":
    main()
