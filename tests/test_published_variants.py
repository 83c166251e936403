"""The LancBiO authors' versions of the baselines (``variant='lancbio_code'``,
benchmark_utils/published_variants.py), each against its first steps
computed by hand from the problem's matrices or its own derivatives, and
the objective's ``v_start`` (the authors' v0 ~ N(0, I)). That the default,
``variant='original'``, is unchanged is tests/test_reference_curves.py."""
import math

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import (IterationBudget, get_solver_class, make_objective,
                      run_solver)

from benchmark_utils.linalg.finite_differences import (
    hvp_and_cross_fd, hvp_and_cross_fd_along)
from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.synthetic import SyntheticProblem
from benchmark_utils.published_variants import (calendar_schedule,
                                                largest_calendar_basis,
                                                neumann_then_descent,
                                                seeded_start)

CODE = dict(variant="lancbio_code")


@pytest.fixture(scope="module")
def synthetic():
    """A small synthetic problem, whose Hessian changes with y (unlike the
    quadratic's): where the authors' SubBiO and HJFBiO differ from the
    originals."""
    return SyntheticProblem(n=6, kappa=10.0, seed=3)


def run_one(name, problem, n_iter=1, objective=None, **params):
    """``name`` set up as benchopt sets it up (repetition 0, seed 0) and run
    for ``n_iter`` iterations; (solver, the objective's start, the recorded
    results before each iteration and at the end)."""
    objective = objective or make_objective(problem)
    solver = get_solver_class(name).get_instance(**params)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    start = objective.get_objective()
    solver.set_objective(**start)
    callback = IterationBudget(n_iter, solver)
    solver.run(callback)
    return solver, start, callback.history


def dense(problem, x, y):
    """(d2_yy g, d2_xy g as the matrix of v -> d2_xy g v, d_x f, d_y f,
    d_y g) at (x, y), by torch.autograd from the problem's f and g."""
    grad_y_g = lambda x_, y_: torch.autograd.functional.jacobian(  # noqa
        lambda w: problem.g(x_, w), y_, create_graph=True)
    hessian = torch.autograd.functional.jacobian(
        lambda w: grad_y_g(x, w), y)
    # Row i: d(d_y g)_i / dx, so d2_xy g v = J^T v.
    jacobian_x = torch.autograd.functional.jacobian(
        lambda u: grad_y_g(u, y), x)
    grad_x_f, grad_y_f = torch.autograd.functional.jacobian(
        lambda u, w: problem.f(u, w), (x, y))
    return (hessian, jacobian_x.T, grad_x_f, grad_y_f,
            grad_y_g(x, y).detach())


# -- LancBiO: the calendar --------------------------------------------------


def test_calendar_grows_at_19_and_restarts_on_k_mod_m():
    # growth 1.1 every 20, from m = 1: a restart at every k while m = 1;
    # m = 2 at k = 19 (19 % 20 == 19), restarts at odd k; m = 3 at k = 39,
    # where 39 % 3 == 0: no restart before k = 40, so the cycle started at
    # 37 holds 3 vectors (37, 38, 39).
    m, restarts = 1, []
    for k in range(1, 47):
        m, restart = calendar_schedule(k, m, 1.1, 20, 80)
        restarts += [k] if restart else []
        if k == 18:
            assert m == 1
        if k == 19:
            assert m == 2
    assert m == 3
    assert restarts == list(range(1, 20)) + [21, 23, 25, 27, 29, 31, 33,
                                             35, 37, 40, 43, 46]


def test_lancbio_code_counts_one_hvp_more_at_each_calendar_restart(
        quadratic):
    # growth 1.5 every 3 from m = 1, at most 5: m = 2 at k = 2, 3 at k = 5,
    # 5 at k = 8. Restarts (m == 1 or k % m == 1): k = 1, 3, 7, 11, 16 in
    # 20 iterations; the cycle from k = 3 holds 4 vectors (3, 4, 5, 6)
    # while m is 2, then 3.
    solver, _, _ = run_solver(
        "LancBiO", quadratic, 20, n_inner_steps=0, subspace_dim=1,
        max_subspace_dim=5, subspace_growth=1.5, growth_every=3, **CODE)
    assert solver.get_result()["counts"]["n_hvp"] == 20 + 5
    assert solver.m == 5
    assert largest_calendar_basis(1, 1.5, 3, 5) == 5


