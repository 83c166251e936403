"""Solvers in minibatch mode (``batch_size``), every one of them: exact
fractional counts, reproducible draws, convergence on the sample-based
quadratic, and clear errors for a bad batch size or a problem without
samples; AID-exact is skipped. Full batch is pinned by
tests/reference_curves.json."""
from fractions import Fraction

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import (BENCHMARK, IterationBudget, get_solver_class,
                      make_objective, run_solver)

from benchmark_utils.linalg.neumann import draw_truncation
from benchmark_utils.problems.quadratic_samples import SampleQuadraticProblem
from benchmark_utils.sampling import MinibatchStreams
from benchmark_utils.problems.synthetic import SyntheticProblem

#: Every solver with minibatches: its parameters in the tests, and its
#: draws in one outer iteration, in call order, as (stream, oracle,
#: calls on that batch): the streams are the solver's three
#: (``inner``, ``outer``, ``second_order``); the oracles, gradients of g
#: (``grad_g``) and of f (``grad_f``), HVPs, cross products (``cross``,
#: either way) and a fused HVP and cross product (``hvp_cross``, one pass
#: over its batch). TTSA and BSA run with Q = 0, whose truncation draws no
#: HVP.
MINIBATCH_SOLVERS = {
    "SOBA": (dict(decay_inner=0.4, decay_outer=0.6), [
        ("inner", "grad_g", 1), ("outer", "grad_f", 1),
        ("second_order", "hvp_cross", 1)]),
    "TTSA": (dict(n_neumann_steps=0), [
        ("inner", "grad_g", 1), ("outer", "grad_f", 1),
        ("second_order", "cross", 1)]),
    "stocBiO": (dict(n_inner_steps=2, n_neumann_steps=3), [
        ("inner", "grad_g", 1), ("inner", "grad_g", 1),
        ("outer", "grad_f", 1), *[("second_order", "hvp", 1)] * 3,
        ("second_order", "cross", 1)]),
    "BSA": (dict(n_inner_steps=2, n_neumann_steps=0), [
        ("inner", "grad_g", 1), ("inner", "grad_g", 1),
        ("outer", "grad_f", 1), ("second_order", "cross", 1)]),
    "AmIGO-GD": (dict(inner_solver="gd", n_inner_steps=2, n_linsys_steps=3), [
        ("inner", "grad_g", 1), ("inner", "grad_g", 1),
        ("outer", "grad_f", 1), *[("second_order", "hvp", 1)] * 3,
        ("second_order", "cross", 1)]),
    # Conjugate gradient: Q + 1 HVPs on one batch.
    "AmIGO-CG": (dict(inner_solver="cg", n_inner_steps=2, n_linsys_steps=3), [
        ("inner", "grad_g", 1), ("inner", "grad_g", 1),
        ("outer", "grad_f", 1), ("second_order", "hvp", 4),
        ("second_order", "cross", 1)]),
    "F2SA": (dict(n_inner_steps=2), [
        *[("outer", "grad_f", 1), ("inner", "grad_g", 1),
          ("inner", "grad_g", 1)] * 2,
        ("outer", "grad_f", 1), ("inner", "grad_g", 1),
        ("inner", "grad_g", 1)]),
    # The finite differences: two gradients on one batch.
    "HJFBiO": ({}, [
        ("inner", "grad_g", 1), ("outer", "grad_f", 1),
        ("second_order", "grad_g", 2)]),
    # q's two terms on one batch, then the T - 1 other inner steps.
    "BOME": (dict(n_inner_steps=3), [
        ("inner", "grad_g", 2), ("inner", "grad_g", 1),
        ("inner", "grad_g", 1), ("outer", "grad_f", 1)]),
    # Each step's batch again in the reverse pass.
    "ITD": (dict(n_inner_steps=3), [
        ("inner", "grad_g+cross", 1), ("inner", "grad_g+hvp_cross", 1),
        ("inner", "grad_g+hvp_cross", 1), ("outer", "grad_f", 1)]),
    # The three HVPs on one batch.
    "SubBiO": (dict(n_inner_steps=2), [
        ("inner", "grad_g", 1), ("inner", "grad_g", 1),
        ("outer", "grad_f", 1), ("second_order", "hvp", 3),
        ("second_order", "cross", 1)]),
    # No residual correction: one HVP per iteration, restarts included.
    "LancBiO": (dict(n_inner_steps=2), [
        ("inner", "grad_g", 1), ("inner", "grad_g", 1),
        ("outer", "grad_f", 1), ("second_order", "hvp", 1),
        ("second_order", "cross", 1)]),
    "STABLE": (dict(n_neumann_steps=2), [
        ("inner", "grad_g", 1), ("outer", "grad_f", 1),
        *[("second_order", "hvp", 1)] * 2, ("second_order", "cross", 1),
        ("second_order", "cross", 1), *[("second_order", "hvp", 1)] * 2]),
    # The T steps on w, then the penalty's two terms on one batch.
    "PBGD": (dict(n_inner_steps=2), [
        ("inner", "grad_g", 1), ("inner", "grad_g", 1),
        ("outer", "grad_f", 1), ("inner", "grad_g", 2)]),
    # The variance-reduced methods. Fixed batches, d_y g and the fused HVP
    # and cross product on one.
    "SABA": ({}, [("inner", "grad_g+hvp_cross", 1), ("outer", "grad_f", 1)]),
    # A full pass every 4 iterations; in between SOBA's directions at two
    # points on the same batches.
    "SRBA": (dict(period=4), lambda k, _: [
        ("full", "grad_g+hvp_cross+grad_f", 1)] if k % 4 == 0 else [
        ("inner", "grad_g+hvp_cross", 2), ("outer", "grad_f", 2)]),
    "MA-SOBA": (dict(momentum=0.5), [
        ("inner", "grad_g", 1), ("outer", "grad_f", 1),
        ("second_order", "hvp_cross", 1)]),
    # Each estimate of a pair on the same batches (one point at first).
    "MRBO": (dict(n_neumann_steps=3), lambda k, _: [
        ("inner", "grad_g+cross", 1 + (k > 0)),
        ("outer", "grad_f", 1 + (k > 0)),
        *[("second_order", "hvp", 1 + (k > 0))] * 3]),
    # Its drawn truncation: p HVP batches.
    "SUSTAIN": (dict(n_neumann_steps=3), lambda k, truncations: [
        ("inner", "grad_g+cross", 1 + (k > 0)),
        ("outer", "grad_f", 1 + (k > 0)),
        *[("second_order", "hvp", 1 + (k > 0))] * truncations[k]]),
    # A full pass every 3 outer iterations, then T = 2 inner steps, each
    # with the estimates at two points on the same batches.
    "VRBO": (dict(n_inner_steps=2, n_neumann_steps=3, period=3),
             lambda k, _: ([("full", "grad_g+grad_f+cross", 1),
                            ("full", "hvp", 3)] if k % 3 == 0 else []) + [
        ("inner", "grad_g+cross", 2), ("outer", "grad_f", 2),
        *[("second_order", "hvp", 2)] * 3] * 2),
    # Steps on y and v, then the hypergradient estimate at two points.
    "FSLA": ({}, lambda k, _: [
        ("inner", "grad_g", 1), ("outer", "grad_f", 1),
        ("second_order", "hvp", 1), ("second_order", "cross", 1 + (k > 0)),
        ("outer", "grad_f", 1 + (k > 0))]),
}


