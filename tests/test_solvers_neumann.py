"""TTSA, stocBiO and BSA (the Neumann-series family): the shared Neumann
routines against closed forms, the random-truncation estimator's mean, the
solvers' iterates against the papers' recursions written with the
quadratic's matrices, convergence, exact counts, parameter checks and
reproducibility."""
import math

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import (get_solver_class, hypergrad_ratio, make_objective,
                      run_solver, spd_matrix)

from benchmark_utils.linalg.neumann import (draw_truncation, neumann_sample,
                                            neumann_series)
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem


def truncated_neumann(matrix, b, eta, n_terms):
    """eta sum_{i < n_terms} (I - eta A)^i b = (I - (I - eta A)^n_terms)
    A^{-1} b, by the closed form."""
    contraction = torch.eye(len(b)) - eta * matrix
    return torch.linalg.solve(matrix, b) - torch.linalg.matrix_power(
        contraction, n_terms) @ torch.linalg.solve(matrix, b)


# -- the shared Neumann routines ------------------------------------------


@pytest.mark.parametrize("n_steps", [0, 1, 5, 30])
def test_neumann_series_matches_its_closed_form(n_steps):
    matrix, b = spd_matrix(12, 20.0, seed=0)
    eta = 1.0 / 22.0
    calls = []

    def matvec(u):
        calls.append(1)
        return matrix @ u

    v = neumann_series(matvec, b, eta, n_steps)
    torch.testing.assert_close(
        v, truncated_neumann(matrix, b, eta, n_steps + 1), rtol=0,
        atol=1e-12)
    assert len(calls) == n_steps


def test_neumann_sample_is_the_drawn_term_at_p_hvps():
    matrix, b = spd_matrix(6, 5.0, seed=1)
    eta, n_steps = 0.15, 6
    contraction = torch.eye(6) - eta * matrix
    gen, redraw = (torch.Generator().manual_seed(3) for _ in range(2))
    for _ in range(20):
        calls = []
        sample = neumann_sample(lambda u: calls.append(1) or matrix @ u, b,
                                eta, n_steps, gen)
        p = draw_truncation(redraw, n_steps)
        assert len(calls) == p
        torch.testing.assert_close(
            sample, (n_steps + 1) * eta * torch.linalg.matrix_power(
                contraction, p) @ b, rtol=0, atol=1e-12)


def test_random_truncation_is_unbiased_for_the_q_step_sum():
    matrix, b = spd_matrix(6, 5.0, seed=2)
    eta, n_steps, n_draws = 0.15, 7, 20000
    gen = torch.Generator().manual_seed(4)
    samples = torch.stack([
        neumann_sample(lambda u: matrix @ u, b, eta, n_steps, gen)
        for _ in range(n_draws)])
    mean = samples.mean(dim=0)
    standard_error = samples.std(dim=0) / math.sqrt(n_draws)
    # Its mean is the sum of Q + 1 terms (neumann_series with Q steps) ...
    expected = truncated_neumann(matrix, b, eta, n_steps + 1)
    torch.testing.assert_close(
        expected, neumann_series(lambda u: matrix @ u, b, eta, n_steps),
        rtol=0, atol=1e-12)
    assert torch.all((mean - expected).abs() <= 4 * standard_error)
    # ... and the test tells it from the sum of Q + 2 terms.
    wrong = truncated_neumann(matrix, b, eta, n_steps + 2)
    assert torch.any((mean - wrong).abs() > 4 * standard_error)


def test_truncation_draws_cover_zero_to_q_uniformly():
    gen = torch.Generator().manual_seed(5)
    n_steps, n_draws = 4, 10000
    draws = torch.tensor([draw_truncation(gen, n_steps)
                          for _ in range(n_draws)])
    counts = torch.bincount(draws, minlength=n_steps + 1)
    assert len(counts) == n_steps + 1
    # Binomial(10000, 1/5): standard deviation 40.
    assert torch.all((counts - n_draws / (n_steps + 1)).abs() <= 160)


# -- the solvers' iterates are the papers' recursions ---------------------


def reference_iterates(name, problem, params, seed, n_iter):
    """The recursions of the papers on the quadratic, with its matrices:
    d_y g = H y + B x + c, d_x f = rho x, d_y f = y - t, d2_xy g v = B^T v."""
    H, B, c, t = (problem.hessian, problem.coupling, problem.shift,
                  problem.target)
    rho, eta = problem.rho, params["step_size_linsys"]
    Q = params["n_neumann_steps"]
    contraction = torch.eye(len(c)) - eta * H
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    x, y, xs = problem.x0, problem.y0, []
    for k in range(n_iter):
        xs.append(x)
        if name == "TTSA":
            beta = params["step_size_inner"] * (k + 1) ** -params[
                "decay_inner"]
            y = y - beta * (H @ y + B @ x + c)
        else:
            for _ in range(params["n_inner_steps"]):
                y = y - params["step_size_inner"] * (H @ y + B @ x + c)
        b = y - t
        if name == "stocBiO":
            v = truncated_neumann(H, b, eta, Q + 1)
            alpha = params["step_size_outer"]
        else:
            p = draw_truncation(gen, Q)
            v = (Q + 1) * eta * torch.linalg.matrix_power(contraction, p) @ b
            alpha = params["step_size_outer"] / (
                math.sqrt(k + 1) if name == "BSA"
                else (k + 1) ** params["decay_outer"])
        x = x - alpha * (rho * x - B.T @ v)
    return torch.stack(xs + [x])


