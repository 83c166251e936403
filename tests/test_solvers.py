"""The contract every solver of the benchmark meets, driven by one table,
``CASES``, with a row per solver (AmIGO has one per linear solver, GD and
CG). For each row:

- its oracle counts per outer iteration are exact;
- the same seed gives the same curve, from a fresh instance and from a
  second run of the same instance; another seed gives another curve if and
  only if the solver draws at random (TTSA's and BSA's truncations);
- bad parameters fail at set-up with a clear error;
- it converges on the quadratic problem;
- its curve label, benchopt's ``str`` of the instance, built from
  ``parameter_template``, names every parameter: two settings that differ
  in one parameter never share a label.

What is specific to one method is tested in the file that covers it:
test_lancbio.py, test_neumann.py (TTSA, stocBiO, BSA, STABLE),
test_first_order_solvers.py (HJFBiO, F2SA, BOME, PBGD),
test_implicit_and_unrolled.py (ITD, AID-exact) and test_solver_loop.py
(the loop that every solver shares).
"""
from dataclasses import dataclass, field
from typing import NamedTuple

import pytest
import torch
from benchopt.utils.parametrized_name_mixin import product_param
from benchopt.utils.run_context import RunContext
from conftest import (BENCHMARK, assert_counts_per_iteration,
                      get_solver_class, hypergrad_norm, hypergrad_ratio,
                      make_objective, run_solver)

from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem


class Counts(NamedTuple):
    """With ``params``, each of ``n_iter`` outer iterations makes exactly
    ``per_iteration`` oracle calls (the first one ``first``, when given)."""
    params: dict
    per_iteration: dict
    n_iter: int
    first: dict = None


class Decreases(NamedTuple):
    """With ``params``, ||grad phi|| falls ``factor``-fold from its value at
    the start within ``n_iter`` iterations on ``problem`` (a fixture)."""
    params: dict
    n_iter: int
    factor: float
    problem: str = "quadratic"

    def assert_met(self, solver, objective):
        assert hypergrad_ratio(solver, objective) < 1 / self.factor


class Reaches(NamedTuple):
    """With ``params``, ||grad phi|| < ``bound`` after ``n_iter`` iterations
    on ``problem`` (a fixture)."""
    params: dict
    n_iter: int
    bound: float
    problem: str = "quadratic"

    def assert_met(self, solver, objective):
        assert hypergrad_norm(solver, objective) < self.bound


class BadParameters(NamedTuple):
    """``params`` fail at set-up with a ValueError matching ``message``."""
    params: dict
    message: str


class Curve(NamedTuple):
    """The run whose x history the seed tests compare: ``params``,
    ``n_iter`` iterations."""
    params: dict
    n_iter: int


@dataclass(frozen=True)
class SolverCase:
    """A row of the table: solver ``name`` and what it must satisfy.

    ``random``: whether its iterates depend on the seed. ``label_base``: the
    setting from which each label pair changes one parameter (defaults for
    the others); every pair it gives must be valid."""
    name: str
    counts: tuple
    converges: tuple
    bad_parameters: tuple
    curve: Curve
    random: bool = False
    label_base: dict = field(default_factory=dict)


