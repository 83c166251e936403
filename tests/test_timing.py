"""Fair timing: the device is synchronised before every timing point on CUDA
(torch.cuda.synchronize patched: the test machine has no GPU), nothing is
added on the CPU, and the measured oracle costs of the work axis."""
import types

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import IterationBudget, get_solver_class, make_objective

from benchmark_utils import oracle_cost
from benchmark_utils.device import synchronized
from benchmark_utils.oracle_cost import measure_oracle_costs
from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.quadratic import QuadraticProblem

CUDA = torch.device("cuda")


@pytest.fixture
def events(monkeypatch):
    """What happened, in order: each torch.cuda.synchronize call is
    recorded as ('sync', device)."""
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize",
                        lambda device=None: events.append(("sync", device)))
    return events


@pytest.fixture(scope="module")
def quadratic():
    return QuadraticProblem(dim_x=7, dim_y=11, kappa=20.0, seed=4)


def test_cuda_callback_synchronises_before_each_timing_point(events):
    answers = iter([True, True, False])

    def callback():
        events.append("callback")
        return next(answers)

    wrapped = synchronized(callback, CUDA)
    assert [wrapped(), wrapped(), wrapped()] == [True, True, False]
    assert events == [("sync", CUDA), "callback"] * 3


def test_cpu_callback_is_returned_unchanged(events):
    def callback():
        return True

    assert synchronized(callback, torch.device("cpu")) is callback
    assert events == []


def test_solver_loop_synchronises_before_every_callback(monkeypatch,
                                                        quadratic):
    """A real solver's loop, its oracles claiming to live on CUDA: every
    evaluation point (callback) is preceded by exactly one synchronisation,
    and no other synchronisation happens inside the timed iterations."""
    objective = make_objective(quadratic)
    solver = get_solver_class("LancBiO").get_instance(step_size_outer=0.5)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    callback = IterationBudget(6)
    syncs = []
    monkeypatch.setattr(torch.cuda, "synchronize",
                        lambda device=None: syncs.append((device,
                                                          callback.calls)))
    monkeypatch.setattr(Oracles, "device", property(lambda self: CUDA))
    solver.run(callback)
    assert callback.calls == 7   # the start point and 6 iterations
    # Before the k-th callback call, the device was synchronised once.
    assert syncs == [(CUDA, k) for k in range(7)]


def test_timed_oracle_calls_are_synchronised_on_both_sides(events):
    def call():
        events.append("call")

    oracle_cost._time_calls(call, 3, CUDA)
    assert events == [("sync", CUDA), "call", "call", "call", ("sync", CUDA)]
    events.clear()
    oracle_cost._time_calls(call, 2, torch.device("cpu"))
    assert events == ["call", "call"]


def test_oracle_costs_are_ratios_of_median_times(monkeypatch, quadratic):
    """With a clock that each oracle call advances by a fixed duration
    (gradient 1 ms, HVP 2.5, cross 1.5, fused 3), the costs are exact."""
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(oracle_cost, "time",
                        types.SimpleNamespace(perf_counter=lambda: clock.now))
    for name, seconds in [("grad_inner", 1e-3), ("hvp", 2.5e-3),
                          ("cross", 1.5e-3), ("hvp_and_cross", 3e-3)]:
        def advance(self, *args, seconds=seconds):
            clock.now += seconds
        monkeypatch.setattr(Oracles, name, advance)
    costs = measure_oracle_costs(quadratic, n_samples=3)
    assert costs == pytest.approx(dict(time_grad=1e-3, r_hvp=2.5, r_cross=1.5,
                                       r_hvp_and_cross=3.0))


def test_measured_costs_reach_the_results(quadratic):
    objective = make_objective(quadratic)
    costs = objective.oracle_costs
    # An HVP costs at least about one gradient and, in reverse mode on this
    # small dense problem, a few at most.
    assert 0.5 < costs["r_hvp"] < 10 and 0.5 < costs["r_cross"] < 10
    metrics = objective.evaluate_result(**objective.get_one_result())
    assert metrics["r_hvp"] == costs["r_hvp"]
    assert metrics["r_cross"] == costs["r_cross"]


@pytest.mark.parametrize("name, value", [("n_samples", 0),
                                         ("min_sample_time", -1.0)])
def test_bad_measurement_settings_are_clear_errors(quadratic, name, value):
    with pytest.raises(ValueError, match=name):
        measure_oracle_costs(quadratic, **{name: value})
