"""The memory columns (benchmark_utils/memory.py): the state of solvers whose
state is known by hand, counted exactly; the CPU peak of a replayed
iteration, exact on an iteration whose allocations are known and growing
by one iterate per unrolled step for ITD; the CUDA peak with the
allocator's statistics patched (the test machine has no GPU); the columns
on every problem; and a run measured at every point equal to one never
measured."""
import importlib.util
import math

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import (BENCHMARK, ROOT, IterationBudget, get_solver_class,
                      make_objective, run_solver,
                      small_hypercleaning_problem, small_regsel_problem)

from benchmark_utils import memory as memory_module
from benchmark_utils.memory import COLUMNS
from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem
from benchmark_utils.solver import BilevelSolver

FLOAT64 = 8   # bytes
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def synthetic():
    """The LancBiO paper's synthetic problem at n = 1,000 (x and y of size
    n)."""
    return SyntheticProblem(n=1000, kappa=100.0, seed=0)


def memory_after(name, problem, n_iter, **params):
    """The memory columns after ``n_iter`` iterations of solver ``name``
    (closed-form oracles)."""
    objective = make_objective(problem, hvp_mode="closed_form")
    solver, _, _ = run_solver(name, problem, n_iter, objective=objective,
                              **params)
    return solver.get_result()["memory"]


# -- the state, by hand ------------------------------------------------------


def test_lancbio_state_is_its_krylov_basis_and_its_vectors(synthetic):
    n, m = 1000, 80
    memory = memory_after("LancBiO", synthetic, 3, subspace_dim=m,
                          max_subspace_dim=m)
    # LancBiO (Algorithm 2) with its dynamic Lanczos process
    # (benchmark_utils.linalg.krylov.LanczosProcess, allocated for m):
    vectors = 5 * n   # x, y, v, and v_bar and A v_bar of the restart
    basis = (m + 1) * n   # q_1..q_{m+1}: m vectors and the next one
    tridiagonal = 5 * m   # per step: alpha, beta, pivot and what was read
    lower_inverse = m * m   # L^-1 of T_m = L D L^T
    zeros = m   # the zeros a new row of L^-1 starts from
    scalars = 3   # ||start||, the last beta and the last pivot
    expected = FLOAT64 * (vectors + basis + tridiagonal + lower_inverse
                          + zeros + scalars)
    assert memory["memory_state_bytes"] == expected
    assert memory["memory_peak_bytes"] > expected


@pytest.mark.parametrize("dtype, itemsize", [("float64", 8), ("float32", 4)])
def test_soba_state_is_x_y_and_v(quadratic, dtype, itemsize):
    objective = make_objective(quadratic, dtype=dtype)
    solver, _, _ = run_solver("SOBA", quadratic, 3, objective=objective)
    dim_x, dim_y = quadratic.x0.numel(), quadratic.y0.numel()
    memory = solver.get_result()["memory"]
    assert memory["memory_state_bytes"] == itemsize * (dim_x + 2 * dim_y)


def test_saba_state_holds_one_table_entry_per_batch(sample_quadratic):
    # 50 training samples in batches of 10 and 30 validation samples: 5
    # and 3 batches; per training batch d_y g, A v (size of y) and the
    # cross product (size of x), per validation batch d_y f and d_x f,
    # each table with its mean; and the samplers' fixed batches (the
    # int64 indices of every sample, cut once, in each of the three
    # streams: training, validation, and training for second order).
    dim_x, dim_y = sample_quadratic.x0.numel(), sample_quadratic.y0.numel()
    memory = memory_after("SABA", sample_quadratic, 3, batch_size=10)
    tables = (5 + 1) * (2 * dim_y + dim_x) + (3 + 1) * (dim_y + dim_x)
    samplers = 50 + 30 + 50
    assert memory["memory_state_bytes"] == FLOAT64 * (
        dim_x + 2 * dim_y + tables + samplers)


def test_benchopts_objects_are_not_the_state():
    # benchopt sets the solver up through _set_objective, which keeps the
    # objective (and its reference copy of the problem) on the solver: on
    # sparse data, whose storage cannot even be read.
    problem = small_regsel_problem(3, seed=0)
    objective = make_objective(problem)
    solver = get_solver_class("SOBA").get_instance()
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    skip, _ = solver._set_objective(objective)
    assert not skip and solver._objective is objective
    solver.run(IterationBudget(2))
    memory = solver.get_result()["memory"]
    dim_x, dim_y = problem.x0.numel(), problem.y0.numel()
    assert memory["memory_state_bytes"] == FLOAT64 * (dim_x + 2 * dim_y)
    assert memory["memory_peak_bytes"] > memory["memory_state_bytes"]


# -- the CPU peak: one replayed iteration ---------------------------------