CASES = {
    "LancBiO": SolverCase(
        "LancBiO",
        counts=(
            # m = 1 throughout: a restart, so one more HVP, every iteration
            # (other m: test_lancbio.py).
            Counts({"subspace_dim": 1, "max_subspace_dim": 1,
                    "subspace_growth": 1.0},
                   dict(n_grad=6, n_hvp=2, n_cross=1, n_epochs=8), 9),
        ),
        converges=(Reaches({}, 200, 1e-6),),
        bad_parameters=(
            BadParameters({"step_size_outer": 0.0},
                          "step_size_outer must be"),
            BadParameters({"step_size_inner": -1e-3},
                          "step_size_inner must be"),
            BadParameters({"n_inner_steps": -1},
                          "n_inner_steps must be an integer"),
            BadParameters({"subspace_dim": 0},
                          "subspace_dim must be an integer >= 1"),
            BadParameters({"subspace_dim": 5, "max_subspace_dim": 2},
                          "max_subspace_dim must be an integer >= 5"),
            BadParameters({"subspace_growth": 0.5},
                          "subspace_growth must be a finite number >= 1"),
            BadParameters({"n_warmup_steps": 3},
                          "n_warmup_steps must be an integer >= 0 and <= 0"),
            BadParameters({"growth_every": 0},
                          "growth_every must be an integer >= 1"),
            BadParameters({"orthogonality_tol": 0.0},
                          "orthogonality_tol must be a finite number > 0"),
        ),
        curve=Curve({}, 15),
        # n_warmup_steps <= subspace_dim - 1: m = 2 lets it change to 1;
        # the schedule in numbers, which change to other numbers.
        label_base={"subspace_dim": 2, "max_subspace_dim": 10,
                    "subspace_growth": 1.3, "growth_every": 50},
    ),
    "SubBiO": SolverCase(
        "SubBiO",
        counts=(
            Counts({"n_inner_steps": 3},
                   dict(n_grad=4, n_hvp=3, n_cross=1, n_epochs=7), 9),
        ),
        converges=(Decreases({}, 200, 100),),
        bad_parameters=(
            BadParameters({"step_size_linsys": float("nan")},
                          "step_size_linsys must"),
            BadParameters({"n_inner_steps": 1.5},
                          "n_inner_steps must be an integer"),
        ),
        curve=Curve({}, 15),
    ),
    "SOBA": SolverCase(
        "SOBA",
        # The HVP and the cross product from one linearisation: one pass.
        counts=(Counts({}, dict(n_grad=2, n_hvp=1, n_cross=1, n_epochs=2),
                       9),),
        converges=(Decreases({"step_size_outer": 0.1}, 500, 100),),
        bad_parameters=(
            BadParameters({"step_size_inner": "fast"},
                          "step_size_inner must be"),
        ),
        curve=Curve({}, 15),
    ),
    "TTSA": SolverCase(
        "TTSA",
        counts=(
            # Q = 0 draws p = 0: no HVP (the drawn lengths of Q > 0:
            # test_neumann.py).
            Counts({"n_neumann_steps": 0},
                   dict(n_grad=2, n_hvp=0, n_cross=1, n_epochs=2), 9),
        ),
        # On the quadratic minimised at x* = 0, where the noise of the
        # random truncation vanishes (see the fixture).
        converges=(Decreases({}, 600, 100, "quadratic_minimised_at_zero"),),
        bad_parameters=(
            BadParameters({"step_size_inner": "fast"},
                          "step_size_inner must be"),
            BadParameters({"decay_outer": -0.1},
                          "decay_outer must be a finite number >= 0"),
            BadParameters({"decay_inner": float("nan")},
                          "decay_inner must be"),
        ),
        curve=Curve({}, 15),
        random=True,
    ),
    "stocBiO": SolverCase(
        "stocBiO",
        counts=(
            Counts({"n_inner_steps": 3, "n_neumann_steps": 7},
                   dict(n_grad=4, n_hvp=7, n_cross=1, n_epochs=11), 9),
        ),
        # Q = 40: the truncation bias (1 - eta mu)^(Q+1), about 2% of v* at
        # the default Q = 10 and kappa = 10, would otherwise stop it near
        # 1/20.
        converges=(Decreases({"n_neumann_steps": 40}, 100, 100),),
        bad_parameters=(
            BadParameters({"n_neumann_steps": 0},
                          "n_neumann_steps must be an integer >= 1"),
            BadParameters({"n_inner_steps": -1},
                          "n_inner_steps must be an integer"),
            BadParameters({"step_size_linsys": 0.0},
                          "step_size_linsys must be"),
        ),
        curve=Curve({}, 15),
    ),
    "BSA": SolverCase(
        "BSA",
        counts=(
            # Q = 0 draws p = 0: no HVP (the drawn lengths of Q > 0:
            # test_neumann.py).
            Counts({"n_inner_steps": 3, "n_neumann_steps": 0},
                   dict(n_grad=4, n_hvp=0, n_cross=1, n_epochs=4), 9),
        ),
        converges=(Decreases({}, 300, 100, "quadratic_minimised_at_zero"),),
        bad_parameters=(
            BadParameters({"n_neumann_steps": 2.5},
                          "n_neumann_steps must be an integer"),
            BadParameters({"step_size_outer": -1.0},
                          "step_size_outer must be"),
        ),
        curve=Curve({}, 15),
        random=True,
    ),
    "AmIGO-gd": SolverCase(
        "AmIGO",
        counts=(
            # T + 1 gradients, Q HVPs, 1 cross product.
            Counts({"inner_solver": "gd", "n_inner_steps": 3,
                    "n_linsys_steps": 4},
                   dict(n_grad=4, n_hvp=4, n_cross=1, n_epochs=8), 9),
        ),
        converges=(Decreases({"inner_solver": "gd"}, 100, 100),),
        bad_parameters=(
            BadParameters({"inner_solver": "lbfgs"},
                          "inner_solver must be one of"),
            BadParameters({"n_linsys_steps": 0},
                          "n_linsys_steps must be an integer >= 1"),
            BadParameters({"n_inner_steps": -1},
                          "n_inner_steps must be an integer >= 0"),
            BadParameters({"inner_solver": "gd", "step_size_linsys": 0.0},
                          "step_size_linsys must be a finite number > 0"),
            BadParameters({"step_size_outer": -1.0},
                          "step_size_outer must be"),
        ),
        curve=Curve({"inner_solver": "gd"}, 6),
        label_base={"inner_solver": "gd"},
    ),
    "AmIGO-cg": SolverCase(
        "AmIGO",
        counts=(
            # CG spends one more HVP on the warm start's residual
            # b - A v_prev.
            Counts({"inner_solver": "cg", "n_inner_steps": 3,
                    "n_linsys_steps": 4},
                   dict(n_grad=4, n_hvp=5, n_cross=1, n_epochs=9), 9),
        ),
        converges=(Decreases({"inner_solver": "cg"}, 100, 100),),
        bad_parameters=(),
        curve=Curve({"inner_solver": "cg"}, 6),
        label_base={"inner_solver": "cg"},
    ),
    "F2SA": SolverCase(
        "F2SA",
        counts=(
            # 3 T + 3: d f, d_y g at y and d_y g at z per inner step; d f,
            # d_x g at y and at z for the x step.
            Counts({"n_inner_steps": 3},
                   dict(n_grad=12, n_hvp=0, n_cross=0, n_epochs=8), 7),
            Counts({"n_inner_steps": 0},
                   dict(n_grad=3, n_hvp=0, n_cross=0, n_epochs=2), 7),
        ),
        # Defaults: lambda_k = 1 + k, so lambda <= 100 here; the penalty's
        # hypergradient bias is about 0.12 / lambda relative
        # (test_first_order_solvers.py).
        converges=(Decreases({}, 100, 100),),
        bad_parameters=(
            BadParameters({"penalty_init": 0.0},
                          "penalty_init must be a finite number > 0"),
            BadParameters({"penalty_init": 10.0, "penalty_max": 5.0},
                          "penalty_max must be a finite number >= 10"),
            BadParameters({"penalty_growth": -1.0},
                          "penalty_growth must be a finite number >= 0"),
            BadParameters({"n_inner_steps": -1},
                          "n_inner_steps must be an integer >= 0"),
            BadParameters({"step_size_outer": -0.5},
                          "step_size_outer must be"),
        ),
        curve=Curve({}, 15),
    ),
    "HJFBiO": SolverCase(
        "HJFBiO",
        counts=(Counts({}, dict(n_grad=4, n_hvp=0, n_cross=0, n_epochs=3),
                       7),),
        converges=(Decreases({"step_size_outer": 0.1}, 500, 100),),
        bad_parameters=(
            BadParameters({"delta": 0.0},
                          "delta must be a finite number > 0"),
            BadParameters({"delta": -1e-5},
                          "delta must be a finite number > 0"),
            BadParameters({"delta": "small"}, "delta must be"),
            BadParameters({"step_size_linsys": 0.0},
                          "step_size_linsys must be"),
        ),
        curve=Curve({}, 15),
    ),
    "BOME": SolverCase(
        "BOME",
        counts=(
            # T + 2: d g at (x, y) (also the first inner step), T - 1 more
            # inner steps, d_x g at y_T, d f.
            Counts({"n_inner_steps": 4},
                   dict(n_grad=6, n_hvp=0, n_cross=0, n_epochs=5), 7),
            Counts({"n_inner_steps": 1},
                   dict(n_grad=3, n_hvp=0, n_cross=0, n_epochs=2), 7),
        ),
        # BOME's fixed joint step xi bounds its accuracy: lambda grows like
        # 1 / ||y - y*|| and the y part of the step, about xi lambda A, must
        # stay stable, so y stalls at a distance proportional to xi; the T
        # inner steps add a (1 - alpha mu)^T bias. With xi = 0.04 and
        # T = 30 the plateau is near 1/50 of the start, reached in ~1000
        # iterations: within 400, a 20-fold decrease (measured: 26-fold).
        converges=(
            Decreases({"n_inner_steps": 30, "step_size_joint": 0.04}, 400,
                      20),
        ),
        bad_parameters=(
            BadParameters({"n_inner_steps": -1},
                          "n_inner_steps must be an integer >= 1"),
            BadParameters({"n_inner_steps": 0},
                          "n_inner_steps must be an integer >= 1"),
            BadParameters({"barrier_coefficient": 0.0},
                          "barrier_coefficient must be a finite number > 0"),
            BadParameters({"step_size_joint": 0.0},
                          "step_size_joint must be"),
            BadParameters({"step_size_inner": float("inf")},
                          "step_size_inner must be"),
        ),
        curve=Curve({}, 15),
    ),
    "ITD": SolverCase(
        "ITD",
        counts=(
            # Full unroll: T + 1 gradients, T - 1 HVPs, T cross products
            # (T - 1 of them fused with the HVPs: 2 T passes).
            Counts({"n_inner_steps": 6},
                   dict(n_grad=7, n_hvp=5, n_cross=6, n_epochs=12), 9),
            # Truncated to K = 2: K - 1 HVPs, K cross products.
            Counts({"n_inner_steps": 6, "n_backprop_steps": 2},
                   dict(n_grad=7, n_hvp=1, n_cross=2, n_epochs=8), 9),
            Counts({"n_inner_steps": 0},
                   dict(n_grad=1, n_hvp=0, n_cross=0, n_epochs=0), 9),
        ),
        converges=(Decreases({"n_inner_steps": 30}, 50, 100),),
        bad_parameters=(
            BadParameters({"n_inner_steps": -2},
                          "n_inner_steps must be an integer >= 0"),
            BadParameters({"n_inner_steps": 5, "n_backprop_steps": 6},
                          "n_backprop_steps must be an integer >= 0 and <= 5"),
            BadParameters({"n_backprop_steps": 2.5},
                          "n_backprop_steps must be an integer"),
            BadParameters({"step_size_inner": "fast"},
                          "step_size_inner must be"),
        ),
        curve=Curve({"n_backprop_steps": 5}, 6),
    ),
    "STABLE": SolverCase(
        "STABLE",
        counts=(
            # 2 gradients, a Neumann series of Q HVPs for v and another for
            # the correction of y, a cross product each way.
            Counts({"n_neumann_steps": 3},
                   dict(n_grad=2, n_hvp=6, n_cross=2, n_epochs=9), 9),
        ),
        # Q = 60: the truncation bias (1 - eta mu)^(Q+1) of v, about 14%
        # at the default Q = 20 and kappa = 10, would stop it early.
        converges=(Decreases({"n_neumann_steps": 60}, 300, 100),),
        bad_parameters=(
            BadParameters({"n_neumann_steps": 0},
                          "n_neumann_steps must be an integer >= 1"),
            BadParameters({"step_size_linsys": 0.0},
                          "step_size_linsys must be"),
            BadParameters({"step_size_outer": -1.0},
                          "step_size_outer must be"),
        ),
        curve=Curve({}, 15),
    ),
    "PBGD": SolverCase(
        "PBGD",
        counts=(
            # T steps on w, d f, d g at (x, y), d_x g at w.
            Counts({"n_inner_steps": 3},
                   dict(n_grad=6, n_hvp=0, n_cross=0, n_epochs=5), 7),
        ),
        converges=(Decreases({}, 500, 100),),
        bad_parameters=(
            BadParameters({"n_inner_steps": 0},
                          "n_inner_steps must be an integer >= 1"),
            BadParameters({"penalty_init": 0.0},
                          "penalty_init must be a finite number > 0"),
            BadParameters({"penalty_init": 10.0, "penalty_max": 5.0},
                          "penalty_max must be a finite number >= 10"),
            BadParameters({"penalty_growth": -1.0},
                          "penalty_growth must be a finite number >= 0"),
            BadParameters({"step_size_inner": 0.0},
                          "step_size_inner must be"),
        ),
        curve=Curve({}, 15),
    ),
    # The variance-reduced methods (test_variance_reduction.py): in full
    # batch, the memory and recursions give the exact directions.
    "SABA": SolverCase(
        "SABA",
        counts=(Counts({}, dict(n_grad=2, n_hvp=1, n_cross=1, n_epochs=2),
                       9),),
        converges=(Decreases({"step_size_outer": 0.1}, 500, 100),),
        bad_parameters=(
            BadParameters({"step_size_inner": 0.0},
                          "step_size_inner must be"),
        ),
        curve=Curve({}, 15),
    ),
    "SRBA": SolverCase(
        "SRBA",
        # Full batch: a full pass at every iteration, as SOBA.
        counts=(Counts({}, dict(n_grad=2, n_hvp=1, n_cross=1, n_epochs=2),
                       9),),
        converges=(Decreases({"step_size_outer": 0.1}, 500, 100),),
        bad_parameters=(
            BadParameters({"period": 0}, "period must be an integer >= 1"),
            BadParameters({"period": 2.5}, "period must be an integer"),
        ),
        curve=Curve({}, 15),
    ),
    "MA-SOBA": SolverCase(
        "MA-SOBA",
        counts=(Counts({}, dict(n_grad=2, n_hvp=1, n_cross=1, n_epochs=2),
                       9),),
        # In full batch the average of a slowly moving D_x only delays x:
        # a momentum of 0.9 makes its joint steps with y and v oscillate.
        converges=(Decreases({"step_size_outer": 0.1, "momentum": 0.5},
                             500, 100),),
        bad_parameters=(
            BadParameters({"momentum": 1.0},
                          r"momentum must be a number in \[0, 1\)"),
            BadParameters({"momentum": -0.1},
                          r"momentum must be a number in \[0, 1\)"),
            BadParameters({"decay_outer": -1.0},
                          "decay_outer must be a finite number >= 0"),
        ),
        curve=Curve({}, 15),
    ),
    "MRBO": SolverCase(
        "MRBO",
        # Each estimate at two points from the second iteration on.
        counts=(Counts({"n_neumann_steps": 3},
                       dict(n_grad=4, n_hvp=6, n_cross=2, n_epochs=10), 9,
                       first=dict(n_grad=2, n_hvp=3, n_cross=1,
                                  n_epochs=5)),),
        # Q = 40, as stocBiO: the truncation bias of v.
        converges=(Decreases({"n_neumann_steps": 40}, 300, 100),),
        bad_parameters=(
            BadParameters({"momentum": 1.5},
                          r"momentum must be a number in \[0, 1\)"),
            BadParameters({"n_neumann_steps": 0},
                          "n_neumann_steps must be an integer >= 1"),
        ),
        curve=Curve({}, 15),
    ),
    "VRBO": SolverCase(
        "VRBO",
        # A full pass (2 gradients, Q HVPs, 1 cross product), then T steps
        # each with both estimates at two points.
        counts=(Counts({"n_inner_steps": 2, "n_neumann_steps": 3},
                       dict(n_grad=10, n_hvp=15, n_cross=5, n_epochs=25),
                       7),),
        converges=(Decreases({"n_neumann_steps": 40}, 100, 100),),
        bad_parameters=(
            BadParameters({"period": 0}, "period must be an integer >= 1"),
            BadParameters({"n_inner_steps": 0},
                          "n_inner_steps must be an integer >= 1"),
        ),
        curve=Curve({}, 6),
    ),
    "FSLA": SolverCase(
        "FSLA",
        counts=(Counts({}, dict(n_grad=4, n_hvp=1, n_cross=2, n_epochs=4),
                       9, first=dict(n_grad=3, n_hvp=1, n_cross=1,
                                     n_epochs=3)),),
        # Constant steps: in full batch there is no noise for the decaying
        # schedule to damp.
        converges=(Decreases({"step_size_outer": 0.5, "decay_inner": 0.0,
                              "decay_outer": 0.0, "decay_momentum": 0.0},
                             500, 100),),
        bad_parameters=(
            BadParameters({"momentum": 1.0},
                          r"momentum must be a number in \[0, 1\)"),
            BadParameters({"decay_momentum": -0.5},
                          "decay_momentum must be a finite number >= 0"),
        ),
        curve=Curve({}, 15),
    ),
    "SUSTAIN": SolverCase(
        "SUSTAIN",
        counts=(
            # Q = 0 draws p = 0: no HVP.
            Counts({"n_neumann_steps": 0},
                   dict(n_grad=4, n_hvp=0, n_cross=2, n_epochs=4), 9,
                   first=dict(n_grad=2, n_hvp=0, n_cross=1, n_epochs=2)),
        ),
        converges=(Decreases({}, 600, 100, "quadratic_minimised_at_zero"),),
        bad_parameters=(
            BadParameters({"momentum": -0.5},
                          r"momentum must be a number in \[0, 1\)"),
            BadParameters({"n_neumann_steps": -1},
                          "n_neumann_steps must be an integer >= 0"),
        ),
        curve=Curve({}, 15),
        random=True,
    ),
    "AID-exact": SolverCase(
        "AID-exact",
        # Its solves run to a tolerance, so its counts vary from one
        # iteration to the next: bounded in test_implicit_and_unrolled.py.
        counts=(),
        converges=(Reaches({}, 160, 1e-8),),
        bad_parameters=(
            BadParameters({"tol": 0.0}, "tol must be a finite number > 0"),
            BadParameters({"step_size_outer": 0}, "step_size_outer must be"),
        ),
        curve=Curve({}, 6),
    ),
}

