"""The variance-reduced methods (SABA, SRBA, MA-SOBA, MRBO, VRBO, FSLA,
SUSTAIN): their estimators on their own, the variance-reduction property
(constant steps reach 1e-8 where SOBA's noise stops it), their decrease on
the sample-based quadratic and on the problems with samples, and SABA's
memory check. (Their exact counts in minibatch mode, seeds and batch-size
errors are in test_stochastic_solvers.py, their full-batch rows in the
table of test_solvers.py.)"""
import pytest
import torch
from conftest import (make_objective, run_solver, small_hypercleaning_problem,
                      small_regsel_problem)

from benchmark_utils import allocation
from benchmark_utils.problems.quadratic_samples import SampleQuadraticProblem
from benchmark_utils.variance_reduction import SagaMemory, recursive, storm

VARIANCE_REDUCED = ("SABA", "SRBA", "MA-SOBA", "MRBO", "VRBO", "FSLA",
                    "SUSTAIN")


@pytest.fixture(scope="module")
def problem():
    return SampleQuadraticProblem(dim_x=10, dim_y=20, n_train=200, n_val=100,
                                  kappa=10.0, seed=0)


def hypergrad_ratio(problem, name, n_iter, **params):
    objective = make_objective(problem)
    start = objective.evaluate_result(**objective.get_one_result())
    solver, _, _ = run_solver(name, problem, n_iter, objective=objective,
                              **params)
    end = objective.evaluate_result(**solver.get_result())
    return end["hypergrad_norm"] / start["hypergrad_norm"], end


# -- the estimators ---------------------------------------------------------


def test_saga_memory_corrects_a_batch_by_its_last_value():
    memory = SagaMemory([3, 1], torch.zeros(2))
    # Empty memory: the first value itself, then the weighted mean.
    assert torch.equal(memory.update(0, torch.tensor([4.0, 0.0])),
                       torch.tensor([4.0, 0.0]))
    assert torch.equal(memory.mean, torch.tensor([3.0, 0.0]))
    direction = memory.update(1, torch.tensor([0.0, 8.0]))
    assert torch.equal(direction, torch.tensor([3.0, 8.0]))
    # The mean is the batches' values weighted by their sizes.
    assert torch.equal(memory.mean, torch.tensor([3.0, 2.0]))
    # Batch 0 again: its new value minus its old one, plus the mean.
    direction = memory.update(0, torch.tensor([5.0, 0.0]))
    assert torch.equal(direction, torch.tensor([4.0, 2.0]))
    assert torch.equal(memory.mean, torch.tensor([3.75, 2.0]))


def test_storm_and_sarah():
    new, old, last = (torch.tensor([value]) for value in (5.0, 3.0, 4.0))
    assert torch.equal(storm(new, old, last, 0.5), torch.tensor([5.5]))
    assert torch.equal(storm(new, old, last, 0.0), new)
    assert torch.equal(recursive(new, old, last), torch.tensor([6.0]))


# -- the variance-reduction property ---------------------------------------


@pytest.mark.long
def test_saba_and_srba_reach_1e8_with_constant_steps_where_soba_levels_off(
        problem):
    # Batches of 16 of the 200 samples: their Hessians reach twice the mean
    # one's largest eigenvalue (19.6 against 10), hence steps on y and v
    # below 1 / 20 rather than 'auto' (1 / 10).
    steps = dict(step_size_inner=0.02, step_size_outer=0.1, batch_size=16)
    ratios = {name: hypergrad_ratio(problem, name, 3000, **steps)[0]
              for name in ("SABA", "SRBA", "SOBA")}
    print(f"hypergrad_norm / start after 3,000 iterations: {ratios}")
    assert ratios["SABA"] < 1e-8
    assert ratios["SRBA"] < 1e-8
    assert ratios["SOBA"] > 1e-4


@pytest.fixture(scope="module")
def well_conditioned():
    # kappa = 3: a Neumann series of Q = 15 steps of 0.3 misses
    # 0.7^16 = 3e-3 of v*, so that the truncation bias of MRBO, VRBO and
    # SUSTAIN stays below the 1e-2 that the test asks.
    return SampleQuadraticProblem(dim_x=10, dim_y=20, n_train=200,
                                  n_val=100, kappa=3.0, seed=0)


NEUMANN = dict(n_neumann_steps=15, step_size_inner=0.3, step_size_linsys=0.3)


@pytest.mark.long
@pytest.mark.parametrize("name, params, n_iter", [
    ("MA-SOBA", dict(step_size_inner=0.3, step_size_outer=1.0,
                     decay_inner=0.4, decay_outer=0.6), 1000),
    ("MRBO", dict(NEUMANN, step_size_outer=1.0), 500),
    ("VRBO", dict(NEUMANN, period=10, step_size_outer=0.3), 100),
    ("FSLA", dict(step_size_inner=0.3, step_size_outer=1.0, momentum=0.5),
     3000),
    # BSA's random truncation adds a noise that does not vanish at the
    # solution ((Q + 1) eta times one term of the series): only the
    # decaying steps damp it, which sets the iterations.
    ("SUSTAIN", dict(NEUMANN, step_size_outer=1.0), 1000),
])
def test_momentum_and_recursive_methods_lower_the_hypergradient_100x(
        well_conditioned, name, params, n_iter):
    # Batches of half the training samples, the methods' default schedules
    # (decaying steps and momentum for MRBO, FSLA and SUSTAIN).
    ratio, _ = hypergrad_ratio(well_conditioned, name, n_iter,
                               batch_size=100, **params)
    print(f"{name}: hypergrad_norm / start {ratio:.3g}")
    assert ratio < 1e-2


@pytest.mark.parametrize("name", VARIANCE_REDUCED)
@pytest.mark.parametrize("make_problem", [
    small_hypercleaning_problem, lambda: small_regsel_problem(3),
    lambda: small_regsel_problem(2, dense=True)],
    ids=["hypercleaning", "regsel-multiclass-sparse", "regsel-binary-dense"])
def test_runs_on_the_problems_with_samples(name, make_problem):
    # 40 training and 20 validation samples (hyper-cleaning), 30 and 15
    # (regularization selection): batches of 7 end every epoch short.
    problem = make_problem()
    objective = make_objective(problem, hvp_mode="closed_form")
    start = objective.evaluate_result(**objective.get_one_result())
    solver, _, _ = run_solver(name, problem, 40, objective=objective,
                              batch_size=7, step_size_outer=0.1)
    end = objective.evaluate_result(**solver.get_result())
    assert not end["diverged"]
    assert end["value"] < start["value"]


# -- SABA's memory ---------------------------------------------------------


def test_saba_refuses_a_memory_that_does_not_fit(problem, monkeypatch):
    monkeypatch.setattr(allocation, "available_cpu_memory",
                        lambda: 10_000)
    # 200 / 16 = 13 training and 7 validation batches: 13 (2 x 20 + 10)
    # + 7 (20 + 10) float64 = 7,520 bytes fit in 10,000; batches of 4:
    # 50 (50) + 25 (30) values = 26,000 bytes do not.
    run_solver("SABA", problem, 1, batch_size=16)
    with pytest.raises(MemoryError, match=r"SABA's memory of 50 training "
                       r"and 25 validation batches of 4 samples needs "
                       r"25.4 KiB, more than the 9.8 KiB free on cpu: use "
                       r"a larger batch_size"):
        run_solver("SABA", problem, 1, batch_size=4)
