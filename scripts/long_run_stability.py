"""Long runs of every solver at its defaults: does it keep what it gained?

Each solver runs N outer iterations (full batch) on one problem; at a few
iterations the script prints the test accuracy of the solver's own (x, y),
``max |x|``, the exact value ``phi(x)`` (the validation loss on
hyper-cleaning), the inner gap ``||y - y*(x)||`` and the test accuracy of
``(x, y*(x))`` (what x is worth once the lower level is solved), and, for
LancBiO, the
state of its Lanczos basis: the loss of
orthogonality ``||Q_j^T Q_j - I||`` and the true residual
``||b_k - A_k v_k||`` of its linear-system estimate against the estimate
``||b_k - A_bar v_k||`` that its tridiagonal matrix implies (the residual
of the Galerkin solution for the matrix the basis was built with). These
products are uncounted and untimed.

Usage (from the benchmark folder):
    python scripts/long_run_stability.py [--dataset hyperclean_mnist5k]
        [--corruption-rate 0.5] [--n-outer 2000] [--solver NAME_PART]
        [--skip NAME ...] [--split N_TRAIN N_VAL N_TEST]
        [--at 316 600 900 2000] [--device cpu]
        [--param NAME=VALUE ...] [--dataset-param NAME=VALUE ...]
        [--second-order]

``--second-order`` also prints ``hypergrad_norm`` and
``hypergrad_norm_at_y`` (the hypergradient formula at the solver's own y),
for example on the LancBiO paper's synthetic problem:
    python scripts/long_run_stability.py --dataset synthetic
        --dataset-param n=1000 --second-order --at 2000
"""
import argparse
import time
from pathlib import Path

import torch
from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

ROOT = Path(__file__).resolve().parents[1]


def lanczos_diagnostics(solver, oracles):
    """(||Q^T Q - I||_2, ||b - A v||) of LancBiO's current basis and v."""
    lanczos = solver.linear_system.process
    basis = lanczos.basis[:lanczos.dim]
    gram = basis @ basis.T
    orthogonality = torch.linalg.matrix_norm(
        gram - torch.eye(len(basis), dtype=gram.dtype), ord=2)
    _, b = oracles.grad_outer(solver.x, solver.y)
    residual = torch.linalg.vector_norm(
        b - oracles.hvp(solver.x, solver.y, solver.v))
    return float(orthogonality), float(residual), lanczos.dim


def run(benchmark, problem, solver_class, n_outer, checkpoints, device,
        params, second_order):
    objective = benchmark.get_benchmark_objective().get_instance(
        device=device, hvp_mode="closed_form",
        second_order_metrics=second_order)
    objective.set_data(problem)
    solver = solver_class.get_instance(**params)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    # Uncounted oracles for the diagnostics.
    diagnostics = type(solver.oracles)(objective.problem,
                                       objective.resolved_hvp_mode)
    rows, calls = [], iter(range(n_outer + 1))
    start = time.perf_counter()

    def callback():
        k = next(calls)
        if k in checkpoints:
            metrics = objective.evaluate_result(**solver.get_result())
            # y*(x) was just solved for the metrics: warm, no extra work.
            y_star = objective.reference.inner_solution(
                solver.x.to(torch.float64))
            with torch.no_grad():
                at_y_star = objective.problem.test_metrics(
                    solver.x, y_star.to(solver.x.dtype))
            row = dict(k=k, test_accuracy=metrics.get(
                "test_accuracy", float("nan")),
                max_abs_x=float(solver.x.abs().max()),
                value=metrics["value"], inner_gap=metrics["inner_gap"],
                accuracy_at_y_star=at_y_star.get("test_accuracy",
                                                 float("nan")),
                hypergrad_norm=metrics["hypergrad_norm"],
                hypergrad_norm_at_y=metrics["hypergrad_norm_at_y"])
            if solver.name == "LancBiO" and k > 0:
                row["orthogonality"], row["residual"], row["dim"] = (
                    lanczos_diagnostics(solver, diagnostics))
            rows.append(row)
        return k < n_outer

    solver.run(callback)
    return rows, time.perf_counter() - start


def parse_values(items):
    """{name: value} from NAME=VALUE strings: None, a number or a string."""
    values = {}
    for item in items:
        name, value = item.split("=")
        values[name] = (None if value == "None" else float(value)
                        if "." in value or "e" in value else
                        int(value) if value.isdigit() else value)
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="hyperclean_mnist5k")
    parser.add_argument("--corruption-rate", type=float, default=0.5)
    parser.add_argument("--n-outer", type=int, default=2000)
    parser.add_argument("--split", type=int, nargs=3, default=None,
                        metavar=("N_TRAIN", "N_VAL", "N_TEST"),
                        help="hyperclean_mnist5k's split (default: its own)")
    parser.add_argument("--solver", default="")
    parser.add_argument("--skip", nargs="*", default=[],
                        help="solver names to leave out")
    parser.add_argument("--at", type=int, nargs="*",
                        default=[316, 600, 900, 2000])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--param", action="append", default=[],
                        help="solver parameter NAME=VALUE (repeatable)")
    parser.add_argument("--dataset-param", action="append", default=[],
                        help="dataset parameter NAME=VALUE (repeatable)")
    parser.add_argument("--second-order", action="store_true",
                        help="also print hypergrad_norm and "
                        "hypergrad_norm_at_y")
    args = parser.parse_args()
    benchmark = Benchmark(ROOT)
    dataset_class = next(d for d in benchmark.get_datasets()
                         if d.name == args.dataset)
    dataset_params = {}
    if "corruption_rate" in str(dataset_class.parameters):
        dataset_params["corruption_rate"] = args.corruption_rate
    if args.split is not None:
        dataset_params.update(zip(("n_train", "n_val", "n_test"),
                                  args.split))
    dataset_params.update(parse_values(args.dataset_param))
    dataset = dataset_class.get_instance(**dataset_params)
    RunContext().set_run_context(None, dataset, None, repetition=0,
                                 base_seed=0)
    problem = dataset.get_data()["problem"]
    params = parse_values(args.param)
    checkpoints = set(args.at)
    print(f"{dataset} | {args.n_outer} outer iterations | {params or ''}")
    for solver_class in benchmark.get_solvers():
        if (args.solver.lower() not in solver_class.name.lower()
                or solver_class.name in args.skip):
            continue
        variants = ([{"inner_solver": s} for s in ("gd", "cg")]
                    if solver_class.name == "AmIGO" else [{}])
        for variant in variants:
            rows, seconds = run(benchmark, problem, solver_class,
                                args.n_outer, checkpoints, args.device,
                                {**variant, **params}, args.second_order)
            label = solver_class.name + "".join(
                f"[{v}]" for v in variant.values())
            cells = "  ".join(
                f"k={r['k']}: {r['test_accuracy']:.3f}, {r['max_abs_x']:.3g}"
                f" (phi {r['value']:.4g}, gap {r['inner_gap']:.2g}, at y* "
                f"{r['accuracy_at_y_star']:.3f}"
                + (f", hypergrad {r['hypergrad_norm']:.2g}, at y "
                   f"{r['hypergrad_norm_at_y']:.2g}" if args.second_order
                   else "") + ")"
                + (f" (|QtQ-I| {r['orthogonality']:.1e}, res "
                   f"{r['residual']:.1e}, j={r['dim']})"
                   if "orthogonality" in r else "")
                for r in rows)
            print(f"{label:10s} {seconds:6.0f} s  {cells}", flush=True)


if __name__ == "__main__":
    main()