SOLVER_CLASSES = {solver.name: solver for solver in BENCHMARK.get_solvers()}


@pytest.fixture
def quadratic_minimised_at_zero():
    """The quadratic with t = y*(0): the minimiser is x* = 0 and b = d_y f
    vanishes there, so does the noise of a randomly truncated v, which is
    linear in b; on the plain quadratic that noise (std of B^T v about 0.4
    at x*, Q = 10) keeps the hypergradient near 1/20 of its start for
    thousands of iterations."""
    problem = QuadraticProblem(dim_x=10, dim_y=20, kappa=10.0, seed=0)
    problem.target = problem.inner_solution(torch.zeros(10))
    return problem


def describe(params):
    """A test id for a parameter setting."""
    return ",".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def table_rows(column):
    """pytest parameters (solver name, entry) for every entry of ``column``
    in the table, with ids "row-params"."""
    return [pytest.param(case.name, entry,
                         id=f"{case_id}-{describe(entry.params)}")
            for case_id, case in CASES.items()
            for entry in getattr(case, column)]


def set_up(solver, objective, base_seed=0):
    """What benchopt does before a run: the run context (the seed) and the
    objective."""
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=base_seed)
    solver.set_objective(**objective.get_objective())


def recorded_curve(solver, objective, base_seed, n_iter):
    """Set up and run ``solver`` for ``n_iter`` iterations: its x before
    each, and at the end (read from the solver: its result, with the
    memory measurement, is for evaluation points)."""
    set_up(solver, objective, base_seed)
    xs = []

    def callback():
        xs.append(solver.x.clone())
        return len(xs) <= n_iter

    solver.run(callback)
    return torch.stack(xs)