def test_lancbio_code_with_a_fixed_m_is_the_original(quadratic):
    # With m fixed, the calendar k % m == 1 restarts every m iterations
    # from k = 1, as the original does: the same iterates (the authors'
    # code and this benchmark agree to round-off there).
    params = dict(subspace_dim=4, max_subspace_dim=4, subspace_growth=1.0)
    results = [run_solver("LancBiO", quadratic, 11, **params, **variant)[0]
               .get_result() for variant in ({}, CODE)]
    for key in ("x", "y", "v"):
        assert torch.equal(results[0][key], results[1][key])
    assert results[0]["counts"] == results[1]["counts"]


# -- SOBA: sequential --------------------------------------------------------


def test_soba_code_is_sequential(quadratic):
    p = quadratic
    rho, gamma = 0.05, 0.5
    solver, start, history = run_one(
        "SOBA", p, step_size_inner=rho, step_size_outer=gamma, **CODE)
    x, y = p.x0, p.y0
    v = torch.zeros_like(y)
    y = y - rho * (p.hessian @ y + p.coupling @ x + p.shift)
    b = y - p.target
    v = v - rho * (p.hessian @ v - b)
    x = x - gamma * (p.rho * x - p.coupling.T @ v)
    result = history[-1]
    for key, expected in dict(x=x, y=y, v=v).items():
        torch.testing.assert_close(result[key], expected, rtol=1e-12,
                                   atol=1e-14)
    # The HVP (at the old v) and the cross product (at the new one) are
    # two passes over the training samples: three in all, SOBA's two.
    assert result["counts"] == dict(n_grad=2, n_hvp=1, n_cross=1,
                                    n_epochs=3)


# -- TTSA and BSA: Neumann term, then Q steps on v ---------------------------


def test_neumann_then_descent_by_hand():
    generator = torch.Generator().manual_seed(5)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    matrix = (q * torch.linspace(1, 4, 8)) @ q.T
    b = torch.randn(8, generator=generator)
    eta, n_steps = 0.2, 4
    state = generator.get_state()
    p = int(torch.randint(n_steps, (), generator=generator))
    generator.set_state(state)
    n_products = []
    hvp = lambda u: n_products.append(1) or matrix @ u  # noqa: E731
    v = neumann_then_descent(hvp, b, eta, n_steps, generator)
    expected = eta * torch.linalg.matrix_power(
        torch.eye(8) - eta * matrix, p) @ b
    for _ in range(n_steps):
        expected = expected - eta * (matrix @ expected - b)
    torch.testing.assert_close(v, expected, rtol=1e-12, atol=1e-14)
    assert len(n_products) == p + n_steps


def neumann_code_candidates(p, x, y, eta, n_steps):
    """TTSA's and BSA's v in the authors' code at (x, y) for each
    truncation p in {0, ..., Q-1}, on the quadratic ``p``."""
    b = y - p.target
    candidates = []
    for truncation in range(n_steps):
        v = eta * torch.linalg.matrix_power(
            torch.eye(len(b)) - eta * p.hessian, truncation) @ b
        for _ in range(n_steps):
            v = v - eta * (p.hessian @ v - b)
        candidates.append((truncation, v))
    return candidates


@pytest.mark.parametrize("name, params", [
    ("TTSA", dict(decay_inner=0.0, decay_outer=0.4)),
    ("BSA", dict(n_inner_steps=1)),
])
@pytest.mark.parametrize("outer, expected_alpha", [
    (0.5, 0.5),
    # Below the floor: the authors' decaying step never goes under 0.01.
    (0.001, 0.01),
])
def test_ttsa_and_bsa_code_one_step(quadratic, name, params, outer,
                                    expected_alpha):
    p = quadratic
    beta, eta, n_steps = 0.05, 0.08, 2
    solver, _, history = run_one(
        name, p, step_size_inner=beta, step_size_linsys=eta,
        step_size_outer=outer, n_neumann_steps=n_steps, **params, **CODE)
    x = p.x0
    y = p.y0 - beta * (p.hessian @ p.y0 + p.coupling @ x + p.shift)
    result = history[-1]
    torch.testing.assert_close(result["y"], y, rtol=1e-12, atol=1e-14)
    # The truncation p is the solver's draw: its v is one of the Q
    # candidates, and its HVPs are p + Q.
    (truncation, v), = [
        (truncation, v) for truncation, v in neumann_code_candidates(
            p, x, y, eta, n_steps)
        if torch.allclose(result["v"], v, rtol=1e-12, atol=1e-14)]
    assert result["counts"]["n_hvp"] == truncation + n_steps
    torch.testing.assert_close(
        result["x"], x - expected_alpha * (p.rho * x - p.coupling.T @ v),
        rtol=1e-12, atol=1e-14)


