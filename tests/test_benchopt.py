"""The benchmark through benchopt's own command line: its design tests, the
README's example solver, and a diverging solver beside a converging one."""
import math
import re
import subprocess
import sys

import pandas as pd

from conftest import ROOT

METRIC_COLUMNS = [f"objective_{key}" for key in (
    "value", "hypergrad_norm", "hypergrad_norm_at_y", "inner_gap",
    "linsys_residual", "diverged", "n_hvp", "n_cross", "n_grad", "n_outer",
    "memory_state_bytes", "memory_peak_bytes")]
SMALL_QUADRATIC = "quadratic[dim_x=10,dim_y=20,kappa=10.0]"


def benchopt(*args, timeout=600):
    completed = subprocess.run(
        [sys.executable, "-m", "benchopt", *args], cwd=ROOT,
        capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def run_benchmark(output, *selection):
    benchopt("run", ".", *selection, "--max-runs", "12", "--timeout", "60",
             "--no-plot", "--no-cache", "--output", str(output))
    return pd.read_parquet(output)


def test_benchopt_design_tests_pass():
    output = benchopt("test", ".", "--skip-install")
    assert re.search(r"\d+ passed", output), output
    assert "failed" not in output


def readme_solver_code():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- minimal-solver -->\s*```python\n(.*?)```",
                      readme, re.S)
    assert match, "README.md lost its minimal solver example"
    return match.group(1)


def test_readme_minimal_solver_runs_from_its_own_file(tmp_path):
    solver_file = tmp_path / "my_solver.py"
    solver_file.write_text(readme_solver_code())
    df = run_benchmark(tmp_path / "results.parquet", "-s", str(solver_file),
                       "-d", SMALL_QUADRATIC)
    assert set(METRIC_COLUMNS) <= set(df.columns)
    assert df["solver_name"].str.startswith("my-solver").all()
    curve = df.sort_values("stop_val")
    assert (curve["objective_hypergrad_norm"].iloc[-1]
            < curve["objective_hypergrad_norm"].iloc[0] / 10)
    # One HVP and one cross product per outer iteration, as the file says.
    assert (curve["objective_n_hvp"] == curve["objective_n_outer"]).all()
    assert (curve["objective_n_cross"] == curve["objective_n_outer"]).all()


def test_diverging_solver_ends_its_curve_and_others_still_run(tmp_path):
    df = run_benchmark(tmp_path / "results.parquet",
                       "-s", "SOBA[step_size_outer=1000.0]", "-s", "LancBiO",
                       "-d", SMALL_QUADRATIC)
    assert set(METRIC_COLUMNS) <= set(df.columns)
    soba = df[df["solver_name"].str.startswith("SOBA")].sort_values(
        "stop_val")
    lancbio = df[df["solver_name"].str.startswith("LancBiO")].sort_values(
        "stop_val")
    # SOBA's curve is kept: it starts finite and ends at its first point
    # marked as diverged, the only one marked.
    values = soba["objective_value"].to_numpy()
    assert math.isfinite(values[0]) and len(values) < len(lancbio)
    assert soba["objective_diverged"].tolist() == (
        [False] * (len(soba) - 1) + [True])
    assert not lancbio["objective_diverged"].any()
    # LancBiO runs its whole budget and converges.
    assert len(lancbio) == 13   # the initial point and 12 evaluations
    assert lancbio["objective_hypergrad_norm"].iloc[-1] < 1e-3
