"""Cost of each oracle, in gradients, for every problem and every HVP mode.

For each problem: the median time of one gradient d_y g (by reverse-mode
automatic differentiation and by the problem's closed form), and of one
HVP, one cross product and one fused HVP-and-cross in each mode that serves
it (reverse-over-reverse, forward-over-reverse, and the problem's closed
form where it has one), as ratios to that mode's gradient; then the mode
that the
objective's ``hvp_mode='auto'`` picks. On the CPU, and on CUDA too when
there is one. The LIBSVM problems are measured on random data of their
shape (the real files need a download): ijcnn1's 49,990 x 22 dense
training set, and 8,000 news20-shaped documents (62,061 features, 0.1%
non-zeros, 20 classes).

``--products`` prints instead, per problem and mode, how many matrix
products with the problem's data (its matrices of two or more dimensions:
G, H and B, the features...) one call of each oracle makes: the arithmetic
that the fixed cost of a call comes on top of, counted, not timed.

Usage (from the benchmark folder):
    python scripts/oracle_cost.py [--products] [--dataset NAME ...]
"""
import argparse
import math
import sys
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sparse_hvp import news20_shaped_problem  # noqa: E402

N_SAMPLES = 15
ALL_MODES = ("reverse", "forward", "closed_form")
#: The aten matrix products (dense and sparse).
MATRIX_PRODUCTS = {"mm", "mv", "addmm", "addmv", "bmm", "matmul",
                   "_sparse_mm", "_sparse_addmm"}
#: The oracle calls whose products are counted, at (x, y, v).
COUNTED_CALLS = {
    "gradient d_y g": lambda o, x, y, v: o.grad_inner(x, y),
    "gradient of f": lambda o, x, y, v: o.grad_outer(x, y),
    "HVP": lambda o, x, y, v: o.hvp(x, y, v),
    "cross": lambda o, x, y, v: o.cross(x, y, v),
    "fused HVP and cross": lambda o, x, y, v: o.hvp_and_cross(x, y, v),
}


def matrix_shapes(tensor):
    """The shapes of the matrix a data tensor is multiplied as, and of its
    transpose (a tensor of per-sample matrices is multiplied with its
    samples' rows stacked)."""
    rows, columns = math.prod(tensor.shape[:-1]), tensor.shape[-1]
    return {(rows, columns), (columns, rows)}


def data_shapes(problem):
    """The matrix shapes of the problem's data: its tensors of two or more
    dimensions, and the sparse matrices of its sparse features."""
    shapes = set()
    for value in vars(problem).values():
        tensors = [value] if isinstance(value, torch.Tensor) else [
            getattr(value, name) for name in ("matrix", "matrix_t")
            if isinstance(getattr(value, name, None), torch.Tensor)]
        for tensor in tensors:
            if tensor.dim() >= 2:
                shapes |= matrix_shapes(tensor)
    return shapes


class DataProductCounter(TorchDispatchMode):
    """Counts the matrix products with an operand of one of ``shapes``:
    the data itself, one of its views, or a copy that automatic
    differentiation made of it."""

    def __init__(self, shapes):
        super().__init__()
        self.shapes, self.count = shapes, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in MATRIX_PRODUCTS and any(
                isinstance(a, torch.Tensor) and a.dim() == 2
                and tuple(a.shape) in self.shapes for a in args):
            self.count += 1
        return func(*args, **(kwargs or {}))


def products_per_call(problem, mode):
    """{oracle call: products with the data of one full-batch call}."""
    from benchmark_utils.oracles import Oracles
    oracles = Oracles(problem, mode)
    x, y = problem.x0, problem.y0 + 0.1
    v = torch.ones_like(y)
    shapes = data_shapes(problem)
    counts = {}
    for name, call in COUNTED_CALLS.items():
        with DataProductCounter(shapes) as counter:
            call(oracles, x, y, v)
        counts[name] = counter.count
    return counts


