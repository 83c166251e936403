"""The problems' closed-form second-order products against automatic
differentiation, and how the oracle layer offers them."""
import itertools

import pytest
import torch
from conftest import (make_objective, point_near_start,
                      small_hypercleaning_problem, small_regsel_problem)

from benchmark_utils import oracle_cost
from benchmark_utils.metrics import ReferenceMetrics
from benchmark_utils.oracle_cost import select_hvp_mode
from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.quadratic_samples import SampleQuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem


PROBLEMS = {
    "quadratic": lambda: QuadraticProblem(dim_x=7, dim_y=9),
    "synthetic": lambda: SyntheticProblem(n=12, kappa=50.0, seed=3),
    "hypercleaning": small_hypercleaning_problem,
    "regsel-binary-sparse": lambda: small_regsel_problem(2, dense=False),
    "regsel-binary-dense": lambda: small_regsel_problem(2, dense=True),
    "regsel-multiclass-sparse": lambda: small_regsel_problem(5, dense=False),
    "regsel-multiclass-dense": lambda: small_regsel_problem(5, dense=True),
}


@pytest.mark.parametrize("name", PROBLEMS)
def test_closed_form_products_equal_automatic_differentiation(name):
    problem = PROBLEMS[name]()
    assert problem.has_closed_form_derivatives
    x, y, v = point_near_start(problem, 1)
    closed_form = Oracles(problem, "closed_form")
    autodiff = Oracles(problem, "reverse")
    u = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    expected_hvp = autodiff.hvp(x, y, v)
    expected_cross = autodiff.cross(x, y, v)
    fused_hvp, fused_cross = closed_form.hvp_and_cross(x, y, v)
    transpose = closed_form.cross_transpose(x, y, u)
    for value, expected in [(closed_form.hvp(x, y, v), expected_hvp),
                            (closed_form.cross(x, y, v), expected_cross),
                            (fused_hvp, expected_hvp),
                            (fused_cross, expected_cross),
                            (transpose, autodiff.cross_transpose(x, y, u))]:
        assert float(torch.linalg.vector_norm(expected)) > 1e-3
        torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-14)
    # The transpose is the adjoint of the cross product: <J^T v, u> =
    # <v, J u>.
    assert float(torch.dot(expected_cross, u)) == pytest.approx(
        float(torch.dot(v, transpose)), rel=1e-10)
    # One call of each, counted as the autodiff modes count them.
    assert closed_form.counts() == dict(n_grad=0, n_hvp=2, n_cross=3,
                                        n_epochs=4)


class SquaredNormProblem(BilevelProblem):
    """g = 1/2 ||y - x||^2, f = 1/2 ||y||^2: no closed-form products."""

    name = "squared-norm"

    def __init__(self, dim):
        self.x0, self.y0 = torch.ones(dim), torch.zeros(dim)

    def f(self, x, y):
        return 0.5 * torch.dot(y, y)

    def g(self, x, y):
        return 0.5 * torch.sum((y - x) ** 2)


def test_closed_form_mode_on_a_problem_without_it_is_a_clear_error():
    with pytest.raises(ValueError, match="hvp_mode='closed_form' needs a "
                       "problem that supplies.*the squared-norm problem "
                       "does not"):
        Oracles(SquaredNormProblem(3), "closed_form")


def fake_measurements(r_hvp_per_mode, measured):
    def measure(problem, mode, **options):
        measured.append(mode)
        return dict(time_grad=1.0, r_hvp=r_hvp_per_mode[mode], r_cross=1.0,
                    r_hvp_and_cross=2.0)
    return measure


def test_auto_takes_the_closed_form_where_the_problem_has_it(monkeypatch):
    # The closed form without timing the others (however slow its fake
    # measurement); the autodiff modes compete where there is none.
    costs = {"reverse": 2.0, "forward": 3.0, "closed_form": 9.0}
    for problem, expected_modes, expected in [
            (small_hypercleaning_problem(), ["closed_form"], "closed_form"),
            (SquaredNormProblem(3), ["reverse", "forward"], "reverse")]:
        measured = []
        monkeypatch.setattr(oracle_cost, "measure_oracle_costs",
                            fake_measurements(costs, measured))
        mode, _ = select_hvp_mode(problem)
        assert measured == expected_modes and mode == expected


def test_objective_runs_solvers_on_closed_form_products():
    problem = small_regsel_problem(3, dense=False)
    objective = make_objective(problem, hvp_mode="closed_form")
    oracles = objective.get_objective()["oracles"]
    assert oracles.hvp_mode == "closed_form"
    x, y, v = point_near_start(problem, 2)
    torch.testing.assert_close(oracles.hvp(x, y, v),
                               Oracles(problem).hvp(x, y, v),
                               rtol=1e-10, atol=1e-14)


