"""The speed scripts: operation-count targets, the hand-written twins'
iterates, and each script end to end at tiny sizes (no timing is
asserted: timings depend on the machine and its load)."""
import importlib.util
import subprocess
import sys

import pytest
import torch
from conftest import BENCHMARK, ROOT, make_objective, run_solver

from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem
from benchmark_utils.testing.handwritten import handwritten

SCRIPTS = ROOT / "scripts"


def load_script(name):
    """A script of scripts/ as a module (its folder on the path, for the
    scripts it imports)."""
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def operations():
    """Mean operations per outer iteration of SOBA and LancBiO (m = 1 and
    m = 80) on the synthetic problem (n = 200)."""
    operation_count = load_script("operation_count")
    objective = operation_count.synthetic_objective(BENCHMARK, 200)
    rows = operation_count.operation_counts(BENCHMARK, objective,
                                            solvers={"SOBA", "LancBiO"})
    return {label: row.mean for label, row in rows.items()}


def test_lancbio_operations_at_most_its_handwritten_floor(operations):
    # The same iteration in plain tensor code (one G product per gradient,
    # a preallocated basis): the oracle layer and the solver's own linear
    # algebra add at most a quarter to what the algorithm needs. (LancBiO
    # against SOBA is no measure of overhead: with T = 5 inner steps its
    # oracle calls alone are about twice SOBA's whole iteration.)
    assert operations["LancBiO (m = 80)"] <= 1.25 * operations[
        "LancBiO (m = 80), hand-written"]


def test_lancbio_operations_do_not_grow_with_the_subspace(operations):
    at_1, at_80 = operations["LancBiO (m = 1)"], operations["LancBiO (m = 80)"]
    assert abs(at_80 - at_1) <= 0.2 * at_1


def test_launch_bound_rows_in_the_docs_are_the_scripts():
    # docs/performance.md's table of the synthetic problem, from
    # `python scripts/operation_count.py --launch-bound`: SOBA's and
    # LancBiO's rows recomputed (counts, not timings).
    operation_count = load_script("operation_count")
    rows = operation_count.launch_bound_sizes(
        BENCHMARK, "synthetic", solvers={"SOBA", "LancBiO"})
    page = (ROOT / "docs" / "performance.md").read_text()
    assert set(rows) == {"SOBA", "LancBiO (m = 80)"}
    for label, row in rows.items():
        assert operation_count.launch_bound_row(label, row) in page, label


SYNTHETIC = SyntheticProblem(n=50, kappa=100.0, seed=0)
QUADRATIC = QuadraticProblem(dim_x=10, dim_y=20, kappa=10.0, seed=0)


@pytest.mark.parametrize("problem", [SYNTHETIC, QUADRATIC],
                         ids=["synthetic", "quadratic"])
@pytest.mark.parametrize("name, params, n_iter", [
    ("SOBA", {}, 5),
    ("SubBiO", {}, 10),
    # m = 1 for 20 iterations, then 2, then 3: restarts at every size.
    ("LancBiO", {}, 45),
    # A basis of 10 vectors, filled and restarted.
    ("LancBiO", {"subspace_dim": 10, "max_subspace_dim": 10}, 25),
])
def test_handwritten_iterates_equal_the_solvers(problem, name, params,
                                                n_iter):
    objective = make_objective(problem, hvp_mode="closed_form")
    solver, _, _ = run_solver(name, problem, n_iter, objective=objective,
                              **params)
    twin = handwritten(solver)
    twin.run(n_iter)
    result = solver.get_result()
    for key in ("x", "y", "v"):
        torch.testing.assert_close(getattr(twin, key), result[key],
                                   rtol=1e-8, atol=0)


@pytest.mark.parametrize("script, options", [
    ("handwritten_speed.py", ["--n", "60", "--rounds", "1", "--iterations",
                              "2", "--warmup", "3"]),
    ("operation_count.py", ["--n", "100", "--iterations", "1", "--solvers",
                            "LancBiO", "SOBA"]),
    ("small_problem_cost.py", ["--rounds", "1", "--iterations", "2"]),
    ("solver_overhead.py", ["--problem", "synthetic", "--solver", "LancBiO",
                            "--repeat", "1", "--n-outer", "2", "--warmup",
                            "3"]),
])
def test_script_runs_end_to_end(script, options):
    completed = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *options], cwd=ROOT,
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "|---" in completed.stdout
