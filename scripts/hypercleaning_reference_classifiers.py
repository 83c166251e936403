"""Reference classifiers of a hyper-cleaning problem, to read its results.

Prints the test accuracy of the lower-level classifier trained with
  - all sample weights equal (x = 0: what a bilevel method starts from),
  - only the clean samples (sigma(x_i) = 1 on clean, ~0 on corrupted
    samples: what a perfect cleaning would reach).
On the linear problem that classifier is y*(x), solved accurately; on the
multilayer perceptron (hyperclean_mlp_*), whose training loss is not
convex, it is the local minimum that L-BFGS reaches from the network's
start y0 (the one every solver starts from) in at most --max-iter
iterations, with whether it met the local solve's tolerance
(benchmark_utils/local_metrics.py).

Usage (from the benchmark folder):
    python scripts/hypercleaning_reference_classifiers.py \
        hyperclean_mnist5k corruption_rate=0.5
    python scripts/hypercleaning_reference_classifiers.py \
        hyperclean_mlp_mnist5k corruption_rate=0.5 n_train=500 n_val=500 \
        n_test=1000 --max-iter 2000
"""
import argparse
import ast

import torch
from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

#: sigma(20) = 1 - 2e-9: the weight of a kept sample; -20 drops one.
KEEP = 20.0


def parse_value(text):
    """A parameter as benchopt reads it: a number, or else a word."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(dataset_name, max_iter, **params):
    benchmark = Benchmark(".")
    from benchmark_utils.local_metrics import LocalReferenceMetrics
    dataset_class = next(d for d in benchmark.get_datasets()
                         if d.name == dataset_name)
    dataset = dataset_class.get_instance(**params)
    objective = benchmark.get_benchmark_objective().get_instance(
        device="cpu", hvp_mode="reverse")
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
        status = ""
        if isinstance(reference, LocalReferenceMetrics):
            classifier, converged = reference.local_solution(
                x, problem.y0, max_iter=max_iter)
            status = ("  (local minimum)" if converged else
                      f"  (L-BFGS stopped at {max_iter} iterations)")
        else:
            classifier = reference.inner_solution(x)
        metrics = problem.test_metrics(x, classifier)
        print(f"  {label:<24} test accuracy {metrics['test_accuracy']:.4f}"
              f"  test loss {metrics['test_loss']:.4f}{status}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", help="a hyper-cleaning dataset's name")
    parser.add_argument("params", nargs="*", metavar="NAME=VALUE",
                        help="the dataset's parameters")
    parser.add_argument("--max-iter", type=int, default=1000,
                        help="L-BFGS iterations of a perceptron's training")
    args = parser.parse_args()
    main(args.dataset, args.max_iter, **{
        key: parse_value(value) for key, value in (
            item.split("=", 1) for item in args.params)})
