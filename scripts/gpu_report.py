"""One prepared command for a machine with a GPU: a Markdown report of what
the benchmark needs to know about it.

Sections, in order (each one function of this file, listed in
``SECTIONS``; a new one is a function that returns its Markdown and a line
there):

- the device and the library versions;
- the cost of each oracle on every problem family, in every HVP mode, on
  the device (``scripts/oracle_cost.py``);
- LancBiO, SubBiO and SOBA against their hand-written twins at n = 1,000,
  4,000 and 10,000 of the synthetic problem, in float64 and float32
  (``scripts/handwritten_speed.py``);
- LancBiO's time per outer iteration at n = 10,000 next to its arithmetic
  floor: the products with G that it makes per iteration, times the
  measured time of one product;
- every solver's time per outer iteration on ``hyperclean_mnist5k``, next
  to its launches and bytes per iteration and the two floors they give
  under the assumptions of ``scripts/operation_count.py --launch-bound``,
  and its memory (state and peak);
- a 60-second run of four solvers of ``configs/paper_synthetic.yml``
  (``benchopt run``, one repetition), with each curve's last point and
  its memory (the state it keeps and its peak).

The report is written section by section, so a run cut short keeps what it
measured; a section that fails writes its error and the command exits
with status 1 at the end. On a GPU it is sized to take under 8 minutes
(the benchopt run 4 of them; not yet timed on one). ``--device cpu
--quick`` runs the same steps at small sizes on the CPU in well under a
minute (``tests/test_gpu_report.py``), so that it is known to work before
a GPU is there.

Usage (from the benchmark folder):
    python scripts/gpu_report.py [--device cuda|cpu] [--quick]
        [--output docs/gpu.md]
"""
import argparse
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from benchopt.benchmark import Benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handwritten_speed import (SOLVERS, agreement,  # noqa: E402
                               compare)
from operation_count import (BANDWIDTH, LAUNCH_SECONDS,  # noqa: E402
                             OperationCounter)
from oracle_cost import (ALL_MODES, DataProductCounter,  # noqa: E402
                         data_shapes, ijcnn1_shaped_problem, load_dataset)
from solver_overhead import (default_instances, set_up,  # noqa: E402
                             steady_state_warmup)
from sparse_hvp import news20_shaped_problem  # noqa: E402

from benchmark_utils.oracle_cost import wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Bytes in a MiB.
MIB = 2 ** 20
#: The four solvers of the paper_synthetic run.
PAPER_RUN_SOLVERS = ("LancBiO", "SubBiO", "SOBA", "stocBiO")


@dataclass
class Sizes:
    """What each section measures: the full report's sizes, or
    ``--quick``'s."""
    oracle_samples: int
    oracle_sample_seconds: float
    synthetic_n: tuple
    hyperclean: dict
    ijcnn1_train: int
    news20_documents: int
    rounds: int
    iterations: int
    warmup: object   # None: each solver's steady state
    timed_blocks: int
    counted: int
    paper_run: list = field(default_factory=list)


FULL = Sizes(
    oracle_samples=15, oracle_sample_seconds=2e-3,
    synthetic_n=(1_000, 4_000, 10_000), hyperclean={}, ijcnn1_train=49_990,
    news20_documents=8_000, rounds=5, iterations=40, warmup=None,
    timed_blocks=3, counted=2,
    paper_run=["--timeout", "60", "--n-repetitions", "1"])
QUICK = Sizes(
    oracle_samples=1, oracle_sample_seconds=1e-6, synthetic_n=(100, 200),
    hyperclean={"n_train": 100, "n_val": 50, "n_test": 50},
    ijcnn1_train=2_000, news20_documents=200, rounds=1, iterations=1,
    warmup=1, timed_blocks=1, counted=1,
    paper_run=["--timeout", "1", "--n-repetitions", "1", "--max-runs", "3",
               "-d", "synthetic[n=100,kappa=100000.0]"])


class Report:
    """What the sections share: the benchmark, the device, the sizes, and
    the problems built so far (a synthetic problem of n = 10,000 takes a
    while to draw)."""

    def __init__(self, device, sizes):
        self.benchmark = Benchmark(ROOT)
        self.device, self.sizes = torch.device(device), sizes
        self._problems = {}

    def problem(self, name, params):
        key = (name, tuple(sorted(params.items())))
        if key not in self._problems:
            self._problems[key] = load_dataset(self.benchmark, name, params)
        return self._problems[key]

    def objective(self, problem, **params):
        objective = self.benchmark.get_benchmark_objective().get_instance(
            device=self.device.type, **params)
        objective.set_data(problem)
        return objective

    def solver(self, name, objective, **params):
        solver_class = next(s for s in self.benchmark.get_solvers()
                            if s.name == name)
        return set_up(solver_class.get_instance(**params), objective)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |"
                              for row in rows]) + "\n"


