"""Every solver's memory: the state it keeps from one iteration to the next
and the peak of an iteration (the result columns ``memory_state_bytes`` and
``memory_peak_bytes``, ``benchmark_utils/memory.py``), on the CPU, in
float64, with the closed-form oracles that ``hvp_mode='auto'`` takes.

Full batch on the LancBiO paper's synthetic problem (``synthetic[n=N]``,
x and y of size N) for each ``--n``: every solver at its defaults, and
LancBiO with its basis sized for m = 10, 20 and 40 vectors besides its
default 80. With minibatches on the sample-based quadratic
(``quadratic_samples`` at its defaults: x of size 50, y of 100, 1,000
training and 500 validation samples): every solver that takes a batch size,
at ``--batch-size``. Full batch on hyper-cleaning of the 784-300-10
perceptron (``hyperclean_mlp_mnist5k`` at the split of
``configs/neural.yml``: y of size 238,510, x of 500; reverse-mode HVPs,
the problem has no closed forms), every solver that runs on a lower level
that is not convex. Each curve runs ``--n-outer`` iterations, measured at
every point (its next iteration replayed); byte counts do not depend on
the machine. Sizes are in KiB (1,024 bytes), and in vectors of the size of
y for the synthetic and the perceptron problems.

Usage (from the benchmark folder):
    python scripts/memory_table.py [--n 1000 2000] [--n-outer 3]
        [--batch-size 50]
"""
import argparse
from pathlib import Path

from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

ROOT = Path(__file__).resolve().parents[1]
#: LancBiO's largest subspace dimensions shown besides its default.
LANCBIO_MAX_DIMS = (10, 20, 40)
#: The perceptron hyper-cleaning instance: configs/neural.yml's split.
MLP_HYPERCLEANING = dict(corruption_rate=0.5, n_train=500, n_val=500,
                         n_test=1000)
#: The solvers' curves: label -> parameters (AmIGO has one per linear
#: solver).
CURVES = {"AmIGO[gd]": {"inner_solver": "gd"},
          "AmIGO[cg]": {"inner_solver": "cg"}}
KIB = 1024


def dataset_problem(benchmark, name, **params):
    dataset = next(d for d in benchmark.get_datasets()
                   if d.name == name).get_instance(**params)
    RunContext().set_run_context(None, dataset, None, repetition=0,
                                 base_seed=0)
    return dataset.get_data()["problem"]


def curves(benchmark, minibatch, batch_size):
    """[(label, solver class, parameters)]: every solver (full batch), or
    every solver that takes a batch size (``minibatch``)."""
    found = []
    for solver_class in sorted(benchmark.get_solvers(),
                               key=lambda s: s.name):
        takes_batches = any("batch_size" in key
                            for key in solver_class.parameters)
        if minibatch and not takes_batches:
            continue
        extra = dict(batch_size=batch_size) if minibatch else {}
        labels = {label: params for label, params in CURVES.items()
                  if label.startswith(solver_class.name + "[")} or {
            solver_class.name: {}}
        found += [(label, solver_class, dict(params, **extra))
                  for label, params in labels.items()]
        if solver_class.name == "LancBiO" and not minibatch:
            found += [(f"LancBiO[max_subspace_dim={m}]", solver_class,
                       dict(max_subspace_dim=m)) for m in LANCBIO_MAX_DIMS]
    return found


def memory_of(objective, solver_class, params, n_outer):
    """The memory columns after ``n_outer`` iterations, measured at every
    point; None for a curve that skips the problem (AID-exact has no
    minibatch version)."""
    solver = solver_class.get_instance(**params)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    skip, _ = solver.skip(**objective.get_objective())
    if skip:
        return None
    calls, memory = iter(range(n_outer + 1)), {}

    def callback():
        memory.update(solver.get_result()["memory"])
        return next(calls) < n_outer

    solver.run(callback)
    return memory["memory_state_bytes"], memory["memory_peak_bytes"]


def table(benchmark, problems, minibatch, batch_size, n_outer,
          hvp_mode="closed_form"):
    """{label: [(state, peak) per problem]}."""
    rows = {}
    for problem in problems:
        objective = benchmark.get_benchmark_objective().get_instance(
            device="cpu", hvp_mode=hvp_mode)
        objective.set_data(problem)
        for label, solver_class, params in curves(benchmark, minibatch,
                                                  batch_size):
            rows.setdefault(label, []).append(
                memory_of(objective, solver_class, params, n_outer))
    return {label: sizes for label, sizes in rows.items()
            if None not in sizes}


def print_table(title, columns, rows, vector_bytes=None):
    print(f"\n{title}\n")
    header = ["solver"] + [" ".join(filter(None, (kind, column, "(KiB)")))
                           for column in columns
                           for kind in ("state", "peak")]
    if vector_bytes:
        header += [f"{kind} {columns[-1]} (vectors of y)"
                   for kind in ("state", "peak")]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for label, sizes in rows.items():
        cells = [f"{size / KIB:,.1f}" for pair in sizes for size in pair]
        if vector_bytes:
            cells += [f"{size / vector_bytes:.1f}" for size in sizes[-1]]
        print(f"| {label} | " + " | ".join(cells) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--n-outer", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--no-perceptron", action="store_true",
                        help="leave out the perceptron hyper-cleaning table")
    args = parser.parse_args(argv)
    benchmark = Benchmark(ROOT)
    synthetic = [dataset_problem(benchmark, "synthetic", n=n)
                 for n in args.n]
    print_table("synthetic, full batch",
                [f"n={n}" for n in args.n],
                table(benchmark, synthetic, False, None, args.n_outer),
                vector_bytes=8 * args.n[-1])
    samples = dataset_problem(benchmark, "quadratic_samples")
    print_table(f"quadratic_samples, batch_size={args.batch_size}",
                [""],
                table(benchmark, [samples], True, args.batch_size,
                      args.n_outer))
    if args.no_perceptron:
        return
    perceptron = dataset_problem(benchmark, "hyperclean_mlp_mnist5k",
                                 **MLP_HYPERCLEANING)
    print_table("hyperclean_mlp_mnist5k (784-300-10), full batch", [""],
                table(benchmark, [perceptron], False, None, args.n_outer,
                      hvp_mode="reverse"),
                vector_bytes=8 * perceptron.y0.numel())


if __name__ == "__main__":
    main()