def test_ttsa_and_bsa_code_need_a_neumann_step(quadratic):
    for name in ("TTSA", "BSA"):
        with pytest.raises(ValueError, match="n_neumann_steps must be an "
                           "integer >= 1"):
            run_solver(name, quadratic, 1, n_neumann_steps=0, **CODE)


# -- SubBiO: the projected Hessian at (x, v) ---------------------------------


def test_subbio_code_projects_the_hessian_at_x_v(synthetic):
    p = synthetic
    objective = make_objective(p, v_start="normal")
    rho, eta, gamma = 0.02, 0.03, 0.1
    solver, start, history = run_one(
        "SubBiO", p, objective=objective, n_inner_steps=1,
        step_size_inner=rho, step_size_linsys=eta, step_size_outer=gamma,
        **CODE)
    x, v = p.x0, start["v0"]
    _, _, _, _, grad_y_g = dense(p, x, p.y0)
    y = p.y0 - rho * grad_y_g
    hessian_y, cross, grad_x_f, b, _ = dense(p, x, y)
    hessian_v = dense(p, x, v)[0]
    u = v - eta * hessian_y @ v
    basis = torch.stack([b, u], dim=1)
    v = basis @ torch.linalg.solve(basis.T @ hessian_v @ basis, basis.T @ b)
    x = x - gamma * (grad_x_f - cross @ v)
    result = history[-1]
    torch.testing.assert_close(result["v"], v, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(result["x"], x, rtol=1e-9, atol=1e-12)
    # The original projects d2_yy g at (x, y): another v.
    _, _, original = run_one("SubBiO", p, objective=objective,
                             n_inner_steps=1, step_size_inner=rho,
                             step_size_linsys=eta, step_size_outer=gamma)
    assert not torch.allclose(original[-1]["v"], v, rtol=1e-3)


# -- F2SA: the hyper-cleaning schedule ---------------------------------------


def test_f2sa_code_two_steps(quadratic):
    p = quadratic
    gamma_y, gamma_x, growth = 0.05, 0.3, 0.1
    solver, _, history = run_one(
        "F2SA", p, n_iter=2, n_inner_steps=2, step_size_inner=gamma_y,
        step_size_outer=gamma_x, penalty_init=1.0, penalty_growth=growth,
        penalty_max=1.05, **CODE)

    def grad_y_g(x, w):
        return p.hessian @ w + p.coupling @ x + p.shift

    x, y, z = p.x0, p.y0, p.y0
    # lambda_0 = 1, lambda_1 = 1 + 0.1 / 1 (above penalty_max: no cap).
    for k, lam in enumerate((1.0, 1.0 + growth)):
        for _ in range(2):
            y, z = (y - gamma_y * ((y - p.target) + lam * grad_y_g(x, y)),
                    z - gamma_y * grad_y_g(x, z))
        x = x - gamma_x / (k + 1) ** (1 / 7) * (
            p.rho * x + lam * (p.coupling.T @ y - p.coupling.T @ z))
        torch.testing.assert_close(history[k + 1]["x"], x, rtol=1e-12,
                                   atol=1e-14)
        torch.testing.assert_close(history[k + 1]["y"], z, rtol=1e-12,
                                   atol=1e-14)
    assert solver.penalty == pytest.approx(1.0 + growth + growth / 2)


# -- HJFBiO: differences along v, v from U[0, 1) ----------------------------


def test_differences_along_v_are_the_normalised_ones_rescaled(synthetic):
    p = synthetic
    oracles = Oracles(p, "reverse")
    generator = torch.Generator().manual_seed(2)
    x, y, v = (torch.randn(6, generator=generator) for _ in range(3))
    relative = 1e-4
    # The normalised step h v / ||v||, h = delta (1 + ||y||), is the step
    # delta' v with delta' = h / ||v||.
    along = relative * (1 + torch.linalg.vector_norm(y)) / (
        torch.linalg.vector_norm(v))
    for got, expected in zip(
            hvp_and_cross_fd_along(oracles, x, y, v, float(along)),
            hvp_and_cross_fd(oracles, x, y, v, relative)):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)
    assert oracles.counts()["n_grad"] == 4


