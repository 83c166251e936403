"""AmIGO (GD and CG), ITD and AID-exact: convergence on the quadratic
problem, ITD's reverse pass against plain autograd through the unrolled
loop, exact oracle counts, parameter checks and reproducibility."""
import pytest
import torch
from conftest import (assert_counts_per_iteration, hypergrad_norm,
                      hypergrad_ratio, run_solver)
from torch.func import grad

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
    assert oracles.counts() == dict(n_grad=n_steps + 1,
                                    n_hvp=max(n_backprop - 1, 0),
                                    n_cross=n_backprop)


def test_itd_first_step_follows_the_unrolled_derivative(quadratic):
    # One outer iteration from (x0, y0): x1 = x0 - lam d/dx f(x0, y_T(x0)).
    params = dict(n_inner_steps=6, n_backprop_steps=4, step_size_inner=0.05,
                  step_size_outer=0.5)
    solver, _, _ = run_solver("ITD", quadratic, 1, **params)
    expected = quadratic.x0 - 0.5 * autograd_unrolled_hypergradient(
        quadratic, quadratic.x0, quadratic.y0, 6, 0.05, 4)
    assert torch.allclose(solver.get_result()["x"], expected, rtol=0,
                          atol=1e-10)


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


def test_aid_exact_drives_hypergradient_below_1e_8(quadratic):
    solver, objective, _ = run_solver("AID-exact", quadratic, 160)
    assert hypergrad_norm(solver, objective) < 1e-8


@pytest.mark.parametrize("name, params, n_iter", [
    ("AmIGO", {"inner_solver": "gd"}, 100),
    ("AmIGO", {"inner_solver": "cg"}, 100),
    ("ITD", {"n_inner_steps": 30}, 50),
])
def test_solver_decreases_hypergradient_100_fold(quadratic, name, params,
                                                 n_iter):
    solver, objective, _ = run_solver(name, quadratic, n_iter, **params)
    assert hypergrad_ratio(solver, objective) < 1 / 100


@pytest.mark.parametrize("name, params, per_iteration", [
    # T + 1 gradients, Q HVPs, 1 cross product.
    ("AmIGO", {"inner_solver": "gd", "n_inner_steps": 3, "n_linsys_steps": 4},
     dict(n_grad=4, n_hvp=4, n_cross=1)),
    # CG spends one more HVP on the warm start's residual b - A v_prev.
    ("AmIGO", {"inner_solver": "cg", "n_inner_steps": 3, "n_linsys_steps": 4},
     dict(n_grad=4, n_hvp=5, n_cross=1)),
    # Full unroll: T + 1 gradients, T - 1 HVPs, T cross products.
    ("ITD", {"n_inner_steps": 6}, dict(n_grad=7, n_hvp=5, n_cross=6)),
    # Truncated to K = 2: K - 1 HVPs, K cross products.
    ("ITD", {"n_inner_steps": 6, "n_backprop_steps": 2},
     dict(n_grad=7, n_hvp=1, n_cross=2)),
    ("ITD", {"n_inner_steps": 0}, dict(n_grad=1, n_hvp=0, n_cross=0)),
])
def test_counts_per_iteration_are_exact(quadratic, name, params,
                                        per_iteration):
    assert_counts_per_iteration(quadratic, name, params, per_iteration,
                                n_iter=9)


def test_aid_exact_counts_one_cross_product_per_iteration(quadratic):
    # The solves take a varying number of gradients and HVPs, but at least
    # one inner gradient and d f per iteration, and CG at least its residual.
    n_iter = 5
    solver, _, _ = run_solver("AID-exact", quadratic, n_iter)
    counts = solver.get_result()["counts"]
    assert counts["n_cross"] == n_iter
    assert counts["n_grad"] >= 2 * n_iter
    assert counts["n_hvp"] >= n_iter


@pytest.mark.parametrize("name, params", [
    ("AmIGO", {"inner_solver": "gd"}),
    ("AmIGO", {"inner_solver": "cg"}),
    ("ITD", {"n_backprop_steps": 5}),
    ("AID-exact", {}),
])
def test_same_seed_gives_the_same_curve(name, params):
    curves = []
    for _ in range(2):
        problem = SyntheticProblem(n=30, kappa=100.0, seed=11)
        _, _, callback = run_solver(name, problem, 6, record=True, **params)
        curves.append(torch.stack([entry["x"] for entry in callback.history]))
    assert torch.equal(curves[0], curves[1])


@pytest.mark.parametrize("name, params, message", [
    ("AmIGO", {"inner_solver": "lbfgs"}, "inner_solver must be one of"),
    ("AmIGO", {"n_linsys_steps": 0}, "n_linsys_steps must be an integer >= 1"),
    ("AmIGO", {"n_inner_steps": -1}, "n_inner_steps must be an integer >= 0"),
    ("AmIGO", {"inner_solver": "gd", "step_size_linsys": 0.0},
     "step_size_linsys must be a finite number > 0"),
    ("AmIGO", {"step_size_outer": -1.0}, "step_size_outer must be"),
    ("ITD", {"n_inner_steps": -2}, "n_inner_steps must be an integer >= 0"),
    ("ITD", {"n_inner_steps": 5, "n_backprop_steps": 6},
     "n_backprop_steps must be an integer >= 0 and <= 5"),
    ("ITD", {"n_backprop_steps": 2.5}, "n_backprop_steps must be an integer"),
    ("ITD", {"step_size_inner": "fast"}, "step_size_inner must be"),
    ("AID-exact", {"tol": 0.0}, "tol must be a finite number > 0"),
    ("AID-exact", {"step_size_outer": 0}, "step_size_outer must be"),
])
def test_bad_parameters_are_clear_errors(quadratic, name, params, message):
    with pytest.raises(ValueError, match=message):
        run_solver(name, quadratic, 1, **params)