def environment(report):
    """The device and the library versions."""
    rows = [("Python", platform.python_version()),
            ("platform", platform.platform()),
            ("CPU cores", str(os.cpu_count())),
            ("torch threads", str(torch.get_num_threads()))]
    rows += [(package, importlib.metadata.version(package))
             for package in ("torch", "numpy", "benchopt")]
    if report.device.type == "cuda":
        properties = torch.cuda.get_device_properties(report.device)
        rows += [("GPU", properties.name),
                 ("GPU memory", f"{properties.total_memory / 2 ** 30:.1f} "
                  "GiB"),
                 ("compute capability",
                  f"{properties.major}.{properties.minor}"),
                 ("CUDA (torch built with)", torch.version.cuda),
                 ("cuDNN", str(torch.backends.cudnn.version()))]
    else:
        rows.append(("device", "CPU (no GPU used)"))
    return table(("what", "version"), rows)


def oracle_problems(report):
    sizes = report.sizes
    quick = bool(sizes.hyperclean)
    yield report.problem("quadratic", {})
    yield report.problem("quadratic_samples", {})
    yield report.problem("synthetic", {"n": 200 if quick else 1000})
    yield report.problem("hyperclean_mnist5k", sizes.hyperclean)
    yield ("regsel, ijcnn1-shaped (random)",
           ijcnn1_shaped_problem(sizes.ijcnn1_train))
    yield (f"regsel, news20-shaped (random, {sizes.news20_documents:,} "
           "documents)", news20_shaped_problem(sizes.news20_documents))


def oracle_costs(report):
    """One gradient's time and the HVP, cross and fused products in
    gradients, in every mode, on the device (``scripts/oracle_cost.py``)."""
    from benchmark_utils.oracle_cost import (measure_oracle_costs,
                                             select_hvp_mode)
    from benchmark_utils.oracles import available_hvp_modes
    rows = []
    for label, problem in oracle_problems(report):
        moved = problem.to(report.device, torch.float64)
        samples = dict(n_samples=report.sizes.oracle_samples,
                       min_sample_time=report.sizes.oracle_sample_seconds)
        costs = {mode: measure_oracle_costs(moved, mode, **samples)
                 for mode in available_hvp_modes(moved)}
        auto, _ = select_hvp_mode(moved, **samples)

        def ratios(key):
            return " / ".join(f"{costs[mode][key]:.2f}" if mode in costs
                              else "-" for mode in ALL_MODES)

        gradients = " / ".join(f"{1e3 * costs[mode]['time_grad']:.3f}"
                               for mode in ("reverse", "closed_form")
                               if mode in costs)
        rows.append((label, gradients, ratios("r_hvp"), ratios("r_cross"),
                     ratios("r_hvp_and_cross"), auto))
    return ("Float64, medians of "
            f"{report.sizes.oracle_samples} samples: the gradient `d_y g` "
            "in ms (reverse / closed form), each other call in gradients "
            "of its mode (reverse / forward / closed form).\n\n" + table(
                ("problem", "gradient (ms)", "HVP", "cross",
                 "fused HVP and cross", "auto keeps"), rows))


def handwritten_twins(report):
    """LancBiO, SubBiO and SOBA against their hand-written twins
    (``scripts/handwritten_speed.py``), in float64 and float32."""
    sizes, rows = report.sizes, []
    for n in sizes.synthetic_n:
        _, problem = report.problem("synthetic", {"n": n, "kappa": 1e5})
        for dtype in ("float64", "float32"):
            objective = report.objective(problem, dtype=dtype)
            for name in SOLVERS:
                solver = report.solver(name, objective)
                difference = agreement(solver, 3)
                warmup = (steady_state_warmup(solver) if sizes.warmup is None
                          else sizes.warmup)
                mine, twin, ratio = compare(solver, warmup,
                                            sizes.iterations, sizes.rounds)
                rows.append((name, f"{n:,}", dtype, warmup, f"{mine:.3f}",
                             f"{twin:.3f}", f"{ratio:.2f}",
                             f"{difference:.1e}"))
    return (f"Synthetic problem, kappa = 1e5; medians of {sizes.rounds} "
            f"rounds of {sizes.iterations} iterations, the two taking "
            "turns.\n\n" + table(
                ("solver", "n", "dtype", "warm-up", "benchmark (ms)",
                 "hand-written (ms)", "ratio", "agree to (after 3)"), rows))


