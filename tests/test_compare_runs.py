"""scripts/compare_runs.py on two results tables written here: curves
matched across step sizes, the best within the budget, the ratio, the
start and the reasons that keep a curve from ranking first."""
import runpy
import sys

import pandas as pd
from conftest import ROOT

SCRIPT = ROOT / "scripts" / "compare_runs.py"


def rows(solver, step, times, norms, values, inner_solver=None):
    name = f"{solver}[{inner_solver + ',' if inner_solver else ''}{step}]"
    return [dict(dataset_name="D", solver_name=name,
                 idx_rep=0, stop_val=k, time=t,
                 objective_hypergrad_norm=norm, objective_value=value,
                 objective_diverged=False, p_solver_step_size_outer=step,
                 p_solver_inner_solver=inner_solver)
            for k, (t, norm, value) in enumerate(zip(times, norms, values))]


def run_script(tmp_path, before, after, capsys, *options):
    paths = []
    for name, table in (("before", before), ("after", after)):
        path = tmp_path / f"{name}.parquet"
        pd.DataFrame(table).to_parquet(path)
        paths.append(str(path))
    argv = sys.argv
    sys.argv = [str(SCRIPT), *paths, *options]
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = argv
    return capsys.readouterr().out


def test_curves_meet_across_step_sizes(tmp_path, capsys):
    before = (rows("SOBA", "1.0", [0, 1, 20], [2.0, 0.5, 0.1], [3, 2, 1])
              + rows("AmIGO", "1.0", [0, 5], [2.0, 1.0], [3, 2], "gd")
              + rows("AmIGO", "1.0", [0, 5], [2.0, 0.2], [3, 2], "cg"))
    after = (rows("SOBA", "tuned", [0, 1, 5], [2.0, 0.01, 0.001], [3, 2, 1])
             + rows("AmIGO", "tuned", [0, 5], [2.0, 0.5], [3, 2], "gd")
             + rows("AmIGO", "tuned", [0, 5], [2.0, 1e-3], [3, 4], "cg"))
    out = run_script(tmp_path, before, after, capsys, "--time-budget", "10")
    assert "D: best objective_hypergrad_norm within 10 s (start 2)" in out
    # SOBA's 0.1 comes after the budget: its best within it is 0.5.
    assert "| SOBA | 5.00e-01 | 1.00e-03 | 0.002 |" in out
    assert "| AmIGO[inner_solver=gd] | 1.00e+00 | 5.00e-01 | 0.5 |" in out
    # A value above the start keeps a curve from ranking first.
    assert ("| AmIGO[inner_solver=cg] | 2.00e-01 | 1.00e-03 (value above "
            "start) | 0.005 |") in out