def test_hjfbio_code_one_step(synthetic):
    p = synthetic
    rho, eta, gamma, delta = 0.02, 0.5, 0.1, 1e-3
    # The authors' hyper-cleaning start, v0 uniform on [0, 1).
    objective = make_objective(p, v_start="uniform")
    solver, start, history = run_one(
        "HJFBiO", p, objective=objective, step_size_inner=rho,
        step_size_linsys=eta, step_size_outer=gamma, delta=delta, **CODE)
    v = start["v0"]
    assert ((0 <= v) & (v < 1)).all()
    assert torch.equal(history[0]["v"], v)
    x, y = p.x0, p.y0

    def grad_g(u, w):
        return torch.autograd.functional.jacobian(
            lambda a, c: p.g(a, c), (u, w))

    plus, minus = grad_g(x, y + delta * v), grad_g(x, y - delta * v)
    hvp = (plus[1] - minus[1]) / (2 * delta)
    cross = (plus[0] - minus[0]) / (2 * delta)
    _, _, grad_x_f, grad_y_f, grad_y_g = dense(p, x, y)
    expected = dict(x=x - gamma * (grad_x_f - cross),
                    y=y - rho * grad_y_g,
                    # v moves with the y step rho, not the linsys step.
                    v=v - rho * (hvp - grad_y_f))
    for key, value in expected.items():
        torch.testing.assert_close(history[-1][key], value, rtol=1e-9,
                                   atol=1e-12)


# -- the variant parameter and the objective's start -------------------------


@pytest.mark.parametrize("name", ["SOBA", "TTSA", "BSA", "SubBiO",
                                  "LancBiO", "F2SA", "HJFBiO"])
def test_an_unknown_variant_is_a_clear_error(quadratic, name):
    with pytest.raises(ValueError, match="variant must be one of "
                       "'original', 'lancbio_code', got 'paper'"):
        run_solver(name, quadratic, 1, variant="paper")


def test_v_start_is_one_draw_for_every_solver_of_a_repetition(quadratic):
    objective = make_objective(quadratic, v_start="normal")
    starts = {}
    for name, repetition in [("SOBA", 0), ("AmIGO", 0), ("SOBA", 1)]:
        solver = get_solver_class(name).get_instance()
        RunContext().set_run_context(objective, "dataset", solver,
                                     repetition=repetition, base_seed=0)
        start = objective.get_objective()
        solver.set_objective(**start)
        callback = IterationBudget(0, solver)
        solver.run(callback)
        # The solver starts from the objective's v0.
        assert torch.equal(callback.history[0]["v"], start["v0"])
        starts[name, repetition] = start["v0"]
    assert torch.equal(starts["SOBA", 0], starts["AmIGO", 0])
    assert not torch.equal(starts["SOBA", 0], starts["SOBA", 1])
    # Standard normal entries: mean about 0 and variance about 1 over 20.
    v0 = starts["SOBA", 0]
    assert abs(float(v0.mean())) < 3 / math.sqrt(20)
    assert 0.3 < float(v0.var()) < 2.5


def test_v_start_zero_and_methods_without_a_warm_v(quadratic):
    assert make_objective(quadratic).get_objective()["v0"] is None
    # stocBiO computes v afresh: no start to take.
    _, _, history = run_one("stocBiO", quadratic, n_iter=0,
                            objective=make_objective(quadratic,
                                                     v_start="normal"))
    assert history[0]["v"] is None
    with pytest.raises(ValueError, match="v_start must be one of 'zero', "
                       "'normal', 'uniform', got 'randn'"):
        make_objective(quadratic, v_start="randn")


def test_seeded_starts_are_the_cpu_draws_of_their_seed():
    like = torch.zeros(1000, dtype=torch.float32)
    normal = seeded_start(like, 7, "normal")
    uniform = seeded_start(like, 7, "uniform")
    assert normal.dtype == uniform.dtype == torch.float32
    assert torch.equal(normal, torch.randn(
        1000, generator=torch.Generator().manual_seed(7),
        dtype=torch.float32))
    assert 0 <= float(uniform.min()) and float(uniform.max()) < 1
    assert abs(float(uniform.mean()) - 0.5) < 0.05