def solver_name(case):
    """The benchmark's solver of a MINIBATCH_SOLVERS key (AmIGO-GD and
    AmIGO-CG are AmIGO)."""
    return "AmIGO" if case.startswith("AmIGO") else case


@pytest.fixture(scope="module")
def problem():
    return SampleQuadraticProblem(dim_x=10, dim_y=20, n_train=200, n_val=100,
                                  kappa=10.0, seed=0)


def expected_counts(problem, solver, draws, n_iter, batch_size):
    """The counts of ``n_iter`` iterations of ``solver`` that make
    ``draws`` each (a list, or a function of the iteration and the drawn
    truncations that gives it), from the solver's own streams replayed:
    exact fractions of a pass, whatever the size of each epoch's last
    batch. A draw from the stream ``full`` reads all the samples."""
    streams = MinibatchStreams(problem, batch_size, solver.get_seed(
        use_repetition=True), solver.fixed_batches)
    truncations = None
    if hasattr(solver, "generator"):   # its random truncations, replayed
        generator = torch.Generator().manual_seed(solver.seed)
        truncations = [draw_truncation(generator, solver.n_neumann_steps)
                       for _ in range(n_iter)]
    n_train, n_val = problem.n_inner_samples, problem.n_outer_samples
    samples = dict.fromkeys(("grad_g", "grad_f", "hvp", "cross", "epochs"),
                            0)
    for k in range(n_iter):
        for stream, oracles, calls in (draws(k, truncations)
                                       if callable(draws) else draws):
            size = (None if stream == "full"
                    else len(getattr(streams, stream).next_batch()))
            for oracle in oracles.split("+"):
                n = size or (n_val if oracle == "grad_f" else n_train)
                counters = {"hvp_cross": ("hvp", "cross")}.get(oracle,
                                                                (oracle,))
                for counter in counters:
                    samples[counter] += calls * n
                if oracle != "grad_f":
                    # One pass over the batch per call, fused or not.
                    samples["epochs"] += calls * n
    return dict(
        n_grad=float(Fraction(samples["grad_g"], n_train)
                     + Fraction(samples["grad_f"], n_val)),
        n_hvp=float(Fraction(samples["hvp"], n_train)),
        n_cross=float(Fraction(samples["cross"], n_train)),
        n_epochs=float(Fraction(samples["epochs"], n_train)))


