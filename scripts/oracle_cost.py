"""Cost of each oracle, in gradients, for every problem and every HVP mode.

For each problem: the median time of one gradient d_y g, and of one HVP,
one cross product and one fused HVP-and-cross in each mode that serves it
(reverse-over-reverse, forward-over-reverse, and the problem's closed form
where it has one), as ratios to the gradient; then the mode that the
objective's ``hvp_mode='auto'`` picks. On the CPU, and on CUDA too when
there is one. The LIBSVM problems are measured on random data of their
shape (the real files need a download): ijcnn1's 49,990 x 22 dense
training set, and 8,000 news20-shaped documents (62,061 features, 0.1%
non-zeros, 20 classes).

Usage (from the benchmark folder):
    python scripts/oracle_cost.py
"""
import sys
from pathlib import Path

import torch
from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sparse_hvp import news20_shaped_problem  # noqa: E402

N_SAMPLES = 15
ALL_MODES = ("reverse", "forward", "closed_form")


def load_dataset(benchmark, name, params):
    dataset = next(d for d in benchmark.get_datasets()
                   if d.name == name).get_instance(**params)
    RunContext().set_run_context("objective", dataset, "solver",
                                 repetition=0, base_seed=0)
    return str(dataset), dataset.get_data()["problem"]


def ijcnn1_shaped_problem():
    """49,990 training samples of 22 dense features, two classes."""
    from benchmark_utils.problems.regsel import build_regsel_problem
    generator = torch.Generator().manual_seed(0)
    n_samples = 49_990 + 2 * 1_000
    features = torch.rand(n_samples, 22, generator=generator) * 2 - 1
    labels = (features @ torch.randn(22, generator=generator) > 0).double()
    return build_regsel_problem(
        [(features.numpy(), 2 * labels.numpy() - 1, "ijcnn1-shaped")],
        49_990, 1_000, 1_000, seed=0)


def problems(benchmark):
    """(label, problem) of every problem family of the benchmark."""
    for name, params in [("quadratic", {}), ("synthetic", {"n": 1000}),
                         ("hyperclean_mnist5k", {})]:
        yield load_dataset(benchmark, name, params)
    yield "regsel, ijcnn1-shaped (random)", ijcnn1_shaped_problem()
    yield ("regsel, news20-shaped (random, 8,000 documents)",
           news20_shaped_problem(8_000))


def main():
    benchmark = Benchmark(Path(__file__).resolve().parents[1])
    # Imported once the benchmark has registered its benchmark_utils.
    from benchmark_utils.oracle_cost import (measure_oracle_costs,
                                             select_hvp_mode)
    from benchmark_utils.oracles import available_hvp_modes
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print("Ratios to one gradient d_y g, in the modes reverse / forward / "
          "closed form (- where a problem has no closed form); float64, "
          f"medians of {N_SAMPLES} samples.\n")
    print("| problem | device | gradient (ms) | HVP | cross | fused HVP and "
          "cross | auto |")
    print("|---|---|---|---|---|---|---|")
    for label, problem in problems(benchmark):
        for device in devices:
            moved = problem.to(device, torch.float64)
            costs = {mode: measure_oracle_costs(moved, mode,
                                                n_samples=N_SAMPLES)
                     for mode in available_hvp_modes(moved)}
            auto, _ = select_hvp_mode(moved, n_samples=N_SAMPLES)

            def ratios(key):
                return " / ".join(f"{costs[mode][key]:.2f}" if mode in costs
                                  else "-" for mode in ALL_MODES)

            print(f"| {label} | {device.type} | "
                  f"{1e3 * costs['reverse']['time_grad']:.3f} | "
                  f"{ratios('r_hvp')} | {ratios('r_cross')} | "
                  f"{ratios('r_hvp_and_cross')} | {auto} |", flush=True)


if __name__ == "__main__":
    main()