class Scratch(BilevelSolver):
    """A solver whose iteration allocates a known scratch buffer, releases
    it, and copies its iterates."""

    name = "scratch"
    parameters = {"n_rows": [16]}

    def step(self, x, y, v):
        scratch = torch.zeros(self.n_rows, y.numel(), dtype=y.dtype)
        del scratch
        return x.clone(), y.clone(), v.clone()


def test_cpu_peak_is_the_state_plus_the_iterations_largest_excess(
        quadratic):
    objective = make_objective(quadratic)
    solver = Scratch.get_instance(n_rows=16)
    solver.set_objective(**objective.get_objective())
    callback = IterationBudget(2, solver)
    solver.run(callback)
    dim_x, dim_y = quadratic.x0.numel(), quadratic.y0.numel()
    state = FLOAT64 * (dim_x + 2 * dim_y)
    for result in callback.history:
        assert result["memory"] == dict(
            memory_state_bytes=state,
            # The scratch buffer (16 rows of the size of y) is larger
            # than the copies that follow it.
            memory_peak_bytes=state + FLOAT64 * 16 * dim_y)


class FailsAtTwo(Scratch):
    """Scratch, whose third iteration raises."""

    name = "fails-at-two"

    def step(self, x, y, v):
        if self.n_outer == 2:
            raise MemoryError("no memory for this iteration")
        return super().step(x, y, v)


def test_a_replay_that_fails_leaves_that_peak_unknown(quadratic):
    objective = make_objective(quadratic)
    solver = FailsAtTwo.get_instance(n_rows=16)
    solver.set_objective(**objective.get_objective())
    # Measured after 0, 1 and 2 iterations; the run stops before the
    # third.
    callback = IterationBudget(2, solver)
    solver.run(callback)
    peaks = [result["memory"]["memory_peak_bytes"]
             for result in callback.history]
    assert peaks[0] == peaks[1] > 0 and math.isnan(peaks[2])
    assert callback.history[2]["memory"]["memory_state_bytes"] > 0


def test_replays_take_benchopts_points_and_thin_out_every_iteration(
        monkeypatch, quadratic):
    replayed = []

    def excess(solver):
        replayed.append(solver.n_outer)
        return 0

    monkeypatch.setattr(memory_module, "iteration_excess_bytes", excess)
    # benchopt's evaluation points (a factor 1.5 apart, at least one
    # iteration): every one is replayed.
    points = [0, 1, 2, 3, 4, 6, 9, 13, 19, 28]
    run_solver("SOBA", quadratic, max(points), record=points)
    assert replayed == points
    # Measured at every iteration: replayed a factor 1.2 apart.
    replayed.clear()
    run_solver("SOBA", quadratic, 20, record=True)
    assert replayed == [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 18]


def test_itd_peak_grows_by_one_iterate_per_unrolled_step(synthetic):
    n = synthetic.y0.numel()
    memories = {n_steps: memory_after("ITD", synthetic, 2,
                                      n_inner_steps=n_steps)
                for n_steps in (5, 10, 20)}
    # The reverse pass keeps y_0..y_{T-1}; the state is x and y only.
    for n_steps, memory in memories.items():
        assert memory["memory_state_bytes"] == FLOAT64 * 2 * n
        assert (memory["memory_peak_bytes"]
                - memories[5]["memory_peak_bytes"]) == (
            FLOAT64 * n * (n_steps - 5))


def test_measuring_leaves_the_run_unchanged(sample_quadratic):
    # A stochastic solver with a memory per batch: measured (its next
    # iteration replayed) at every point, or only at the end.
    runs = [run_solver("SABA", sample_quadratic, 12, record=record,
                       batch_size=10)[0].get_result()
            for record in (True, False)]
    assert torch.equal(runs[0]["x"], runs[1]["x"])
    assert torch.equal(runs[0]["v"], runs[1]["v"])
    assert runs[0]["counts"] == runs[1]["counts"]


# -- the CUDA peak: the allocator's statistics, patched ----------------------


class FakeAllocator:
    """CUDA's allocator statistics: bytes allocated, and their peak since
    the last reset."""

    def __init__(self, allocated):
        self.allocated = self.peak = allocated
        self.resets = 0

    def allocate(self, n_bytes):
        self.allocated += n_bytes
        self.peak = max(self.peak, self.allocated)

    def free(self, n_bytes):
        self.allocated -= n_bytes

    def reset(self, device=None):
        self.peak = self.allocated
        self.resets += 1


