"""The oracle layer against finite differences and against closed forms."""
import pytest
import torch

from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem

MODES = ["reverse", "forward"]


def central_difference(func, point, direction, eps=1e-6):
    return (func(point + eps * direction) - func(point - eps * direction)) / (
        2 * eps)


@pytest.fixture(scope="module")
def synthetic():
    return SyntheticProblem(n=30, kappa=50.0, seed=3)


@pytest.fixture(scope="module")
def quadratic():
    return QuadraticProblem(dim_x=7, dim_y=11, kappa=20.0, seed=4)


def random_point(problem, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(problem.x0.shape, generator=gen)
    y = torch.randn(problem.y0.shape, generator=gen)
    u = torch.randn(problem.x0.shape, generator=gen)
    v = torch.randn(problem.y0.shape, generator=gen)
    return x, y, u, v


@pytest.mark.parametrize("mode", MODES)
def test_oracles_match_finite_differences(synthetic, mode):
    oracles = Oracles(synthetic, hvp_mode=mode)
    f, g = synthetic.f, synthetic.g
    x, y, u, v = random_point(synthetic, 0)
    grad_x_f, grad_y_f = oracles.grad_outer(x, y)
    # First order: directional derivatives of the function values.
    torch.testing.assert_close(
        torch.dot(grad_x_f, u), central_difference(lambda s: f(s, y), x, u),
        rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(
        torch.dot(grad_y_f, v), central_difference(lambda s: f(x, s), y, v),
        rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(
        torch.dot(oracles.grad_inner(x, y), v),
        central_difference(lambda s: g(x, s), y, v), rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(
        torch.dot(oracles.grad_inner_x(x, y), u),
        central_difference(lambda s: g(s, y), x, u), rtol=1e-7, atol=1e-8)
    # Second order: differences of the exact gradients.
    hvp_fd = central_difference(lambda s: oracles._grad_g_y(x, s), y, v)
    cross_fd = central_difference(lambda s: oracles._grad_g_x(x, s), y, v)
    torch.testing.assert_close(oracles.hvp(x, y, v), hvp_fd,
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(oracles.cross(x, y, v), cross_fd,
                               rtol=1e-6, atol=1e-6)
    hvp, cross = oracles.hvp_and_cross(x, y, v)
    torch.testing.assert_close(hvp, hvp_fd, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(cross, cross_fd, rtol=1e-6, atol=1e-6)
    # The transposed cross product: d_y g's change along x.
    torch.testing.assert_close(
        oracles.cross_transpose(x, y, u),
        central_difference(lambda s: oracles._grad_g_y(s, y), x, u),
        rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_oracles_match_quadratic_closed_form(quadratic, mode):
    q = quadratic
    oracles = Oracles(q, hvp_mode=mode)
    x, y, _, v = random_point(q, 1)
    grad_x_f, grad_y_f = oracles.grad_outer(x, y)
    close = dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_x_f, q.rho * x, **close)
    torch.testing.assert_close(grad_y_f, y - q.target, **close)
    torch.testing.assert_close(
        oracles.grad_inner(x, y), q.hessian @ y + q.coupling @ x + q.shift,
        **close)
    torch.testing.assert_close(oracles.grad_inner_x(x, y), q.coupling.T @ y,
                               **close)
    grad_x_g, grad_y_g = oracles.grad_inner_xy(x, y)
    torch.testing.assert_close(grad_x_g, q.coupling.T @ y, **close)
    torch.testing.assert_close(
        grad_y_g, q.hessian @ y + q.coupling @ x + q.shift, **close)
    torch.testing.assert_close(oracles.hvp(x, y, v), q.hessian @ v, **close)
    torch.testing.assert_close(oracles.cross(x, y, v), q.coupling.T @ v,
                               **close)
    hvp, cross = oracles.hvp_and_cross(x, y, v)
    torch.testing.assert_close(hvp, q.hessian @ v, **close)
    torch.testing.assert_close(cross, q.coupling.T @ v, **close)
    u = torch.ones(x.shape)
    torch.testing.assert_close(oracles.cross_transpose(x, y, u),
                               q.coupling @ u, **close)


def test_each_call_adds_to_its_own_counter(quadratic):
    oracles = Oracles(quadratic)
    x, y, _, v = random_point(quadratic, 2)
    oracles.grad_inner(x, y)
    oracles.grad_outer(x, y)
    oracles.grad_inner_x(x, y)
    oracles.grad_inner_xy(x, y)
    # Three of the four gradients are of g: three passes over its data.
    assert oracles.counts() == dict(n_grad=4, n_hvp=0, n_cross=0,
                                    n_epochs=3)
    oracles.hvp(x, y, v)
    oracles.hvp(x, y, v)
    oracles.cross(x, y, v)
    oracles.cross_transpose(x, y, x)
    assert oracles.counts() == dict(n_grad=4, n_hvp=2, n_cross=2,
                                    n_epochs=7)
    # The fused call reads its data once.
    oracles.hvp_and_cross(x, y, v)
    assert oracles.counts() == dict(n_grad=4, n_hvp=3, n_cross=3,
                                    n_epochs=8)
    oracles.value_inner(x, y)
    oracles.value_outer(x, y)
    assert oracles.counts() == dict(n_grad=4, n_hvp=3, n_cross=3,
                                    n_epochs=8)
    oracles.reset()
    assert oracles.counts() == dict(n_grad=0, n_hvp=0, n_cross=0,
                                    n_epochs=0)


def test_unknown_hvp_mode_is_a_clear_error(quadratic):
    with pytest.raises(ValueError, match="hvp_mode must be one of"):
        Oracles(quadratic, hvp_mode="backward")


def test_problem_moves_to_float32(quadratic):
    moved = quadratic.to("cpu", torch.float32)
    assert moved.hessian.dtype == torch.float32
    assert moved.x0.dtype == torch.float32
    assert quadratic.hessian.dtype == torch.float64   # the original is kept
    oracles = Oracles(moved)
    x, y = moved.x0, moved.y0
    torch.testing.assert_close(
        oracles.hvp(x, y, y), (quadratic.hessian @ quadratic.y0).float(),
        rtol=1e-5, atol=1e-4)


def hessian_at_cases():
    """(problem, mode) pairs: autodiff on the synthetic problem, and the
    closed forms whose curvature weights are computed once."""
    from conftest import small_regsel_problem
    from benchmark_utils.problems.hypercleaning import HyperCleaningProblem
    gen = torch.Generator().manual_seed(2)
    features = torch.randn(30, 6, generator=gen)
    labels = torch.randint(0, 10, (30,), generator=gen)
    hyperclean = HyperCleaningProblem(
        features, labels, features[:10], labels[:10], features[:10],
        labels[:10], torch.zeros(30, dtype=torch.bool), reg=0.01)
    synthetic = SyntheticProblem(n=30, kappa=50.0, seed=3)
    return [(synthetic, "reverse"), (synthetic, "forward"),
            (hyperclean, "closed_form"),
            (small_regsel_problem(3, seed=1), "closed_form")]


@pytest.mark.parametrize("case", range(4))
def test_hessian_at_a_point_equals_each_hvp_and_counts_each_call(case):
    problem, mode = hessian_at_cases()[case]
    oracles = Oracles(problem, mode)
    gen = torch.Generator().manual_seed(case)
    x = problem.x0 + torch.randn(problem.x0.shape, generator=gen)
    y = torch.randn(problem.y0.shape, generator=gen)
    product = oracles.hessian_at(x, y)
    for _ in range(3):
        u = torch.randn(problem.y0.shape, generator=gen)
        torch.testing.assert_close(product(u), oracles.hvp(x, y, u),
                                   rtol=1e-12, atol=1e-14)
    assert oracles.n_hvp == 6
