"""Every tensor on the problem's device: the objective's set-up and
evaluation and every solver (set-up and run, in full batch and on
minibatches, on every problem family) with torch's default device set to
one that no problem lives on.

A tensor created without an explicit device then lands on the meta device
(shapes without data), and fails as soon as it meets the problem's data on
the CPU or the host reads it ("Tensor.item() cannot be called on meta
tensors", "Cannot copy out of meta tensor"). On a GPU the same tensor
would land on the CPU: a copy to the device at each use, or a read of the
device when it is compared with a device value. A tensor that the host
needs (a random draw of a CPU generator, a truncation length) is made
with ``device="cpu"`` written out, which passes here.
"""
import math

import pytest
import torch
from conftest import make_objective
from solver_runs import (Iterations, problem_families, set_up_solver,
                         solver_cases)

from benchmark_utils.oracles import HVP_MODES

#: Where a tensor created without a device lands during the checks.
ELSEWHERE = "meta"
#: Outer iterations of each run.
N_ITERATIONS = 4


@pytest.fixture(scope="module")
def objectives():
    """The objective on each problem family (CPU; 'auto' derivatives, the
    closed forms); its own set-up is checked below."""
    return {family: make_objective(problem, hvp_mode="auto")
            for family, problem in problem_families().items()}


def test_a_tensor_made_without_a_device_fails_against_the_problems_data():
    # The check has teeth: the two failures that it turns a misplaced
    # tensor into.
    data = torch.ones(3, device="cpu")
    with torch.device(ELSEWHERE):
        stray = torch.zeros(3)
        with pytest.raises((RuntimeError, NotImplementedError)):
            torch.dot(stray, data).item()
        with pytest.raises((RuntimeError, NotImplementedError)):
            float(torch.randint(3, (), generator=torch.Generator()))
        # Written out, a host draw stays on the host.
        assert torch.randint(3, (), generator=torch.Generator(),
                             device="cpu").device.type == "cpu"


@pytest.mark.parametrize("hvp_mode", ("auto",) + HVP_MODES)
@pytest.mark.parametrize("family", sorted(problem_families()))
def test_objective_set_up_and_evaluation_stay_on_the_problems_device(
        family, hvp_mode):
    problem = problem_families()[family]
    with torch.device(ELSEWHERE):
        objective = make_objective(problem, hvp_mode=hvp_mode)
        start = objective.evaluate_result(**objective.get_one_result())
        moved = objective.get_one_result()
        moved["x"] = moved["x"] + 0.1
        moved["v"] = torch.ones_like(moved["y"])
        elsewhere = objective.evaluate_result(**moved)
    for metrics in (start, elsewhere):
        assert math.isfinite(metrics["value"])
        assert math.isfinite(metrics["hypergrad_norm"])
    assert math.isfinite(elsewhere["linsys_residual"])


@pytest.mark.parametrize("family, name, params", solver_cases())
def test_solver_makes_its_tensors_on_the_problems_device(
        objectives, family, name, params):
    # (The evaluation of a point is checked above, once per family.)
    objective = objectives[family]
    with torch.device(ELSEWHERE):
        solver = set_up_solver(name, params, objective)
        solver.run(Iterations(N_ITERATIONS))
    result = solver.get_result()
    assert result["n_outer"] == N_ITERATIONS
    for key in ("x", "y", "v"):
        if result[key] is not None:
            assert result[key].device == objective.problem.device
            assert torch.isfinite(result[key]).all()