@pytest.mark.parametrize("case", MINIBATCH_SOLVERS)
def test_counts_are_fractions_of_a_pass(problem, case):
    params, draws = MINIBATCH_SOLVERS[case]
    # 16 divides neither 200 nor 100: 37 iterations cross epochs that end
    # with batches of 8 and 4 samples.
    n_iter, batch_size = 37, 16
    solver, _, _ = run_solver(solver_name(case), problem, n_iter,
                              batch_size=batch_size, **params)
    assert solver.get_result()["counts"] == expected_counts(
        problem, solver, draws, n_iter, batch_size)


def test_soba_counts_in_numbers(problem):
    # 37 iterations of SOBA: 2 full epochs and 11 batches of training
    # samples, 5 epochs and 2 batches of validation samples.
    solver, _, _ = run_solver("SOBA", problem, 37, batch_size=16)
    assert solver.get_result()["counts"] == dict(
        n_grad=(2 * 200 + 11 * 16) / 200 + (5 * 100 + 2 * 16) / 100,
        n_hvp=576 / 200, n_cross=576 / 200, n_epochs=2 * 576 / 200)


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


@pytest.mark.parametrize("case", MINIBATCH_SOLVERS)
def test_same_seed_same_draws_another_seed_others(problem, case):
    name, params = solver_name(case), MINIBATCH_SOLVERS[case][0]
    first, rerun = curve(name, problem, 0, batch_size=16, **params)
    # A second run of the same set-up repeats its draws.
    assert torch.equal(first, rerun)
    assert torch.equal(first, curve(name, problem, 0, batch_size=16,
                                    **params)[0])
    assert not torch.allclose(first, curve(name, problem, 1, batch_size=16,
                                           **params)[0])
    # Full batch draws no batch: the seed does not matter (TTSA, BSA and
    # SUSTAIN draw their truncations, all 0 with Q = 0).
    if "n_neumann_steps" in params and name in ("TTSA", "BSA", "SUSTAIN"):
        params = dict(params, n_neumann_steps=0)
    assert torch.equal(curve(name, problem, 0, batch_size="full",
                             **params)[0],
                       curve(name, problem, 1, batch_size="full",
                             **params)[0])