def test_cuda_peak_counts_the_iterations_and_never_the_evaluations(
        monkeypatch, quadratic):
    data, kept, scratch = 10**6, 1000, 5000
    allocator = FakeAllocator(data)   # the problem and reference copies
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated",
                        lambda device=None: allocator.allocated)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated",
                        lambda device=None: allocator.peak)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats",
                        allocator.reset)
    objective = make_objective(quadratic)
    solver, _, _ = run_solver("SOBA", quadratic, 0, objective=objective)
    monkeypatch.setattr(Oracles, "device", property(lambda self: CUDA))
    soba_step = solver.step

    def step(x, y, v):
        # A table kept from the first iteration on, and a scratch buffer.
        if solver.n_outer == 0:
            allocator.allocate(kept)
        allocator.allocate(scratch)
        allocator.free(scratch)
        return soba_step(x, y, v)

    solver.step = step
    evaluated_at, cache, peaks = (0, 1, 3), [], []

    def callback():
        if callback.calls in evaluated_at:
            peaks.append(solver.get_result()["memory"]["memory_peak_bytes"])
            # An evaluation: a large transient solve, and a warm start
            # kept until the next one replaces it (700, then 900 bytes).
            allocator.allocate(10**7)
            allocator.free(10**7)
            if cache:
                allocator.free(cache.pop())
            cache.append(700 + 200 * len(peaks[1:]))
            allocator.allocate(cache[-1])
        callback.calls += 1
        return callback.calls <= 4

    callback.calls = 0
    solver.run(callback)
    assert peaks == [0, kept + scratch, kept + scratch]
    # Reset at the first evaluation point and after each evaluation; not
    # after the iterations between them.
    assert allocator.resets == 1 + len(evaluated_at)


def test_cpu_run_reads_no_cuda_statistics(monkeypatch, quadratic):
    def unavailable(device=None):
        raise AssertionError("a CUDA statistic was read on the CPU")

    for name in ("memory_allocated", "max_memory_allocated",
                 "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, unavailable)
    solver, _, _ = run_solver("SOBA", quadratic, 3, record=True)
    assert solver.get_result()["memory"]["memory_peak_bytes"] > 0


# -- every problem --------------------------------------------------------


PROBLEMS = {
    "quadratic": lambda: QuadraticProblem(dim_x=5, dim_y=8, seed=0),
    "quadratic_samples": "sample_quadratic",
    "synthetic": lambda: SyntheticProblem(n=30, kappa=10.0, seed=0),
    "hyper-cleaning": small_hypercleaning_problem,
    "regularization selection": lambda: small_regsel_problem(3, seed=0),
}


@pytest.mark.parametrize("solver", sorted(
    solver.name for solver in BENCHMARK.get_solvers()))
def test_every_solvers_iteration_can_be_replayed(quadratic, solver):
    # Measured at the start and after one iteration: two replays.
    _, _, callback = run_solver(solver, quadratic, 1, record=True)
    state = FLOAT64 * (quadratic.x0.numel() + quadratic.y0.numel())
    for result in callback.history:
        memory = result["memory"]
        assert memory["memory_state_bytes"] >= state
        assert (memory["memory_state_bytes"] < memory["memory_peak_bytes"]
                < math.inf)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_memory_columns_are_finite_on_every_problem(name, request):
    make = PROBLEMS[name]
    problem = (request.getfixturevalue(make) if isinstance(make, str)
               else make())
    _, objective, callback = run_solver("SOBA", problem, 2, record=True)
    for result in callback.history:
        metrics = objective.evaluate_result(**result)
        state, peak = (metrics[column] for column in COLUMNS)
        dim_x, dim_y = problem.x0.numel(), problem.y0.numel()
        assert state == FLOAT64 * (dim_x + 2 * dim_y)
        assert math.isfinite(peak) and peak > state
    # The start, which no solver ran to: no memory to report.
    start = objective.evaluate_result(**objective.get_one_result())
    assert all(math.isnan(start[column]) for column in COLUMNS)


def test_memory_table_script_has_every_solver_and_lancbios_basis():
    spec = importlib.util.spec_from_file_location(
        "memory_table", ROOT / "scripts" / "memory_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    n, m = 20, 10
    rows = script.table(BENCHMARK, [SyntheticProblem(n=n, kappa=10.0)],
                        False, None, 1)
    names = {label.split("[")[0] for label in rows}
    assert names == {solver.name for solver in BENCHMARK.get_solvers()}
    (state, peak), = rows[f"LancBiO[max_subspace_dim={m}]"]
    # As in the LancBiO test above, with a basis sized for m = 10.
    assert state == FLOAT64 * (5 * n + (m + 1) * n + 5 * m + m * m + m + 3)
    assert peak > state


def test_memory_table_on_the_perceptron_counts_its_parameters():
    from neural_problems import small_mlp_hypercleaning_problem

    spec = importlib.util.spec_from_file_location(
        "memory_table", ROOT / "scripts" / "memory_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    problem = small_mlp_hypercleaning_problem()
    rows = script.table(BENCHMARK, [problem], False, None, 1,
                        hvp_mode="reverse")
    # AID-exact's exact solves need a convex lower level: it skips it.
    assert "AID-exact" not in rows and "SOBA" in rows
    (state, peak), = rows["SOBA"]
    # SOBA keeps x (one weight per training sample), y and v.
    assert state == FLOAT64 * (problem.x0.numel() + 2 * problem.y0.numel())
    assert peak > state
