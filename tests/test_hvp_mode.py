"""The objective's hvp_mode='auto': the faster mode, measured per problem."""
import pytest
import torch
from conftest import make_objective

from benchmark_utils import oracle_cost
from benchmark_utils.oracle_cost import select_hvp_mode
from benchmark_utils.problems.quadratic import QuadraticProblem


class ReverseOnlySquare(torch.autograd.Function):
    """u -> u ** 2 with a backward rule and no forward-mode rule: forward
    mode over it fails, as it does over some sparse products."""

    @staticmethod
    def forward(u):
        return u ** 2

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad_output):
        (u,) = ctx.saved_tensors
        return 2 * ReverseOnlyTimes.apply(u, grad_output)


class ReverseOnlyTimes(torch.autograd.Function):
    @staticmethod
    def forward(a, b):
        return a * b

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved_tensors
        return grad_output * b, grad_output * a


class ReverseOnlyProblem(QuadraticProblem):
    # Its g is no longer the quadratic's: the closed form would be wrong.
    has_closed_form_derivatives = False

    def g(self, x, y):
        return super().g(x, y) + torch.sum(ReverseOnlySquare.apply(y))


def fake_measurements(times_per_mode):
    """A stand-in for measure_oracle_costs: HVP time per mode, in seconds."""
    def measure(problem, mode, **options):
        return dict(time_grad=1.0, r_hvp=times_per_mode[mode], r_cross=1.0,
                    r_hvp_and_cross=2.0)
    return measure


def test_auto_keeps_the_faster_autodiff_mode(monkeypatch):
    problem = ReverseOnlyProblem(dim_x=3, dim_y=4)
    for times, expected in [({"reverse": 2.0, "forward": 3.0}, "reverse"),
                            ({"reverse": 2.0, "forward": 1.5}, "forward")]:
        monkeypatch.setattr(oracle_cost, "measure_oracle_costs",
                            fake_measurements(times))
        mode, costs = select_hvp_mode(problem)
        assert mode == expected
        assert costs["r_hvp"] == times[expected]


def test_auto_passes_over_a_mode_that_cannot_differentiate_the_problem():
    problem = ReverseOnlyProblem(dim_x=3, dim_y=4)
    with pytest.raises(RuntimeError):
        oracle_cost.measure_oracle_costs(problem, "forward", n_samples=1)
    mode, costs = select_hvp_mode(problem, n_samples=1)
    assert mode == "reverse" and costs["r_hvp"] > 0
    objective = make_objective(problem, hvp_mode="auto")
    assert objective.resolved_hvp_mode == "reverse"
    oracles = objective.get_objective()["oracles"]
    v = torch.ones(4)
    # The problem's Hessian is H + 2 I.
    torch.testing.assert_close(oracles.hvp(problem.x0, problem.y0, v),
                               problem.hessian @ v + 2 * v)
