"""Long runs at the defaults on hyper-cleaning: a solver keeps the classifier
it has learnt. Over 2,000 outer iterations on the offline MNIST digits, the
final test accuracy of the solver's own (x, y) is within 0.01 of the best
along the run, and the sample weights stay bounded (max |x| < 20).

The split has 500 training samples (a quarter of the dataset's default,
for time) and 1,000 validation samples: with fewer, the 500 sample weights
start to fit the validation set itself and test accuracy drifts down by
about 0.015 however stable the solver. LancBiO with the synthetic
problem's schedule and no safeguard collapses on this split as on the
default one (scripts/long_run_stability.py)."""
import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import get_dataset_class, get_solver_class, make_objective

#: Every check of this file is a long one (README: `--long`).
pytestmark = pytest.mark.long

N_OUTER = 2000
#: Test accuracy is read every CHECK_EVERY outer iterations.
CHECK_EVERY = 100


def mnist5k_problem(corruption_rate, **split):
    dataset = get_dataset_class("hyperclean_mnist5k").get_instance(
        corruption_rate=corruption_rate, **split)
    RunContext().set_run_context(None, dataset, None, repetition=0,
                                 base_seed=0)
    return dataset.get_data()["problem"]


def long_run(problem, name, **params):
    """(test accuracies every CHECK_EVERY iterations, largest max |x| seen)
    of N_OUTER iterations of solver ``name``."""
    objective = make_objective(problem, hvp_mode="closed_form")
    solver = get_solver_class(name).get_instance(**params)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    accuracies, largest_x, calls = [], 0.0, iter(range(N_OUTER + 1))

    def callback():
        nonlocal largest_x
        k = next(calls)
        if k % CHECK_EVERY == 0:
            largest_x = max(largest_x, float(solver.x.abs().max()))
            with torch.no_grad():
                accuracies.append(problem.test_metrics(
                    solver.x, solver.y)["test_accuracy"])
        return k < N_OUTER

    solver.run(callback)
    return accuracies, largest_x


SPLIT = dict(n_train=500, n_val=1000, n_test=1000)


@pytest.mark.parametrize("corruption_rate", [0.5, 0.8])
def test_default_lancbio_keeps_its_classifier(corruption_rate):
    accuracies, largest_x = long_run(
        mnist5k_problem(corruption_rate, **SPLIT), "LancBiO")
    assert accuracies[-1] >= max(accuracies) - 0.01, accuracies
    assert largest_x < 20
    # It learnt something: the start (W = 0) is at chance, 0.1; stable runs
    # reach about 0.86 at corruption 0.5 and 0.80 at 0.8.
    assert max(accuracies) > 0.7