# -- the table covers every solver ----------------------------------------


def test_table_has_a_row_for_every_solver():
    assert {case.name for case in CASES.values()} == set(SOLVER_CLASSES)


# -- oracle counts ---------------------------------------------------------


@pytest.mark.parametrize("name, counts", table_rows("counts"))
def test_counts_per_iteration_are_exact(quadratic, name, counts):
    assert_counts_per_iteration(quadratic, name, counts.params,
                                counts.per_iteration, counts.n_iter,
                                counts.first)


# -- reproducibility -------------------------------------------------------


@pytest.mark.parametrize("name, curve", [
    pytest.param(case.name, case.curve, id=case_id)
    for case_id, case in CASES.items()])
def test_same_seed_gives_the_same_curve(name, curve):
    curves = []
    for _ in range(2):
        problem = SyntheticProblem(n=30, kappa=100.0, seed=11)
        objective = make_objective(problem)
        solver = get_solver_class(name).get_instance(**curve.params)
        curves.append(recorded_curve(solver, objective, 0, curve.n_iter))
    # A second run of the same instance repeats it too.
    curves.append(recorded_curve(solver, objective, 0, curve.n_iter))
    assert torch.isfinite(curves[0]).all()
    assert all(torch.equal(curves[0], other) for other in curves[1:])


