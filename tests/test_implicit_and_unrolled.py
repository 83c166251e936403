"""ITD and AID-exact, the unrolled and the exact implicit hypergradient:
ITD's reverse pass (full and truncated) and its first outer step against
plain autograd through the unrolled loop, AID-exact's first step against
the quadratic's closed forms, AID-exact's varying counts, and the
Newton-CG of AID-exact and the metrics at the round-off of the gradient.
(Their convergence, parameter checks and reproducibility, and ITD's
counts, are rows of the table in test_solvers.py.)"""
import pytest
import torch
from conftest import run_solver
from torch.func import grad

from benchmark_utils.linalg.inner_loops import newton_cg
from benchmark_utils.linalg.unrolled import (unrolled_gradient_descent,
                                             unrolled_hypergradient)
from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem


def autograd_unrolled_hypergradient(problem, x, y0, n_steps, step_size,
                                    n_backprop_steps):
    """d/dx f(x, y_T(x)) by torch.func.grad through the inner loop, the
    first T - K steps taken outside the differentiated function (constant
    in x), as truncated back-propagation has them."""
    grad_g_y = grad(problem.g, argnums=1)
    y = y0
    for _ in range(n_steps - n_backprop_steps):
        y = y - step_size * grad_g_y(x, y)

    def unrolled_objective(x_):
        y_ = y
        for _ in range(n_backprop_steps):
            y_ = y_ - step_size * grad_g_y(x_, y_)
        return problem.f(x_, y_)

    return grad(unrolled_objective)(x)


# -- ITD -------------------------------------------------------------------


@pytest.mark.parametrize("problem", [
    SyntheticProblem(n=20, kappa=10.0, seed=1),
    QuadraticProblem(dim_x=10, dim_y=20, kappa=10.0, seed=0),
], ids=["synthetic", "quadratic"])
@pytest.mark.parametrize("n_backprop_steps", [None, 4, 1, 0])
def test_itd_reverse_pass_matches_autograd(problem, n_backprop_steps):
    n_steps, step_size = 7, 0.05
    oracles = Oracles(problem)
    x, y0 = problem.x0, problem.y0
    y_last, iterates = unrolled_gradient_descent(oracles, x, y0, n_steps,
                                                 step_size)
    grad_x_f, grad_y_f = oracles.grad_outer(x, y_last)
    hypergradient = unrolled_hypergradient(
        oracles, x, iterates, grad_x_f, grad_y_f, step_size,
        n_backprop_steps)
    n_backprop = n_steps if n_backprop_steps is None else n_backprop_steps
    expected = autograd_unrolled_hypergradient(problem, x, y0, n_steps,
                                               step_size, n_backprop)
    assert torch.allclose(hypergradient, expected, rtol=0, atol=1e-10)
    # K cross products; the adjoint after the last step back is not needed.
    # Each step back reads g's data once, its HVP and cross product fused.
    assert oracles.counts() == dict(n_grad=n_steps + 1,
                                    n_hvp=max(n_backprop - 1, 0),
                                    n_cross=n_backprop,
                                    n_epochs=n_steps + n_backprop)


def test_itd_first_step_follows_the_unrolled_derivative(quadratic):
    # One outer iteration from (x0, y0): x1 = x0 - lam d/dx f(x0, y_T(x0)).
    params = dict(n_inner_steps=6, n_backprop_steps=4, step_size_inner=0.05,
                  step_size_outer=0.5)
    solver, _, _ = run_solver("ITD", quadratic, 1, **params)
    expected = quadratic.x0 - 0.5 * autograd_unrolled_hypergradient(
        quadratic, quadratic.x0, quadratic.y0, 6, 0.05, 4)
    assert torch.allclose(solver.get_result()["x"], expected, rtol=0,
                          atol=1e-10)


# -- AID-exact -------------------------------------------------------------


def test_aid_exact_first_step_is_exact_hypergradient_descent(quadratic):
    solver, _, _ = run_solver("AID-exact", quadratic, 1, step_size_outer=0.5)
    x0 = quadratic.x0
    result = solver.get_result()
    assert torch.allclose(result["y"], quadratic.inner_solution(x0),
                          rtol=0, atol=1e-9)
    assert torch.allclose(result["v"], quadratic.adjoint_solution(x0),
                          rtol=0, atol=1e-9)
    assert torch.allclose(result["x"], x0 - 0.5 * quadratic.hypergradient(x0),
                          rtol=0, atol=1e-9)


def test_aid_exact_counts_one_cross_product_per_iteration(quadratic):
    # The solves take a varying number of gradients and HVPs, but at least
    # one inner gradient and d f per iteration, and CG at least its residual.
    n_iter = 5
    solver, _, _ = run_solver("AID-exact", quadratic, n_iter)
    counts = solver.get_result()["counts"]
    assert counts["n_cross"] == n_iter
    assert counts["n_grad"] >= 2 * n_iter
    assert counts["n_hvp"] >= n_iter


# -- Newton-CG -------------------------------------------------------------


def test_newton_cg_stops_at_the_round_off_of_the_gradient():
    # kappa = 1e5: the gradient of g cannot be computed below about
    # 1e-16 kappa ||y||, so a target of 0 is out of reach. Newton-CG
    # stops three steps after its last new smallest gradient, at y*,
    # instead of running its 100 steps.
    problem = SyntheticProblem(n=100, kappa=1e5, seed=2)
    oracles = Oracles(problem, "closed_form")
    x = problem.x0
    y = newton_cg(oracles, x, problem.y0, tol=0.0,
                  gradient_target=lambda point: 0.0)
    n_newton_steps = oracles.counts()["n_grad"]
    assert n_newton_steps < 50
    y_star = newton_cg(Oracles(problem, "closed_form"), x, problem.y0,
                       tol=1e-14)
    assert float(torch.linalg.vector_norm(y - y_star)) <= 1e-9 * float(
        torch.linalg.vector_norm(y_star))
