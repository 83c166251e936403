"""Reference classifiers of a hyper-cleaning problem, to read its results.

Prints the test accuracy of the lower-level classifier y*(x) trained with
  - all sample weights equal (x = 0: what a bilevel method starts from),
  - only the clean samples (sigma(x_i) = 1 on clean, ~0 on corrupted
    samples: what a perfect cleaning would reach).

Usage (from the benchmark folder):
    python scripts/hypercleaning_reference_classifiers.py \
        hyperclean_mnist5k corruption_rate=0.5
"""
import sys

import torch
from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

#: sigma(20) = 1 - 2e-9: the weight of a kept sample; -20 drops one.
KEEP = 20.0


def main(dataset_name, **params):
    benchmark = Benchmark(".")
    dataset_class = next(d for d in benchmark.get_datasets()
                         if d.name == dataset_name)
    dataset = dataset_class.get_instance(**params)
    objective = benchmark.get_benchmark_objective().get_instance(
        device="cpu")
    RunContext().set_run_context(objective, dataset, "reference",
                                 repetition=0, base_seed=0)
    problem = dataset.get_data()["problem"]
    objective.set_data(problem)
    reference = objective.reference
    weights = {
        "equal weights (x = 0)": torch.zeros_like(problem.x0),
        "clean samples only": KEEP * (1 - 2 * problem.corrupted.double()),
    }
    print(f"{dataset} (seed 0)")
    for label, x in weights.items():
        y_star = reference.inner_solution(x)
        metrics = problem.test_metrics(x, y_star)
        print(f"  {label:<24} test accuracy {metrics['test_accuracy']:.4f}"
              f"  test loss {metrics['test_loss']:.4f}")


if __name__ == "__main__":
    name, *assignments = sys.argv[1:]
    main(name, **{key: float(value) for key, value in (
        item.split("=") for item in assignments)})
