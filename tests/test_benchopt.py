"""The benchmark through benchopt's own command line: its design tests, the
README's example solver, and a diverging solver beside a converging one."""
import math
import re
import signal
import subprocess
import sys
import time

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


RAISING_SOLVER = '''
from benchmark_utils.solver import BilevelSolver


class Solver(BilevelSolver):
    """Gradient steps on y and x (a hypergradient that ignores v), with a
    bug at outer iteration 21."""

    name = "raises-at-21"
    parameters = {"rate": [0.01]}
    parameter_template = "rate={rate}"

    def step(self, x, y, v):
        if self.n_outer == 20:
            raise RuntimeError("a bug at outer iteration 21")
        grad_x_f, _ = self.oracles.grad_outer(x, y)
        y = y - self.rate * self.oracles.grad_inner(x, y)
        return x - self.rate * grad_x_f, y, v
'''


def test_a_raising_and_a_diverging_curve_are_kept_and_named(tmp_path):
    solver_file = tmp_path / "raising_solver.py"
    solver_file.write_text(RAISING_SOLVER)
    output = tmp_path / "results.parquet"
    completed = subprocess.run(
        [sys.executable, "-m", "benchopt", "run", ".", "-d", SMALL_QUADRATIC,
         "-s", str(solver_file), "-s", "SOBA[step_size_outer=1e8]",
         "-s", "LancBiO", "--max-runs", "12", "--timeout", "60",
         "--no-plot", "--no-cache", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    log = completed.stdout + completed.stderr
    # A curve failed: the run's exit status says so, after its summary.
    assert completed.returncode == 1, log
    assert ("1 curve(s) failed; their points are kept and the last one of "
            "each is marked in objective_failed:") in completed.stdout
    assert re.search(r"raises-at-21\[rate=0\.01\][^\n]*failed \(points "
                     r"kept\)", completed.stdout), log
    assert ("raises-at-21[rate=0.01] failed at outer iteration 21: "
            "RuntimeError: a bug at outer iteration 21") in completed.stdout
    assert re.search(r"SOBA\[[^\n]*diverged \(points kept\)",
                     completed.stdout), log
    # Every curve is written: the raising one up to its failure.
    df = pd.read_parquet(output)
    raising = df[df["solver_name"].str.startswith("raises-at-21")
                 ].sort_values("stop_val")
    assert raising["objective_n_outer"].iloc[-1] == 20
    assert raising["objective_failed"].tolist() == (
        [False] * (len(raising) - 1) + [True])
    assert len(raising) >= 8
    soba = df[df["solver_name"].str.startswith("SOBA")]
    assert soba["objective_diverged"].any()
    assert not soba["objective_failed"].any()
    assert not df[df["solver_name"].str.startswith("LancBiO")][
        "objective_failed"].any()
    # The traceback is in the curve's output folder.
    traceback_path = re.search(r"Traceback: (.+)", completed.stdout)[1]
    assert "raise RuntimeError" in open(traceback_path).read()


SLOW_SOLVER = '''
import time

from benchmark_utils.solver import BilevelSolver


class Solver(BilevelSolver):
    """Gradient steps on y, after a pause of some seconds at the start of
    its run (in init_state: the memory measurement replays steps, not the
    set-up, so the pause is the run's own)."""

    name = "slow"
    parameters = {"pause": [0.0]}
    parameter_template = "pause={pause}"

    def init_state(self):
        time.sleep(self.pause)

    def step(self, x, y, v):
        return x, y - 0.01 * self.oracles.grad_inner(x, y), v
'''


def test_an_interrupted_run_keeps_its_finished_curves_and_holds_its_name(
        tmp_path):
    solver_file = tmp_path / "slow_solver.py"
    solver_file.write_text(SLOW_SOLVER)
    output = tmp_path / "results.parquet"
    run = ["run", ".", "-d", SMALL_QUADRATIC, "--max-runs", "10",
           "--timeout", "600", "--no-plot", "--no-cache",
           "--output", str(output)]
    # Two curves, one after the other: without a pause (it ends at once),
    # then with a pause of 60 s at its start, during which the run is
    # interrupted.
    # SIGINT at its default in the run (a test suite started in the
    # background of a shell without job control inherits it ignored, and
    # Python then turns it into no KeyboardInterrupt).
    first = subprocess.Popen(
        [sys.executable, "-m", "benchopt", *run, "-s",
         f"{solver_file}[pause=[0.0,60.0]]"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        start = time.time()
        while not list((tmp_path / "results").rglob("curve.parquet")):
            assert first.poll() is None, first.communicate()
            assert time.time() - start < 300
            time.sleep(0.2)
        assert (tmp_path / "results.lock").read_text() == str(first.pid)
        # A second run under the same name is refused while the first lives.
        second = subprocess.run(
            [sys.executable, "-m", "benchopt", *run, "-s", "SOBA"], cwd=ROOT,
            capture_output=True, text=True, timeout=600)
        assert second.returncode == 1
        assert (f"Another benchopt run (process {first.pid}) is writing its "
                f"results under the same output name ({tmp_path / 'results'}"
                ".parquet") in second.stdout
        assert not output.exists()
        first.send_signal(signal.SIGINT)
        log, _ = first.communicate(timeout=120)
    finally:
        first.kill()
    assert ("Interrupted: the curves that finished are kept in benchopt's "
            "cache (unless --no-cache)") in log
    assert f"scripts/collect_curves.py {tmp_path / 'results'}` merges" in log
    assert not output.exists()   # benchopt wrote no results file
    collected = subprocess.run(
        [sys.executable, "scripts/collect_curves.py",
         str(tmp_path / "results")], cwd=ROOT, capture_output=True,
        text=True, timeout=120)
    assert collected.returncode == 0, collected.stderr
    df = pd.read_parquet(tmp_path / "results_collected.parquet")
    assert set(df["solver_name"]) == {"slow[pause=0.0]"}
    assert len(df) == 11   # the start and 10 evaluations
    # The lock went with the first run.
    assert not (tmp_path / "results.lock").exists()
