"""Evaluation cost: seconds per evaluation of the metrics along a curve,
computed in three ways side by side.

A solver runs N outer iterations (default LancBiO, 1,000, full batch) and
its (x, y, v) is kept at benchopt's evaluation points (iterations 0, 1, 2,
3, 4, 6, 9, ...: each 1.5 times the last). Three references then evaluate
the same points, interleaved point by point, each with its own warm
starts, as an objective would along the curve:

- ``fixed``: y* and v* solved to a relative tolerance of 1e-12
  (``rtol=None``), each HVP of a solve from scratch, plain conjugate
  gradient: how the metrics were first computed;
- ``certified``: the solves stop once each metric's error bound is below
  1e-6 of the metric, and what a solve's HVPs share is computed once
  (``Oracles.hessian_at``); plain conjugate gradient;
- ``preconditioned`` (the objective's reference): ``certified`` with the
  problem's ``hessian_preconditioner`` in every conjugate-gradient solve.

The script prints, for each, the median seconds per evaluation after the
first and the HVPs spent, their ratios to ``fixed``, and the largest
relative difference of each metric from ``fixed``.

Usage (from the benchmark folder):
    python scripts/evaluation_cost.py [--dataset hyperclean_mnist5k]
        [--dataset-param NAME=VALUE ...] [--solver LancBiO]
        [--n-outer 1000] [--device cpu]
"""
import argparse
import statistics
import time
from pathlib import Path

import torch
from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

ROOT = Path(__file__).resolve().parents[1]
#: benchopt's spacing of the evaluation points of a callback solver.
RHO = 1.5
METRICS = ("value", "hypergrad_norm", "hypergrad_norm_at_y", "inner_gap",
           "linsys_residual")


def evaluation_points(n_outer):
    points, k = [], 0
    while k <= n_outer:
        points.append(k)
        k = max(k + 1, int(RHO * k))
    return points


def solver_iterates(benchmark, problem, solver_name, n_outer, device):
    """(k, x, y, v) of the solver at benchopt's evaluation points."""
    objective = benchmark.get_benchmark_objective().get_instance(
        device=device, hvp_mode="closed_form", second_order_metrics=False)
    objective.set_data(problem)
    solver_class = next(s for s in benchmark.get_solvers()
                        if s.name == solver_name)
    solver = solver_class.get_instance()
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    wanted, iterates, calls = set(evaluation_points(n_outer)), [], iter(
        range(n_outer + 1))

    def callback():
        k = next(calls)
        if k in wanted:
            result = solver.get_result()
            iterates.append((k, result["x"].clone(), result["y"].clone(),
                             None if result["v"] is None
                             else result["v"].clone()))
        return k < n_outer

    solver.run(callback)
    return objective, iterates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="hyperclean_mnist5k")
    parser.add_argument("--dataset-param", action="append", default=[],
                        help="dataset parameter NAME=VALUE (repeatable)")
    parser.add_argument("--solver", default="LancBiO")
    parser.add_argument("--n-outer", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    benchmark = Benchmark(ROOT)
    from benchmark_utils.metrics import ReferenceMetrics

    dataset_class = next(d for d in benchmark.get_datasets()
                         if d.name == args.dataset)
    params = {}
    for item in args.dataset_param:
        name, value = item.split("=")
        params[name] = float(value) if "." in value else int(value)
    dataset = dataset_class.get_instance(**params)
    RunContext().set_run_context(None, dataset, None, repetition=0,
                                 base_seed=0)
    problem = dataset.get_data()["problem"]
    objective, iterates = solver_iterates(benchmark, problem, args.solver,
                                          args.n_outer, args.device)
    fixed = ReferenceMetrics(objective.problem, rtol=None)
    # Each HVP from scratch, as the fixed-tolerance solves computed them.
    fixed.oracles.hessian_at = lambda x, y: (
        lambda u: fixed.oracles.hvp(x, y, u))
    certified = ReferenceMetrics(objective.problem)
    for reference in (fixed, certified):
        reference.problem.hessian_preconditioner = lambda x, y: None
    references = {"fixed": fixed, "certified": certified,
                  "preconditioned": ReferenceMetrics(objective.problem)}
    seconds = {name: [] for name in references}
    hvps = {name: 0 for name in references}
    results = {name: [] for name in references}
    for k, x, y, v in iterates:
        for name, reference in references.items():
            reference.oracles.reset()
            if objective.problem.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            results[name].append(reference.evaluate(x, y, v))
            if objective.problem.device.type == "cuda":
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - start)
            if k > 0:
                hvps[name] += reference.oracles.n_hvp
    print(f"{dataset} | {args.solver}, {args.n_outer} outer iterations | "
          f"{len(iterates)} evaluations | {args.device}")
    medians = {name: statistics.median(seconds[name][1:])
               for name in references}
    for name in references:
        print(f"{name:15s} median {medians[name]:.3f} s per evaluation "
              f"after the first (first {seconds[name][0]:.2f} s), "
              f"{hvps[name]:.0f} HVPs after the first; fixed / {name}: "
              f"{medians['fixed'] / medians[name]:.1f}x in median time, "
              f"{hvps['fixed'] / max(hvps[name], 1):.1f}x in HVPs")
    for name in ("certified", "preconditioned"):
        print(f"largest relative difference from fixed, {name}:")
        for metric in METRICS:
            differences = [abs(c[metric] - f[metric]) / abs(f[metric])
                           for f, c in zip(results["fixed"], results[name])
                           if f[metric] == f[metric] and f[metric] != 0]
            if differences:
                print(f"  {metric:20s} {max(differences):.1e}")

if __name__ == "__main__":
    main()