def test_reference_metrics_use_the_closed_form_where_there_is_one():
    assert ReferenceMetrics(
        small_hypercleaning_problem()).oracles.hvp_mode == "closed_form"
    assert ReferenceMetrics(
        SquaredNormProblem(3)).oracles.hvp_mode == "reverse"


class ShiftedQuadratic(QuadraticProblem):
    """g changed, closed forms inherited: they no longer match."""

    def g(self, x, y):
        return super().g(x, y) + torch.sum(y ** 2)


class ShiftedQuadraticWithoutClosedForm(ShiftedQuadratic):
    has_closed_form_derivatives = False


def test_a_closed_form_that_disagrees_with_autodiff_stops_the_set_up():
    with pytest.raises(ValueError, match="quadratic problem's "
                       "closed_form_grad_inner disagrees with automatic "
                       "differentiation.*has_closed_form_derivatives = False"):
        make_objective(ShiftedQuadratic(dim_x=3, dim_y=4))
    objective = make_objective(
        ShiftedQuadraticWithoutClosedForm(dim_x=3, dim_y=4), hvp_mode="auto")
    assert objective.resolved_hvp_mode in ("reverse", "forward")


CHECKED_DERIVATIVES = ("grad_inner", "grad_inner_x", "grad_inner_xy",
                       "grad_outer", "hvp", "cross", "cross_transpose")


@pytest.mark.parametrize("name", CHECKED_DERIVATIVES)
@pytest.mark.parametrize("on_batch", [False, True])
def test_the_set_up_check_catches_each_wrong_closed_form(name, on_batch):
    # One closed form off by 1e-6 relative (on minibatches only, for
    # on_batch), every other one right: the check names that one.
    problem = SampleQuadraticProblem(dim_x=3, dim_y=4, n_train=6, n_val=4)
    right = getattr(problem, f"closed_form_{name}")

    def wrong(*args):
        value = right(*args)
        batch_given = len(args) == (4 if name in ("hvp", "cross",
                                                  "cross_transpose") else 3)
        if on_batch and not batch_given:
            return value
        if isinstance(value, tuple):
            return value[0], value[1] * (1 + 1e-6)
        return value * (1 + 1e-6)
    setattr(problem, f"closed_form_{name}", wrong)
    where = " on a minibatch" if on_batch else ""
    # A fused call shares the code of its parts: its own closed form is
    # the one checked under its name.
    with pytest.raises(ValueError, match=f"closed_form_{name} disagrees "
                       f"with automatic differentiation{where} "):
        make_objective(problem)


GRADIENT_PROBLEMS = dict(PROBLEMS, **{
    "quadratic-samples": lambda: SampleQuadraticProblem(
        dim_x=5, dim_y=8, n_train=20, n_val=10)})


@pytest.mark.parametrize("name", GRADIENT_PROBLEMS)
def test_closed_form_gradients_equal_automatic_differentiation(name):
    problem = GRADIENT_PROBLEMS[name]()
    closed_form = Oracles(problem, "closed_form")
    autodiff = Oracles(problem, "reverse")
    batches = [(None, None)]
    if problem.n_inner_samples is not None:
        generator = torch.Generator().manual_seed(4)
        # A sample drawn twice counts twice, in both.
        batches.append(tuple(
            torch.randint(n, (max(2, n // 3),), generator=generator)
            for n in (problem.n_inner_samples, problem.n_outer_samples)))
    for seed, (inner, outer) in itertools.product((1, 2), batches):
        x, y, _ = point_near_start(problem, seed)
        pairs = [
            (closed_form.grad_inner(x, y, inner),
             autodiff.grad_inner(x, y, inner)),
            (closed_form.grad_inner_x(x, y, inner),
             autodiff.grad_inner_x(x, y, inner)),
            *zip(closed_form.grad_inner_xy(x, y, inner),
                 autodiff.grad_inner_xy(x, y, inner)),
            *zip(closed_form.grad_outer(x, y, outer),
                 autodiff.grad_outer(x, y, outer)),
        ]
        for got, expected in pairs:
            scale = float(torch.linalg.vector_norm(expected))
            # d_x f is exactly 0 on the GLMs (f does not depend on x).
            assert float(torch.linalg.vector_norm(got - expected)) <= (
                1e-12 * max(scale, 1e-300)), name
    # Counted as the autodiff modes count them.
    assert closed_form.counts() == autodiff.counts()