class TimedIterations:
    """A callback: ``warmup`` untimed iterations, then ``blocks`` blocks of
    ``iterations`` timed ones; ``seconds`` per iteration of each block."""

    def __init__(self, device, warmup, iterations, blocks):
        self.device, self.warmup = device, warmup
        self.iterations, self.blocks = iterations, blocks
        self.calls, self.seconds = 0, []

    def __call__(self):
        wait_for(self.device)
        now = time.perf_counter()
        timed = self.calls - self.warmup
        self.calls += 1
        if timed > 0 and timed % self.iterations == 0:
            self.seconds.append((now - self.start) / self.iterations)
        if timed >= 0 and timed % self.iterations == 0:
            self.start = time.perf_counter()
        return len(self.seconds) < self.blocks


def time_per_iteration(solver, warmup, iterations, blocks):
    """Median seconds per outer iteration of a set-up solver."""
    callback = TimedIterations(solver.oracles.device, warmup, iterations,
                               blocks)
    solver.run(callback)
    return statistics.median(callback.seconds)


def count_window(solver, warmup, iterations):
    """The :class:`OperationCounter` of ``iterations`` outer iterations
    after ``warmup`` ones, and the products with the problem's data per
    iteration."""
    counter = OperationCounter()
    products = DataProductCounter(data_shapes(solver.oracles.problem))
    calls = [0]

    def callback():
        if calls[0] == warmup:
            counter.__enter__()
            products.__enter__()
        calls[0] += 1
        if calls[0] > warmup + iterations:
            products.__exit__(None, None, None)
            counter.__exit__(None, None, None)
            return False
        return True

    solver.run(callback)
    return counter, products.count / iterations


def memory_window(solver, iterations):
    """The solver's memory columns (``benchmark_utils.memory``) over its
    first ``iterations`` outer iterations: measured at the start, as
    benchopt's first evaluation does, and at the end."""
    calls, memory = [0], {}

    def callback():
        if calls[0] in (0, iterations):
            memory.update(solver.get_result()["memory"])
        calls[0] += 1
        return calls[0] <= iterations

    solver.run(callback)
    return memory


def lancbio_floor(report):
    """LancBiO's time per outer iteration at the largest n next to the time
    of the products with G it makes, one product timed alone."""
    sizes, rows = report.sizes, []
    n = sizes.synthetic_n[-1]
    _, problem = report.problem("synthetic", {"n": n, "kappa": 1e5})
    for dtype in ("float64", "float32"):
        objective = report.objective(problem, dtype=dtype)
        solver = report.solver("LancBiO", objective)
        warmup = (steady_state_warmup(solver) if sizes.warmup is None
                  else sizes.warmup)
        seconds = time_per_iteration(solver, warmup, sizes.iterations,
                                     sizes.rounds)
        _, products = count_window(solver, warmup, sizes.counted)
        matrix, vector = objective.problem.gram, objective.problem.y0
        n_products = max(10, sizes.iterations)
        matrix @ vector
        wait_for(report.device)
        start = time.perf_counter()
        for _ in range(n_products):
            matrix @ vector
        wait_for(report.device)
        product = (time.perf_counter() - start) / n_products
        rows.append((dtype, f"{1e3 * seconds:.3f}", f"{products:.2f}",
                     f"{1e3 * product:.4f}",
                     f"{1e3 * products * product:.3f}",
                     f"{seconds / (products * product):.2f}"))
    return (f"Synthetic problem, n = {n:,}, kappa = 1e5, LancBiO at its "
            f"steady state (m at its largest); one product `G v` timed "
            f"alone over {max(10, sizes.iterations)} products.\n\n" + table(
                ("dtype", "LancBiO (ms per iteration)",
                 "products with G per iteration", "one product (ms)",
                 "floor: products x one product (ms)", "LancBiO / floor"),
                rows))


def hyperclean_solvers(report):
    """Every solver's time per outer iteration on hyperclean_mnist5k, next
    to the floors its launches and its memory traffic give."""
    sizes, rows = report.sizes, []
    label, problem = report.problem("hyperclean_mnist5k", sizes.hyperclean)
    objective = report.objective(problem)
    for solver_class in sorted(report.benchmark.get_solvers(),
                               key=lambda s: s.name.lower()):
        for instance in default_instances(solver_class):
            solver = set_up(instance, objective)
            warmup = (steady_state_warmup(solver) if sizes.warmup is None
                      else sizes.warmup)
            seconds = time_per_iteration(solver, warmup, sizes.iterations,
                                         sizes.timed_blocks)
            counter, _ = count_window(solver, warmup, sizes.counted)
            launches, moved = (counter.launches / sizes.counted,
                               counter.bytes / sizes.counted)
            memory = memory_window(solver, warmup + sizes.counted)
            name = solver_class.name + (
                f"[{instance.inner_solver}]"
                if hasattr(instance, "inner_solver") else "")
            rows.append((name, f"{1e3 * seconds:.3f}", f"{launches:.0f}",
                         f"{1e3 * launches * LAUNCH_SECONDS:.3f}",
                         f"{1e3 * moved / BANDWIDTH:.4f}",
                         f"{memory['memory_state_bytes'] / MIB:.3g}",
                         f"{memory['memory_peak_bytes'] / MIB:.3g}"))
    return (f"`{label}`, float64, each solver at its defaults after its "
            f"warm-up; median of {sizes.timed_blocks} blocks of "
            f"{sizes.iterations} iterations. The floors assume "
            f"{LAUNCH_SECONDS * 1e6:g} µs per launch and "
            f"{BANDWIDTH / 1e12:g} TB/s (`scripts/operation_count.py "
            "--launch-bound`): a time near the launch floor and far above "
            "the memory floor is launch-bound. The memory: the state the "
            "solver keeps and its peak over its warm-up and the counted "
            "iterations (docs/metrics_and_timing.md, \"Memory\"; on CUDA "
            "the allocator's peak).\n\n" + table(
                ("solver", "ms per iteration", "launches per iteration",
                 "launch floor (ms)", "memory floor (ms)", "state (MiB)",
                 "peak memory (MiB)"), rows))