@pytest.mark.parametrize("name, params, n_iter", [
    # Decaying steps: the noise of batches of 16 vanishes.
    ("SOBA", dict(batch_size=16, decay_inner=0.4, decay_outer=0.6), 1000),
    # Constant steps: down to the noise floor of batches of 50. Each basis
    # vector comes from another batch's Hessian, and each sample's
    # Hessian here is the identity plus a rank-2 term: with batches of 16
    # the basis mixes Hessians too different from one another.
    ("LancBiO", dict(batch_size=50, n_inner_steps=2, step_size_outer=0.1),
     300),
])
def test_stochastic_solver_converges(problem, name, params, n_iter):
    objective = make_objective(problem)
    start = objective.evaluate_result(**objective.get_one_result())
    solver, _, _ = run_solver(name, problem, n_iter, objective=objective,
                              **params)
    end = objective.evaluate_result(**solver.get_result())
    print(f"{name}: hypergrad_norm {start['hypergrad_norm']:.3g} -> "
          f"{end['hypergrad_norm']:.3g}")
    assert end["hypergrad_norm"] < start["hypergrad_norm"] / 10


def test_stochastic_soba_counts_its_hvps_in_passes(problem):
    # 1,000 iterations on batches of 16 of 200 samples (13 per epoch, the
    # last of 8): 76 epochs and 12 batches of HVPs.
    solver, _, _ = run_solver("SOBA", problem, 1000, batch_size=16)
    assert solver.get_result()["counts"]["n_hvp"] == (
        76 * 200 + 12 * 16) / 200


@pytest.mark.parametrize("case", MINIBATCH_SOLVERS)
@pytest.mark.parametrize("batch_size, samples", [
    (0, "200 training"), (-4, "200 training"), (2.5, "200 training"),
    (201, "200 training"), (True, "200 training"), ("half", "200 training"),
    # One batch size for every stream: the 100 validation samples bound it.
    (150, "100 validation")])
def test_a_bad_batch_size_is_named_with_its_range(problem, case, batch_size,
                                                  samples):
    n = samples.split()[0]
    with pytest.raises(ValueError, match=rf"batch_size must be 'full' or an "
                       rf"integer in \[1, {n}\] \(the {samples} samples of "
                       r"the quadratic-samples problem\)"):
        run_solver(solver_name(case), problem, 1, batch_size=batch_size,
                   **MINIBATCH_SOLVERS[case][0])


@pytest.mark.parametrize("case", MINIBATCH_SOLVERS)
def test_minibatches_on_a_problem_without_samples(case):
    synthetic = SyntheticProblem(n=20, kappa=10.0, seed=0)
    with pytest.raises(ValueError, match="batch_size must be 'full' on the "
                       "synthetic problem, which has no samples, got 8"):
        run_solver(solver_name(case), synthetic, 1, batch_size=8,
                   **MINIBATCH_SOLVERS[case][0])


def test_aid_exact_is_full_batch_only(problem):
    objective = make_objective(problem)
    solver = get_solver_class("AID-exact").get_instance(batch_size=16)
    skipped, reason = solver.skip(**objective.get_objective())
    assert skipped
    assert reason == ("AID-exact solves y*(x) and A v = b to a tolerance on "
                      "the full data, and has no minibatch version: its "
                      "batch_size must be 'full'.")
    with pytest.raises(ValueError, match="has no minibatch version"):
        run_solver("AID-exact", problem, 1, batch_size=16)
    full = get_solver_class("AID-exact").get_instance()
    assert full.skip(**objective.get_objective()) == (False, None)


def test_every_minibatch_solver_is_tested():
    with_batches = {solver.name for solver in BENCHMARK.get_solvers()
                    if "batch_size" in solver.parameters}
    assert with_batches - {"AID-exact"} == {
        solver_name(case) for case in MINIBATCH_SOLVERS}