def print_products(benchmark, names=None):
    from benchmark_utils.oracles import available_hvp_modes
    print("Matrix products with the data per full-batch call, in the modes "
          "reverse / forward / closed form.\n")
    print("| problem | " + " | ".join(COUNTED_CALLS) + " |")
    print("|---" * (len(COUNTED_CALLS) + 1) + "|")
    for label, problem in problems(benchmark, names):
        by_mode = {mode: products_per_call(problem, mode)
                   for mode in available_hvp_modes(problem)}
        cells = [" / ".join(str(by_mode[mode][name]) if mode in by_mode
                            else "-" for mode in ALL_MODES)
                 for name in COUNTED_CALLS]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def load_dataset(benchmark, name, params):
    dataset = next(d for d in benchmark.get_datasets()
                   if d.name == name).get_instance(**params)
    RunContext().set_run_context("objective", dataset, "solver",
                                 repetition=0, base_seed=0)
    return str(dataset), dataset.get_data()["problem"]


def ijcnn1_shaped_problem(n_train=49_990):
    """``n_train`` training samples (ijcnn1's 49,990 by default) of 22
    dense features, two classes."""
    from benchmark_utils.problems.regsel import build_regsel_problem
    generator = torch.Generator().manual_seed(0)
    n_samples = n_train + 2 * 1_000
    features = torch.rand(n_samples, 22, generator=generator) * 2 - 1
    labels = (features @ torch.randn(22, generator=generator) > 0).double()
    return build_regsel_problem(
        [(features.numpy(), 2 * labels.numpy() - 1, "ijcnn1-shaped")],
        n_train, 1_000, 1_000, seed=0)


#: The datasets measured, at these parameters.
DATASETS = [("quadratic", {}), ("quadratic_samples", {}),
            ("synthetic", {"n": 1000}), ("hyperclean_mnist5k", {}),
            ("hyperclean_mlp_mnist5k", {}), ("distill_mnist5k", {})]


def problems(benchmark, names=None):
    """(label, problem) of every problem family of the benchmark; only the
    datasets ``names`` (of DATASETS) when given."""
    for name, params in DATASETS:
        if names is None or name in names:
            yield load_dataset(benchmark, name, params)
    if names is None:
        yield "regsel, ijcnn1-shaped (random)", ijcnn1_shaped_problem()
        yield ("regsel, news20-shaped (random, 8,000 documents)",
               news20_shaped_problem(8_000))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", action="store_true",
                        help="count the products with the data per call "
                        "instead of timing the calls")
    parser.add_argument("--dataset", nargs="+", default=None,
                        choices=[name for name, _ in DATASETS],
                        help="only these datasets (default: every problem "
                        "family, the LIBSVM-shaped ones included)")
    args = parser.parse_args()
    benchmark = Benchmark(Path(__file__).resolve().parents[1])
    if args.products:
        print_products(benchmark, args.dataset)
        return
    # Imported once the benchmark has registered its benchmark_utils.
    from benchmark_utils.oracle_cost import (measure_oracle_costs,
                                             select_hvp_mode)
    from benchmark_utils.oracles import available_hvp_modes
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print("Gradient d_y g in the modes reverse / closed form (the forward "
          "mode takes the reverse gradient); HVP, cross and fused calls as "
          "ratios to that mode's gradient, in the modes reverse / forward / "
          "closed form (- where a problem has no closed form); float64, "
          f"medians of {N_SAMPLES} samples.\n")
    print("| problem | device | gradient (ms) | HVP | cross | fused HVP and "
          "cross | auto |")
    print("|---|---|---|---|---|---|---|")
    for label, problem in problems(benchmark, args.dataset):
        for device in devices:
            moved = problem.to(device, torch.float64)
            costs = {mode: measure_oracle_costs(moved, mode,
                                                n_samples=N_SAMPLES)
                     for mode in available_hvp_modes(moved)}
            auto, _ = select_hvp_mode(moved, n_samples=N_SAMPLES)

            def ratios(key):
                return " / ".join(f"{costs[mode][key]:.2f}" if mode in costs
                                  else "-" for mode in ALL_MODES)

            gradients = " / ".join(
                f"{1e3 * costs[mode]['time_grad']:.3f}"
                for mode in ("reverse", "closed_form") if mode in costs)
            print(f"| {label} | {device.type} | {gradients} | "
                  f"{ratios('r_hvp')} | {ratios('r_cross')} | "
                  f"{ratios('r_hvp_and_cross')} | {auto} |", flush=True)


if __name__ == "__main__":
    main()
