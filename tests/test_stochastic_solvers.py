"""Solvers in minibatch mode (``batch_size``): exact fractional counts,
reproducible draws, convergence with decaying steps on the sample-based
quadratic, and clear errors for a bad batch size or a problem without
samples. Full batch is pinned by tests/reference_curves.json."""
from fractions import Fraction

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import (IterationBudget, get_solver_class, make_objective,
                      run_solver)

from benchmark_utils.problems.quadratic_samples import SampleQuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem

#: (solver, its minibatch parameters, its samples read per iteration as
#: (training samples for gradients of g, validation samples for gradients
#: of f, training samples for HVPs, for cross products), in batches of B).
MINIBATCH_SOLVERS = {
    "SOBA": (dict(decay_inner=0.4, decay_outer=0.6), (1, 1, 1, 1)),
}


@pytest.fixture(scope="module")
def problem():
    return SampleQuadraticProblem(dim_x=10, dim_y=20, n_train=200, n_val=100,
                                  kappa=10.0, seed=0)


def samples_read(n_batches, n_samples, batch_size):
    """Samples in the first ``n_batches`` batches of shuffled epochs over
    ``n_samples``: each epoch ends with a smaller batch when
    ``batch_size`` does not divide ``n_samples``."""
    per_epoch = -(-n_samples // batch_size)
    epochs, rest = divmod(n_batches, per_epoch)
    return epochs * n_samples + rest * batch_size


@pytest.mark.parametrize("name", MINIBATCH_SOLVERS)
def test_counts_are_fractions_of_a_pass(problem, name):
    params, (inner, outer, hvp, cross) = MINIBATCH_SOLVERS[name]
    # 16 divides neither 200 nor 100: 37 iterations cross epochs that end
    # with batches of 8 and 4 samples.
    n_iter, batch_size = 37, 16
    solver, _, _ = run_solver(name, problem, n_iter, batch_size=batch_size,
                              **params)
    n_train, n_val = problem.n_inner_samples, problem.n_outer_samples

    def passes(per_iteration, n_samples):
        return Fraction(samples_read(per_iteration * n_iter, n_samples,
                                     batch_size), n_samples)
    assert solver.get_result()["counts"] == dict(
        n_grad=float(passes(inner, n_train) + passes(outer, n_val)),
        n_hvp=float(passes(hvp, n_train)),
        n_cross=float(passes(cross, n_train)))
    # SOBA: 2 full epochs and 11 batches of training samples, 5 epochs and
    # 2 batches of validation samples.
    if name == "SOBA":
        assert solver.get_result()["counts"] == dict(
            n_grad=(2 * 200 + 11 * 16) / 200 + (5 * 100 + 2 * 16) / 100,
            n_hvp=576 / 200, n_cross=576 / 200)


def curve(name, problem, base_seed, n_iter=20, **params):
    objective = make_objective(problem)
    solver = get_solver_class(name).get_instance(**params)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=base_seed)
    solver.set_objective(**objective.get_objective())
    xs = []
    for _ in range(2):
        callback = IterationBudget(n_iter)
        solver.run(callback)
        xs.append(solver.get_result()["x"].clone())
    return xs


@pytest.mark.parametrize("name", MINIBATCH_SOLVERS)
def test_same_seed_same_draws_another_seed_others(problem, name):
    params = dict(batch_size=16, **MINIBATCH_SOLVERS[name][0])
    first, rerun = curve(name, problem, 0, **params)
    # A second run of the same set-up repeats its draws.
    assert torch.equal(first, rerun)
    assert torch.equal(first, curve(name, problem, 0, **params)[0])
    assert not torch.allclose(first, curve(name, problem, 1, **params)[0])
    # Full batch draws nothing: the seed does not matter.
    assert torch.equal(curve(name, problem, 0, batch_size="full")[0],
                       curve(name, problem, 1, batch_size="full")[0])


def test_stochastic_soba_with_decaying_steps_converges(problem):
    objective = make_objective(problem)
    start = objective.evaluate_result(**objective.get_one_result())
    solver, _, _ = run_solver("SOBA", problem, 1000, objective=objective,
                              batch_size=16, decay_inner=0.4,
                              decay_outer=0.6)
    end = objective.evaluate_result(**solver.get_result())
    assert end["hypergrad_norm"] < start["hypergrad_norm"] / 10
    # 1,000 iterations on batches of 16 of 200 samples (13 per epoch, the
    # last of 8): 76 epochs and 12 batches of HVPs.
    assert end["n_hvp"] == (76 * 200 + 12 * 16) / 200


@pytest.mark.parametrize("name", MINIBATCH_SOLVERS)
@pytest.mark.parametrize("batch_size, samples", [
    (0, "200 training"), (-4, "200 training"), (2.5, "200 training"),
    (201, "200 training"), (True, "200 training"), ("half", "200 training"),
    # One batch size for every stream: the 100 validation samples bound it.
    (150, "100 validation")])
def test_a_bad_batch_size_is_named_with_its_range(problem, name, batch_size,
                                                  samples):
    n = samples.split()[0]
    with pytest.raises(ValueError, match=rf"batch_size must be 'full' or an "
                       rf"integer in \[1, {n}\] \(the {samples} samples of "
                       r"the quadratic-samples problem\)"):
        run_solver(name, problem, 1, batch_size=batch_size)


@pytest.mark.parametrize("name", MINIBATCH_SOLVERS)
def test_minibatches_on_a_problem_without_samples(name):
    synthetic = SyntheticProblem(n=20, kappa=10.0, seed=0)
    with pytest.raises(ValueError, match="batch_size must be 'full' on the "
                       "synthetic problem, which has no samples, got 8"):
        run_solver(name, synthetic, 1, batch_size=8)