@pytest.mark.parametrize("name, random", [
    pytest.param(case.name, case.random, id=case_id)
    for case_id, case in CASES.items()])
def test_another_seed_changes_the_curve_if_and_only_if_it_draws(
        quadratic, name, random):
    objective = make_objective(quadratic)
    solver = get_solver_class(name).get_instance()
    changed = not torch.equal(recorded_curve(solver, objective, 0, 15),
                              recorded_curve(solver, objective, 1, 15))
    assert changed == random


# -- parameter checks ------------------------------------------------------


@pytest.mark.parametrize("name, bad", table_rows("bad_parameters"))
def test_bad_parameters_are_clear_errors(quadratic, name, bad):
    with pytest.raises(ValueError, match=bad.message):
        run_solver(name, quadratic, 1, **bad.params)


# -- convergence -----------------------------------------------------------


@pytest.mark.parametrize("name, target", table_rows("converges"))
def test_solver_converges(request, name, target):
    problem = request.getfixturevalue(target.problem)
    solver, objective, _ = run_solver(name, problem, target.n_iter,
                                      **target.params)
    target.assert_met(solver, objective)


# -- curve labels ----------------------------------------------------------


def default_parameters(solver_class):
    """The first setting of the solver's grid, grouped keys split."""
    return next(product_param(solver_class.parameters))