def paper_synthetic_run(report):
    """Four solvers of configs/paper_synthetic.yml for 60 seconds each."""
    output = f"gpu_report_paper_synthetic_{report.device.type}"
    command = [sys.executable, "-m", "benchopt", "run", str(ROOT),
               "--config", str(ROOT / "configs" / "paper_synthetic.yml"),
               *(option for name in PAPER_RUN_SOLVERS
                 for option in ("-s", name)),
               "-o", f"*[device={report.device.type}]",
               *report.sizes.paper_run, "--output", output, "--no-plot"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True,
                               text=True)
    if completed.returncode != 0:
        raise RuntimeError("benchopt run failed:\n"
                           + completed.stdout[-2000:]
                           + completed.stderr[-2000:])
    results = pd.read_parquet(ROOT / "outputs" / f"{output}.parquet")
    rows = []
    for solver_name, curve in results.groupby("solver_name", sort=True):
        last = curve.sort_values("stop_val").iloc[-1]
        peak = curve["objective_memory_peak_bytes"].max()
        rows.append((solver_name.split("[")[0], curve["dataset_name"].iloc[0],
                     f"{last['time']:.1f}", int(last["objective_n_outer"]),
                     f"{last['objective_n_hvp']:.0f}",
                     f"{last['objective_value']:.6g}",
                     f"{last['objective_hypergrad_norm']:.3g}",
                     f"{last['objective_memory_state_bytes'] / MIB:.3g}",
                     f"{peak / MIB:.3g}"))
    shown = " ".join(command[2:]).replace(str(ROOT), ".")
    return (f"`{shown}`; each curve's last point, its state and its peak "
            "memory (on CUDA the allocator's peak since the curve started: "
            "docs/metrics_and_timing.md, \"Memory\").\n\n" + table(
                ("solver", "dataset", "solver time (s)", "outer iterations",
                 "HVPs", "value", "hypergradient norm", "state (MiB)",
                 "peak memory (MiB)"), rows))


#: The report's sections: (title, function of the Report returning its
#: Markdown).
SECTIONS = [
    ("Device and libraries", environment),
    ("Oracle costs", oracle_costs),
    ("Solvers against their hand-written twins", handwritten_twins),
    ("LancBiO against its arithmetic floor", lancbio_floor),
    ("Time per iteration on hyper-cleaning", hyperclean_solvers),
    ("A 60-second run of configs/paper_synthetic.yml", paper_synthetic_run),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and short runs: checks the steps")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "outputs" / "gpu_report.md")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a GPU; on a machine without one, "
                     "--device cpu --quick checks the steps.")
    report = Report(args.device, QUICK if args.quick else FULL)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    failed = []
    started = time.perf_counter()
    with args.output.open("w") as out:
        out.write(f"# The benchmark on {args.device}"
                  f"{' (quick)' if args.quick else ''}\n\n"
                  "Written by `python scripts/gpu_report.py "
                  f"{' '.join(argv if argv is not None else sys.argv[1:])}`"
                  ".\n")
        for title, section in SECTIONS:
            section_start = time.perf_counter()
            try:
                text = section(report)
            except Exception:
                failed.append(title)
                text = "Failed:\n\n```\n" + traceback.format_exc() + "```\n"
            seconds = time.perf_counter() - section_start
            out.write(f"\n## {title}\n\n{text}\n({seconds:.0f} s)\n")
            out.flush()
            print(f"{title}: {seconds:.0f} s", flush=True)
        out.write(f"\nTotal: {time.perf_counter() - started:.0f} s.\n")
    print(f"wrote {args.output}")
    if failed:
        print(f"failed sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
