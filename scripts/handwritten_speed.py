"""The benchmark's LancBiO, SubBiO and SOBA against hand-written twins.

On the LancBiO paper's synthetic problem (kappa = 1e5, float64), each
solver runs as benchopt runs it (``solver.run(callback)``, the oracles in
the mode 'auto' keeps: the problem's closed forms) next to the same method
written by hand in plain tensor operations
(``benchmark_utils/testing/handwritten.py``: the derivatives written out,
one product with G per gradient of g and per HVP, LancBiO's basis
allocated once). Both start from the same point with the same steps.

The two take turns in one process: the solver's callback lets the warm-up
iterations pass untimed, then runs the hand-written twin for as many
iterations (untimed), so both are at the same state; then, ``--rounds``
times, it times ``--iterations`` iterations of the solver and, inside the
callback, as many of the twin. The warm-up (default) is the solver's
steady state (``steady_state_warmup`` in ``solver_overhead.py``): for
LancBiO, until its subspace dimension m has reached its maximum by the
problem's ``subspace_schedule`` (80, x1.1 every 20 iterations) and its
basis has filled once at m = 80; 2 iterations for SubBiO and SOBA. The
device is synchronised before each timing point.

The table gives, per solver and n, the median over rounds of the
milliseconds per iteration of each, and the median over rounds of their
ratio (benchmark / hand-written; target: at most 1.1). "Agree to" is the
largest relative difference of x, y and v between the two after
``CHECK_ITERATIONS`` iterations from the start: the twin computes what the
solver computes. (Only a few: on this problem the first iterations
multiply a round-off difference by 10 to 40 per iteration, measured at
n = 50 and 1,000, through the x-step on c1 cos(x^T D1 y), whose argument
is of order 100 at the start; two runs that only sum in a different order
part in the same way.)

Usage (from the benchmark folder):
    python scripts/handwritten_speed.py [--n 1000 2000] [--device cpu|cuda]
        [--rounds 5] [--iterations 40] [--warmup N]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from benchopt.benchmark import Benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_cost import load_dataset  # noqa: E402
from solver_overhead import set_up, steady_state_warmup  # noqa: E402

from benchmark_utils.oracle_cost import wait_for  # noqa: E402

SOLVERS = ("LancBiO", "SubBiO", "SOBA")
KAPPA = 1e5
#: Iterations from the start after which the iterates are compared.
CHECK_ITERATIONS = 3


class Interleaved:
    """The solver's callback, which times it and other implementations of
    the same method in turns.

    ``others`` maps names to implementations with a ``run(n_iterations)``
    method. The solver's first ``warmup`` iterations are untimed, and so
    are the others' (run at once after them); then ``rounds`` times:
    ``iterations`` timed iterations of the solver, and, inside the
    callback (outside the solver's clock), ``iterations`` timed iterations
    of each other. ``times[name]`` holds the seconds per iteration of each
    round, the solver's under 'benchmark'."""

    def __init__(self, others, device, warmup, iterations, rounds):
        self.others, self.device = others, device
        self.warmup, self.iterations, self.rounds = warmup, iterations, rounds
        self.calls = 0
        self.times = {name: [] for name in ("benchmark", *others)}

    def time_other(self, other):
        wait_for(self.device)
        start = time.perf_counter()
        other.run(self.iterations)
        wait_for(self.device)
        return (time.perf_counter() - start) / self.iterations

    def __call__(self):
        wait_for(self.device)
        now = time.perf_counter()
        timed = self.calls - self.warmup
        self.calls += 1
        if timed == 0:
            for other in self.others.values():
                other.run(self.warmup)
        elif timed > 0 and timed % self.iterations == 0:
            self.times["benchmark"].append(
                (now - self.start) / self.iterations)
            for name, other in self.others.items():
                self.times[name].append(self.time_other(other))
        if timed >= 0 and timed % self.iterations == 0:
            wait_for(self.device)
            self.start = time.perf_counter()
        return len(self.times["benchmark"]) < self.rounds


class IterationBudget:
    """A callback that lets ``n_iterations`` iterations run."""

    def __init__(self, n_iterations):
        self.left = n_iterations + 1

    def __call__(self):
        self.left -= 1
        return self.left > 0


def agreement(solver, n_iterations):
    """Largest relative difference of x, y and v between ``solver`` and its
    hand-written twin after ``n_iterations`` iterations from the start."""
    from benchmark_utils.testing.handwritten import handwritten
    twin = handwritten(solver)
    solver.run(IterationBudget(n_iterations))
    twin.run(n_iterations)
    result = solver.get_result()
    return max(float(torch.linalg.vector_norm(getattr(twin, key)
                                              - result[key])
                     / torch.linalg.vector_norm(result[key]))
               for key in ("x", "y", "v"))


def compare(solver, warmup, iterations, rounds):
    """(solver ms, twin ms, ratio) per iteration: medians over rounds."""
    from benchmark_utils.testing.handwritten import handwritten
    callback = Interleaved({"twin": handwritten(solver)},
                           solver.oracles.device, warmup, iterations, rounds)
    solver.run(callback)
    times = callback.times
    ratios = [mine / twin for mine, twin in zip(times["benchmark"],
                                                times["twin"])]
    return (1e3 * statistics.median(times["benchmark"]),
            1e3 * statistics.median(times["twin"]),
            statistics.median(ratios))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 2000],
                        help="dimensions of x and y")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed turns of each implementation")
    parser.add_argument("--iterations", type=int, default=40,
                        help="outer iterations per turn")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed iterations before the first turn "
                        "(default: the solver's steady state)")
    args = parser.parse_args()
    benchmark = Benchmark(Path(__file__).resolve().parents[1])
    objective_class = benchmark.get_benchmark_objective()
    solver_classes = {s.name: s for s in benchmark.get_solvers()}
    print(f"Synthetic problem, kappa = {KAPPA:g}, float64, "
          f"{args.device}; medians of {args.rounds} rounds of "
          f"{args.iterations} iterations.\n")
    print("| solver | n | warm-up | benchmark (ms) | hand-written (ms) | "
          f"ratio | agree to (after {CHECK_ITERATIONS}) |")
    print("|---|---|---|---|---|---|---|")
    for n in args.n:
        _, problem = load_dataset(benchmark, "synthetic",
                                  {"n": n, "kappa": KAPPA})
        objective = objective_class.get_instance(device=args.device)
        objective.set_data(problem)
        for name in SOLVERS:
            solver = set_up(solver_classes[name].get_instance(), objective)
            difference = agreement(solver, CHECK_ITERATIONS)
            warmup = (steady_state_warmup(solver) if args.warmup is None
                      else args.warmup)
            mine, twin, ratio = compare(solver, warmup, args.iterations,
                                        args.rounds)
            print(f"| {name} | {n} | {warmup} | {mine:.3f} | {twin:.3f} | "
                  f"{ratio:.2f} | {difference:.1e} |", flush=True)


if __name__ == "__main__":
    main()