@pytest.mark.parametrize("name, params", [
    ("stocBiO", dict(n_inner_steps=3, n_neumann_steps=4)),
    ("BSA", dict(n_inner_steps=3, n_neumann_steps=6)),
    ("TTSA", dict(n_neumann_steps=6, decay_inner=0.4, decay_outer=0.6)),
])
def test_iterates_follow_the_papers_recursion(quadratic, name, params):
    params = dict(params, step_size_inner=0.07, step_size_linsys=0.08,
                  step_size_outer=0.9)
    n_iter = 12
    solver, _, callback = run_solver(name, quadratic, n_iter, record=True,
                                     **params)
    xs = torch.stack([entry["x"] for entry in callback.history])
    seed = getattr(solver, "seed", None)
    torch.testing.assert_close(
        xs, reference_iterates(name, quadratic, params, seed, n_iter),
        rtol=0, atol=1e-10)


# -- convergence ----------------------------------------------------------


def test_stocbio_decreases_hypergradient_100_fold(quadratic):
    # Q = 40: the truncation bias (1 - eta mu)^(Q+1), about 2% of v* at the
    # default Q = 10 and kappa = 10, would otherwise stop it near 1/20.
    solver, objective, _ = run_solver("stocBiO", quadratic, 100,
                                      n_neumann_steps=40)
    assert hypergrad_ratio(solver, objective) < 1e-2


@pytest.mark.parametrize("name, n_iter", [("BSA", 300), ("TTSA", 600)])
def test_random_truncation_decreases_hypergradient_100_fold(name, n_iter):
    # With t = y*(0) the minimiser is x* = 0 and b = d_y f vanishes there,
    # so does the estimator's noise, which is linear in b; on the plain
    # quadratic that noise (std of B^T v about 0.4 at x*, Q = 10) keeps
    # the hypergradient near 1/20 of its start for thousands of iterations.
    problem = QuadraticProblem(dim_x=10, dim_y=20, kappa=10.0, seed=0)
    problem.target = problem.inner_solution(torch.zeros(10))
    solver, objective, _ = run_solver(name, problem, n_iter)
    assert hypergrad_ratio(solver, objective) < 1e-2


# -- counts ---------------------------------------------------------------


def test_stocbio_counts_per_iteration_are_exact(quadratic):
    n_iter = 9
    solver, _, _ = run_solver("stocBiO", quadratic, n_iter, n_inner_steps=3,
                              n_neumann_steps=7)
    assert solver.get_result()["counts"] == dict(
        n_grad=n_iter * 4, n_hvp=n_iter * 7, n_cross=n_iter)
    assert solver.get_result()["n_outer"] == n_iter


@pytest.mark.parametrize("name, params, n_grad", [
    ("BSA", dict(n_inner_steps=3), 4),
    ("TTSA", {}, 2),
])
def test_random_truncation_counts_are_the_drawn_lengths(quadratic, name,
                                                        params, n_grad):
    n_iter = 9
    solver, _, _ = run_solver(name, quadratic, n_iter, n_neumann_steps=10,
                              **params)
    gen = torch.Generator().manual_seed(solver.seed)
    drawn = sum(draw_truncation(gen, 10) for _ in range(n_iter))
    assert drawn > 0
    assert solver.get_result()["counts"] == dict(
        n_grad=n_iter * n_grad, n_hvp=drawn, n_cross=n_iter)


# -- parameters and reproducibility ---------------------------------------


@pytest.mark.parametrize("name, params, message", [
    ("stocBiO", {"n_neumann_steps": 0},
     "n_neumann_steps must be an integer >= 1"),
    ("stocBiO", {"n_inner_steps": -1}, "n_inner_steps must be an integer"),
    ("stocBiO", {"step_size_linsys": 0.0}, "step_size_linsys must be"),
    ("BSA", {"n_neumann_steps": 2.5}, "n_neumann_steps must be an integer"),
    ("BSA", {"step_size_outer": -1.0}, "step_size_outer must be"),
    ("TTSA", {"step_size_inner": "fast"}, "step_size_inner must be"),
    ("TTSA", {"decay_outer": -0.1},
     "decay_outer must be a finite number >= 0"),
    ("TTSA", {"decay_inner": float("nan")}, "decay_inner must be"),
])
def test_bad_parameters_are_clear_errors(quadratic, name, params, message):
    with pytest.raises(ValueError, match=message):
        run_solver(name, quadratic, 1, **params)


def curve(solver, objective, base_seed, n_iter=15):
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=base_seed)
    solver.set_objective(**objective.get_objective())
    calls = iter(range(n_iter + 1))
    xs = []

    def callback():
        xs.append(solver.get_result()["x"].clone())
        return next(calls) < n_iter

    solver.run(callback)
    return torch.stack(xs)


@pytest.mark.parametrize("name", ["TTSA", "stocBiO", "BSA"])
def test_same_seed_gives_the_same_curve(name):
    curves = []
    for _ in range(2):
        problem = SyntheticProblem(n=30, kappa=100.0, seed=11)
        objective = make_objective(problem)
        solver = get_solver_class(name).get_instance()
        # Two runs of the same instance, then a fresh instance.
        curves += [curve(solver, objective, 0), curve(solver, objective, 0)]
    assert all(torch.equal(curves[0], other) for other in curves[1:])
    assert torch.isfinite(curves[0]).all()


@pytest.mark.parametrize("name", ["TTSA", "BSA"])
def test_another_seed_gives_other_truncations(quadratic, name):
    objective = make_objective(quadratic)
    solver = get_solver_class(name).get_instance()
    assert not torch.equal(curve(solver, objective, 0),
                           curve(solver, objective, 1))
