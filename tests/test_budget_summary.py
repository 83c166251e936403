"""scripts/budget_summary.py on a results table written here: the metric
reached at the last point within each budget and the best within it, the
HVPs and epochs spent by then, medians over repetitions, curves told
apart by their batch size; the performance profile across datasets."""
import runpy
import sys

import pandas as pd
from conftest import ROOT

SCRIPT = ROOT / "scripts" / "budget_summary.py"


def rows(solver, batch_size, rep, times, accuracies, hvps, diverged=()):
    return [dict(dataset_name="D", solver_name=f"{solver}[{batch_size}]",
                 idx_rep=rep, stop_val=k, time=t,
                 objective_test_accuracy=accuracy, objective_n_hvp=hvp,
                 objective_n_epochs=2 * hvp,
                 objective_diverged=k in diverged,
                 objective_value=1.0, p_solver_batch_size=batch_size)
            for k, (t, accuracy, hvp) in enumerate(zip(times, accuracies,
                                                       hvps))]


def test_reached_best_and_counts_within_each_budget(tmp_path, capsys):
    table = (
        # Full batch: its accuracy peaks before 30 s and falls after.
        rows("SOBA", "full", 0, [0, 10, 25, 200], [0.1, 0.8, 0.7, 0.9],
             [0, 5, 12, 100])
        # Minibatches, two repetitions: medians of their points.
        + rows("SOBA", "128", 0, [0, 20, 280], [0.1, 0.6, 0.8],
               [0, 0.5, 7.0])
        + rows("SOBA", "128", 1, [0, 28, 299], [0.1, 0.4, 0.9],
               [0, 0.7, 8.0])
        # Diverged at its third point, which stays its last.
        + rows("TTSA", "256", 0, [0, 5, 40], [0.1, 0.3, 0.2], [0, 1, 2],
               diverged=(2,)))
    path = tmp_path / "results.parquet"
    pd.DataFrame(table).to_parquet(path)
    argv = sys.argv
    sys.argv = [str(SCRIPT), str(path)]
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = argv
    out = capsys.readouterr().out
    assert ("| solver | test_accuracy / best / HVPs / epochs within 30 s | "
            "test_accuracy / best / HVPs / epochs within 300 s |") in out
    assert "| SOBA[batch_size=full] | 0.7 / 0.8 / 12 / 24 | 0.9 / 0.9 / 100 " \
        "/ 200 |" in out
    assert "| SOBA[batch_size=128] | 0.5 / 0.5 / 0.6 / 1.2 | 0.85 / 0.85 " \
        "/ 7.5 / 15 |" in out
    # The diverged point is not a best; its curve is marked.
    assert "| TTSA[batch_size=256] (diverged) | 0.3 / 0.3 / 1 / 2 | 0.2 / " \
        "0.3 / 2 / 4 |" in out


def test_peak_memory_within_each_budget(tmp_path, capsys):
    mib = 2 ** 20
    table = (rows("SOBA", "full", 0, [0, 10, 25, 200], [0.1, 0.8, 0.7, 0.9],
                  [0, 5, 12, 100])
             + rows("SOBA", "128", 0, [0, 20, 280], [0.1, 0.6, 0.8],
                    [0, 0.5, 7.0])
             + rows("SOBA", "128", 1, [0, 28, 299], [0.1, 0.4, 0.9],
                    [0, 0.7, 8.0]))
    # The largest so far: 1 MiB at the start, 2 at the second point, 4
    # at the later ones (the minibatch repetitions: 1.5 then 2.5 at the
    # second point).
    for row in table:
        row["objective_memory_peak_bytes"] = mib * (
            1 if row["stop_val"] == 0 else 2 if row["stop_val"] == 1 else 4)
        if row["solver_name"] == "SOBA[128]" and row["stop_val"] == 1:
            row["objective_memory_peak_bytes"] = mib * (1.5 + row["idx_rep"])
    path = tmp_path / "results.parquet"
    pd.DataFrame(table).to_parquet(path)
    argv = sys.argv
    sys.argv = [str(SCRIPT), str(path)]
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = argv
    out = capsys.readouterr().out
    assert ("within 300 s | peak memory within 30 s (MiB) | peak memory "
            "within 300 s (MiB) |") in out
    # Full batch: its third point (25 s) within 30 s, its last within 300.
    assert "| SOBA[batch_size=full] | 0.7 / 0.8 / 12 / 24 | 0.9 / 0.9 / 100 " \
        "/ 200 | 4 | 4 |" in out
    # Minibatches: the median of the repetitions' second points (1.5 and
    # 2.5 MiB) within 30 s, of their last points within 300 s.
    assert "| SOBA[batch_size=128] | 0.5 / 0.5 / 0.6 / 1.2 | 0.85 / 0.85 " \
        "/ 7.5 / 15 | 2 | 4 |" in out


def summary_of(tmp_path, capsys, table, *args):
    path = tmp_path / "results.parquet"
    pd.DataFrame(table).to_parquet(path)
    argv = sys.argv
    sys.argv = [str(SCRIPT), str(path), *args]
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = argv
    return capsys.readouterr().out


