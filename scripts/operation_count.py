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

Usage (from the benchmark folder):
    python scripts/operation_count.py [--n 200] [--iterations 10]
        [--solvers NAME ...] [--device cpu|cuda] [--by-operation]
"""
import argparse
import sys
from collections import Counter
from pathlib import Path

from benchopt.benchmark import Benchmark
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_cost import COUNTED_CALLS, load_dataset  # noqa: E402
from solver_overhead import (N_WARMUP, default_instances,  # noqa: E402
                             set_up,
                             steady_state_warmup)

class OperationCounter(TorchDispatchMode):
    """Counts the aten operations run while it is active, by name."""

    def __init__(self):
        super().__init__()
        self.counts = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


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
    """Operations by name over ``n_iterations`` outer iterations of a set-up
    solver, after ``warmup`` ones, run through ``solver.run``."""
    callback = CountingCallback(warmup, n_iterations)
    solver.run(callback)
    return callback.counter.counts


def twin_operations(twin, warmup, n_iterations):
    """The same for a hand-written twin (``step()`` per iteration)."""
    for _ in range(warmup):
        twin.step()
    with OperationCounter() as counter:
        for _ in range(n_iterations):
            twin.step()
    return counter.counts


def synthetic_objective(benchmark, n, device="cpu"):
    """The objective ('auto' derivatives) on the synthetic problem of size
    n, kappa = 1e5."""
    _, problem = load_dataset(benchmark, "synthetic", {"n": n, "kappa": 1e5})
    objective = benchmark.get_benchmark_objective().get_instance(
        device=device)
    objective.set_data(problem)
    return objective


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


def operation_counts(benchmark, objective, n_iterations=10, solvers=None):
    """{row label: (mean operations per outer iteration, Counter of the
    operations by name over the window, iterations in the window)} for
    every solver of ``benchmark`` (or those named in ``solvers``) on the
    objective's problem and, after them, the hand-written twins. LancBiO
    has two rows, at m = 1 and at m = 80."""
    from benchmark_utils.testing.handwritten import handwritten
    rows = {}

    def add(label, counts, iterations):
        rows[label] = (sum(counts.values()) / iterations, counts, iterations)

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
                if solver_class.name in ("SubBiO", "SOBA"):
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
            twins += [
                ("LancBiO (m = 1), hand-written", handwritten(solver),
                 N_WARMUP, n_iterations),
                (f"LancBiO (m = {max_dim}), hand-written",
                 handwritten(solver), warmup, max_dim)]
    for label, twin, warmup, iterations in twins:
        add(label, twin_operations(twin, warmup, iterations), iterations)
    return rows


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
    args = parser.parse_args()
    benchmark = Benchmark(Path(__file__).resolve().parents[1])
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
    soba = rows["SOBA"][0] if "SOBA" in rows else None
    print(f"Synthetic problem (n = {args.n}), full batch: aten operations "
          "per outer iteration (mean over the iterations counted).\n")
    print("| solver | operations per iteration | / SOBA | iterations "
          "counted |")
    print("|---|---|---|---|")
    for label, (mean, _, iterations) in rows.items():
        over_soba = "-" if soba is None else f"{mean / soba:.2f}"
        print(f"| {label} | {mean:.1f} | {over_soba} | {iterations} |")
    if args.by_operation:
        for label, (_, counts, iterations) in rows.items():
            listed = ", ".join(f"{name} {count / iterations:.2f}"
                               for name, count in counts.most_common())
            print(f"\n{label}: {listed}")


if __name__ == "__main__":
    main()
