"""The Neumann-series family (TTSA, stocBiO, BSA, STABLE): the shared
Neumann routines against their closed forms, the random-truncation
estimator's mean and draws, the solvers' iterates against the papers'
recursions written with the quadratic's matrices, STABLE's correction of
y along the implicit function, and TTSA's and BSA's HVP counts, the
truncation lengths they drew. (Their convergence, parameter checks,
reproducibility and seed dependence, and stocBiO's counts, are rows of the
table in test_solvers.py.)"""
import math

import pytest
import torch
from conftest import run_solver, spd_matrix

from benchmark_utils.linalg.neumann import (draw_truncation, neumann_sample,
                                            neumann_series)
from benchmark_utils.problems.quadratic import QuadraticProblem


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
        elif name != "STABLE":   # STABLE's step on y comes after x's
            for _ in range(params["n_inner_steps"]):
                y = y - params["step_size_inner"] * (H @ y + B @ x + c)
        b = y - t
        if name == "STABLE":
            v = truncated_neumann(H, b, eta, Q + 1)
            x_next = x - params["step_size_outer"] * (rho * x - B.T @ v)
            drift = truncated_neumann(H, B @ (x_next - x), eta, Q + 1)
            y = y - params["step_size_inner"] * (
                H @ y + B @ x + c) - drift
            x = x_next
            continue
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
    ("STABLE", dict(n_neumann_steps=5)),
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


# -- counts: the drawn truncation lengths --------------------------------


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
    # Per iteration, the gradients of g (all but one) and the cross
    # product are passes over g's data as many as the gradients.
    assert solver.get_result()["counts"] == dict(
        n_grad=n_iter * n_grad, n_hvp=drawn, n_cross=n_iter,
        n_epochs=n_iter * n_grad + drawn)


# -- STABLE's correction of y ----------------------------------------------


def test_stable_keeps_y_on_the_implicit_function():
    # From y0 = y*(x0), one STABLE step moves x by an O(1) amount and y
    # along dy*/dx (x_1 - x_0) = -H^-1 B (x_1 - x_0): on the quadratic,
    # where y* is affine in x, y_1 = y*(x_1) up to the Neumann truncation
    # (Q = 400: (1 - eta mu)^401 ~ 1e-16). Without the correction y_1
    # would stay at y*(x0), as far from y*(x1) as x moved.
    problem = QuadraticProblem(dim_x=10, dim_y=20, kappa=10.0, seed=0)
    problem.y0 = problem.inner_solution(problem.x0)
    solver, _, _ = run_solver("STABLE", problem, 1, n_neumann_steps=400)
    x1, y1 = solver.get_result()["x"], solver.get_result()["y"]
    moved = float(torch.linalg.vector_norm(
        problem.inner_solution(x1) - problem.y0))
    gap = float(torch.linalg.vector_norm(y1 - problem.inner_solution(x1)))
    assert moved > 1e-2
    assert gap < 1e-10 * moved