def changed_value(solver_class, parameter, value):
    """A valid value of ``parameter`` other than ``value``: another one of
    its grid if there is one (the other inner_solver), a number for 'auto',
    an integer for None or a 'full' batch, another number for a number."""
    listed = [setting[parameter]
              for setting in product_param(solver_class.parameters)]
    others = [other for other in listed if other != value]
    if others:
        return others[0]
    if value is None or value == "full":
        return 3
    if parameter == "variant":
        return "lancbio_code"
    if value == "auto":
        # A period of full passes is a number of iterations.
        return 3 if parameter == "period" else 0.5
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"no rule to change {parameter}={value!r}")
    if isinstance(value, int):
        return value + 1
    if parameter == "momentum":
        # In [0, 1).
        return value / 2 if value else 0.5
    return 2 * value if value else 1.0


def label_rows():
    """(solver name, label base, parameter) for every parameter of every
    row of the table."""
    return [pytest.param(case.name, case.label_base, parameter,
                         id=f"{case_id}-{parameter}")
            for case_id, case in CASES.items()
            for parameter in default_parameters(SOLVER_CLASSES[case.name])]


@pytest.mark.parametrize("name, base, parameter", label_rows())
def test_changing_one_parameter_changes_the_label(sample_quadratic, name,
                                                  base, parameter):
    solver_class = SOLVER_CLASSES[name]
    value = {**default_parameters(solver_class), **base}[parameter]
    changed = {**base, parameter: changed_value(solver_class, parameter,
                                                value)}
    pair = [solver_class.get_instance(**base),
            solver_class.get_instance(**changed)]
    objective = make_objective(sample_quadratic)
    valid = pair
    if (name, parameter) == ("AID-exact", "batch_size"):
        # Full batch only: benchopt skips the minibatch setting, saying
        # why.
        skipped, reason = pair[1].skip(**objective.get_objective())
        assert skipped and "has no minibatch version" in reason
        valid = pair[:1]
    # The valid settings set up without error (on a problem with samples,
    # where a batch size is valid).
    for solver in valid:
        set_up(solver, objective)
    assert str(pair[0]) != str(pair[1])


@pytest.mark.parametrize("name, parameter", [
    pytest.param(name, parameter, id=f"{name}-{parameter}")
    for name, solver_class in SOLVER_CLASSES.items()
    for parameter in default_parameters(solver_class)])
def test_label_template_names_every_parameter(name, parameter):
    template = SOLVER_CLASSES[name].parameter_template
    # As it is, or with a format ("{decay_inner:.2g}").
    assert ("{" + parameter + "}" in template
            or "{" + parameter + ":" in template)