def test_curves_of_one_solver_are_told_apart_and_ranked(tmp_path, capsys):
    def curve(outer_step, accuracies, diverged=(), failed=()):
        return [dict(row, solver_name=f"SOBA[outer={outer_step}]",
                     p_solver_step_size_outer=outer_step,
                     p_solver_step_size_inner="auto",
                     objective_failed=row["stop_val"] in failed)
                for row in rows("SOBA", "full", 0, [0, 10, 20], accuracies,
                                [0, 1, 2], diverged)]

    table = (curve(0.5, [0.1, 0.5, 0.6])
             # The best accuracy, then it diverged: ranked last but one.
             + curve(8.0, [0.1, 0.9, 0.2], diverged=(2,))
             # Failed after its second point: ranked last.
             + curve(4.0, [0.1, 0.7, 0.7], failed=(2,))
             + curve(1.0, [0.1, 0.6, 0.8]))
    out = summary_of(tmp_path, capsys, table, "--time-budget", "30")
    lines = [line for line in out.splitlines() if line.startswith("| SOBA")]
    # The outer step differs between the curves, the inner one does not.
    assert [line.split(" |")[0] for line in lines] == [
        "| SOBA[batch_size=full,step_size_outer=1.0]",
        "| SOBA[batch_size=full,step_size_outer=0.5]",
        "| SOBA[batch_size=full,step_size_outer=8.0] (diverged)",
        "| SOBA[batch_size=full,step_size_outer=4.0] (failed)"]


def test_performance_profile_across_datasets(tmp_path, capsys):
    def curve(dataset, solver, times, norms, diverged=()):
        return [dict(dataset_name=dataset, solver_name=solver, idx_rep=0,
                     stop_val=k, time=t, objective_hypergrad_norm=norm,
                     objective_value=1.0, objective_diverged=k in diverged,
                     objective_n_hvp=k, objective_n_grad=k,
                     p_dataset_n=int(dataset[-2]))
                for k, (t, norm) in enumerate(zip(times, norms))]

    # Targets at tolerance 0.1: 0.1 + 0.1 (1 - 0.1) = 0.19 on both.
    table = (curve("p[n=1]", "LancBiO[T=5]", [0, 1, 2], [1.0, 0.5, 0.1])
             + curve("p[n=1]", "SOBA[T=5]", [0, 4], [1.0, 0.15])
             # Below the target, then diverged: it solves nothing.
             + curve("p[n=1]", "PBGD[T=5]", [0, 0.5], [1.0, 1e-3],
                     diverged=(1,))
             + curve("p[n=2]", "LancBiO[T=5]", [0, 3], [1.0, 0.1])
             + curve("p[n=2]", "SOBA[T=5]", [0, 1], [1.0, 0.18])
             + curve("p[n=2]", "PBGD[T=5]", [0, 1], [1.0, 0.9]))
    out = summary_of(tmp_path, capsys, table, "--metric",
                     "objective_hypergrad_norm", "--profile", "0.1")
    assert "| curve | p[n=1] | p[n=2] |" in out
    assert "| LancBiO | 2 | 3 |" in out
    assert "| SOBA | 4 | 1 |" in out
    assert "| PBGD | - | - |" in out
    # Each of LancBiO and SOBA is the fastest on one of the two datasets;
    # on the other, SOBA takes twice the fastest time, LancBiO three times.
    assert ("| curve | tau=1 | tau=1.5 | tau=2 | tau=4 | tau=10 | tau=100 "
            "| solved |") in out
    lines = [line for line in out.splitlines() if "0." in line
             and line.count("|") == 9]
    assert lines == [
        "| SOBA | 0.50 | 0.50 | 1.00 | 1.00 | 1.00 | 1.00 | 1.00 |",
        "| LancBiO | 0.50 | 0.50 | 0.50 | 1.00 | 1.00 | 1.00 | 1.00 |",
        "| PBGD | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 |"]


def test_without_a_test_accuracy_the_hypergradient_norm_is_summarised(
        tmp_path, capsys):
    # A quadratic-only run records no test accuracy: the default metric is
    # the hypergradient norm, and the summary says so.
    table = [{key.replace("objective_test_accuracy",
                          "objective_hypergrad_norm"): value
              for key, value in row.items()}
             for row in rows("SOBA", "full", 0, [0, 1, 2], [1.0, 0.1, 0.01],
                             [0, 1, 2])]
    # A second curve whose hypergradient underflows (saturated weights):
    # not ranked, and marked.
    table += [dict(row, solver_name="SOBA[8]", p_solver_batch_size="8",
                   objective_hypergrad_norm=norm)
              for row, norm in zip(table, [1.0, 1e-70, 1e-70])]
    out = summary_of(tmp_path, capsys, table, "--time-budget", "1.5")
    assert out.startswith("metric: objective_hypergrad_norm (--metric "
                          "chooses another)")
    lines = [line for line in out.splitlines() if line.startswith("| SOBA")]
    # Within 1.5 s: the last point is at 1 s, 0.1 after 1 HVP.
    assert lines[0].startswith("| SOBA[batch_size=full] | 0.1 / 0.1 / 1 / 2")
    assert lines[1].startswith("| SOBA[batch_size=8] (hypergradient "
                               "vanished) | 1e-70 / 1e-70")
