"""The budget plots (plots/, benchmark_utils/plotting/budget.py) on results
tables written by hand, the saved views of config.yml, and the HTML report
of a real run."""
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from benchopt.plotting import _check_view
from conftest import BENCHMARK, ROOT
from test_benchopt import SMALL_QUADRATIC, benchopt

from benchmark_utils.plotting.budget import (best_within_budget, bold_best,
                                             median_curve, metric_columns)

OBJECTIVE = "Bilevel optimization[device=cpu]"


def results(rows):
    """A results table as benchopt writes it, from (dataset, solver, rep,
    stop_val, time, n_grad, n_hvp, n_cross, hypergrad_norm, accuracy)."""
    df = pd.DataFrame(rows, columns=[
        "dataset_name", "solver_name", "idx_rep", "stop_val", "time",
        "objective_n_grad", "objective_n_hvp", "objective_n_cross",
        "objective_hypergrad_norm", "objective_test_accuracy"])
    return df.assign(objective_name=OBJECTIVE, objective_n_outer=0,
                     objective_r_hvp=2.0, objective_r_cross=3.0)


# Solver A: three repetitions, the third ends after its second evaluation
# with a diverged iterate (NaN). Solver B: one repetition, no HVP.
TABLE = results([
    ("d", "A", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "A", 0, 1, 1.0, 2, 10, 1, 4.0, 0.5),
    ("d", "A", 0, 2, 2.0, 4, 20, 2, 1.0, 0.9),
    ("d", "A", 1, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "A", 1, 1, 1.5, 2, 12, 1, 2.0, 0.6),
    ("d", "A", 1, 2, 3.0, 4, 24, 2, 0.5, 0.8),
    ("d", "A", 2, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "A", 2, 1, 2.0, 2, 14, 1, np.nan, np.nan),
    ("d", "B", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "B", 0, 1, 0.5, 10, 0, 0, 3.0, 0.7),
    ("d", "B", 0, 2, 1.0, 20, 0, 0, 0.8, 0.95),
])


def test_median_curve_aligns_repetitions_and_counts_nan_as_worst():
    a = TABLE[TABLE["solver_name"] == "A"]
    curve = median_curve(a, a["objective_n_hvp"], "objective_hypergrad_norm")
    # Repetition 2 keeps its last row (n_hvp 14, NaN) at stop_val 2.
    assert curve["x"] == [0.0, 12.0, 20.0]
    # NaN is the worst value: medians of {4, 2, inf} and {1, 0.5, inf}.
    assert curve["y"] == [8.0, 4.0, 1.0]
    # 20% and 80% quantiles, linear interpolation: 2 + 0.4 * 2, and the 80%
    # quantile lies between 4 and inf: worst, left out.
    np.testing.assert_allclose(curve["y_low"], [8.0, 2.8, 0.7])
    assert curve["y_high"][0] == 8.0 and np.isnan(curve["y_high"][1:]).all()
    # For an accuracy, NaN is the worst value from below: median of
    # {0.9, 0.8, -inf} is 0.8.
    accuracy = median_curve(a, a["objective_n_hvp"],
                            "objective_test_accuracy")
    assert accuracy["y"] == [0.1, 0.5, 0.8]


def test_single_repetition_has_no_band():
    b = TABLE[TABLE["solver_name"] == "B"]
    curve = median_curve(b, b["objective_n_grad"], "objective_hypergrad_norm")
    assert curve == dict(x=[0.0, 10.0, 20.0], y=[8.0, 3.0, 0.8])


def test_best_within_budget_is_the_median_of_each_repetitions_best():
    norm = best_within_budget(TABLE, "objective_hypergrad_norm", "time", 1.5)
    # A: repetition bests within 1.5 s are 4, 2 and 8 -> median 4.
    assert norm["d", "A"] == 4.0 and norm["d", "B"] == 0.8
    by_hvp = best_within_budget(TABLE, "objective_hypergrad_norm",
                                "objective_n_hvp", 14)
    assert by_hvp["d", "A"] == 4.0 and by_hvp["d", "B"] == 0.8
    # A larger-is-better metric keeps each repetition's largest value.
    accuracy = best_within_budget(TABLE, "objective_test_accuracy", "time",
                                  3.0)
    assert accuracy["d", "A"] == 0.8 and accuracy["d", "B"] == 0.95


def test_bold_marks_the_best_in_the_metrics_direction():
    cells = bold_best([0.5, 0.25, 0.25], "objective_hypergrad_norm")
    assert cells == [0.5, "**0.25**", "**0.25**"]
    cells = bold_best([0.5, 0.25, np.nan], "objective_test_accuracy")
    assert cells[0] == "**0.5**" and cells[1] == 0.25


def test_metric_options_leave_out_counts_and_costs():
    assert metric_columns(TABLE) == ["objective_hypergrad_norm",
                                     "objective_test_accuracy"]


def plot_data(kind, df=TABLE):
    data, options = BENCHMARK.get_plot_data(df, [kind])
    return data[kind], options[kind]


def test_budget_curve_plots_every_solver_on_every_axis():
    data, options = plot_data("budget_curve")
    assert options["X_axis"] == ["HVPs", "Gradient-equivalent work",
                                 "Epochs"]
    key = f"budget_curve_d_{OBJECTIVE}_objective_hypergrad_norm"
    hvp = {c["label"]: c for c in data[f"{key}_HVPs"]["data"]}
    work_plot = data[f"{key}_Gradient-equivalent work"]
    work = {c["label"]: c for c in work_plot["data"]}
    assert set(hvp) == set(work) == {"A", "B"}
    assert hvp["B"]["x"] == [0.0, 0.0, 0.0]
    # n_grad + 2 n_hvp + 3 n_cross, medians over repetitions.
    assert work["A"]["x"] == [0.0, 2 + 2 * 12 + 3, 4 + 2 * 20 + 3 * 2]
    assert work["B"]["x"] == [0.0, 10.0, 20.0]
    assert "n_grad + 2.00 n_hvp + 3.00 n_cross" in work_plot["xlabel"]
    assert work_plot["scale"] == "semilog-y"


def test_budget_curve_against_epochs():
    # Epochs: 1.5 passes per HVP-carrying row of A, one per gradient of B.
    table = TABLE.assign(objective_n_epochs=(
        TABLE["objective_n_grad"] + TABLE["objective_n_hvp"]) / 2)
    data, _ = plot_data("budget_curve", table)
    key = f"budget_curve_d_{OBJECTIVE}_objective_hypergrad_norm_Epochs"
    epochs = {c["label"]: c for c in data[key]["data"]}
    # Medians over A's repetitions of (2 + 10) / 2, (2 + 12) / 2 and
    # (2 + 14) / 2 (its third repetition ended there), then of 12, 14, 8.
    assert epochs["A"]["x"] == [0.0, 7.0, 12.0]
    assert epochs["B"]["x"] == [0.0, 5.0, 10.0]
    assert "passes over the training samples" in data[key]["xlabel"]
    # Results written before epochs were counted draw nothing there.
    data, _ = plot_data("budget_curve")
    assert data[key]["data"] == []


def test_results_without_measured_costs_still_plot_against_hvps():
    old = TABLE.drop(columns=["objective_r_hvp", "objective_r_cross"])
    data, _ = plot_data("budget_curve", old)
    key = f"budget_curve_d_{OBJECTIVE}_objective_hypergrad_norm"
    assert len(data[f"{key}_HVPs"]["data"]) == 2
    assert data[f"{key}_Gradient-equivalent work"]["data"] == []


def test_budget_table_bolds_the_best_solver_per_dataset():
    data, options = plot_data("budget_table")
    table = data[f"budget_table_{OBJECTIVE}_objective_hypergrad_norm_1_10"]
    assert table["columns"] == ["dataset", "solver", "within 1 s",
                                "within 10 HVPs"]
    # Within 1 s: A's repetitions reach 4, 8, 8 (median 8), B reaches 0.8.
    # Within 10 HVPs: A's reach 4, 8, 8, and B, which spends none, 0.8.
    # Rows in rank order within the time budget.
    assert table["data"] == [["d", "B", "**0.8**", "**0.8**"],
                             ["d", "A", 8.0, 8.0]]


def test_saved_views_use_valid_plots_and_option_values():
    views = yaml.safe_load((ROOT / "config.yml").read_text())["plot_configs"]
    plots = {plot._get_name(): plot for plot in BENCHMARK.get_plots()}
    quickstart_like = TABLE.assign(objective_value=1.0,
                                   objective_linsys_residual=1.0)
    for name, view in views.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _check_view(name, view, list(plots.values()))
        kind = view["plot_kind"]
        if kind not in ("budget_curve", "budget_table"):
            continue
        _, options = plots[kind]._get_all_plots(quickstart_like)
        for option, values in options.items():
            if f"{kind}_{option}" in view:
                assert view[f"{kind}_{option}"] in values, (name, option)


def not_benchmark_files(folder, names):
    """What the copy of the benchmark leaves out: outputs, caches, tests,
    hidden files and the downloaded data (the top-level data/ folder, not
    benchmark_utils/data, which is code)."""
    left_out = {"outputs", "__cache__", "tests", "venv"}
    if Path(folder) == ROOT:
        left_out.add("data")
    return [name for name in names
            if name in left_out or name.startswith(".")]


@pytest.fixture(scope="module")
def html_run(tmp_path_factory):
    """A tiny run with --html, in a copy of the benchmark (the report is
    written to the benchmark's own outputs/ folder)."""
    copy = tmp_path_factory.mktemp("run") / "benchmark"
    shutil.copytree(ROOT, copy, ignore=not_benchmark_files)
    solvers = ["LancBiO", "SOBA", "F2SA"]
    benchopt("run", str(copy), "-d", SMALL_QUADRATIC,
             *[arg for s in solvers for arg in ("-s", s)],
             "--max-runs", "5", "--timeout", "60", "-r", "2", "--no-cache",
             "--html", "--no-display", "--output", "report")
    df = pd.read_parquet(copy / "outputs" / "report.parquet")
    page = next((copy / "outputs").glob("*_report.html")).read_text()
    return df, page


def test_html_report_has_the_custom_plots_and_every_solver(html_run):
    df, page = html_run
    plots = json.loads(re.search(r"window\._plots = (.*);$", page,
                                 re.M).group(1))
    assert {"budget_curve", "budget_table"} <= set(plots)
    solvers = set(df["solver_name"])
    assert len(solvers) == 3
    for axis in ("HVPs", "Gradient-equivalent work"):
        key = (f"budget_curve_{SMALL_QUADRATIC}_{df['objective_name'][0]}"
               f"_objective_hypergrad_norm_{axis}")
        curves = {c["label"]: c for c in plots["budget_curve"][key]["data"]}
        assert set(curves) == solvers
        for solver, curve in curves.items():
            n_points = df.loc[df["solver_name"] == solver, "stop_val"]
            assert len(curve["x"]) == n_points.nunique()
            assert len(curve["y_low"]) == len(curve["y"])   # 2 repetitions
    table = next(iter(plots["budget_table"].values()))
    assert {row[1] for row in table["data"]} == solvers
    # The saved views of config.yml are in the page.
    assert "Hypergradient norm vs gradient-equivalent work" in page


# Four solvers on one dataset, one repetition each: C diverges (marked)
# after reaching the smallest hypergradient norm, D ends with a value above
# its start, F saturates (hypergradient exactly 0) with a value below its
# start, E is the honest best.
FAILURES = results([
    ("d", "C", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "C", 0, 1, 1.0, 0, 5, 0, 1e-6, 0.2),
    ("d", "C", 0, 2, 2.0, 0, 9, 0, 1e-7, 0.1),
    ("d", "D", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "D", 0, 1, 1.0, 0, 5, 0, 1e-3, 0.1),
    ("d", "E", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "E", 0, 1, 1.0, 0, 5, 0, 0.5, 0.9),
    ("d", "F", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "F", 0, 1, 1.0, 0, 5, 0, 0.0, 0.5),
]).assign(objective_value=[2.0, 1.0, 1e9, 2.0, 2.5, 2.0, 1.5, 2.0, 1.8],
          objective_diverged=[False, False, True, False, False, False,
                              False, False, False])


def test_budget_table_never_ranks_a_diverged_or_worsened_run_first():
    data, _ = plot_data("budget_table", FAILURES)
    table = data[f"budget_table_{OBJECTIVE}_objective_hypergrad_norm_1_10"]
    # Rank order: the honest run, then the marked ones, the diverged last.
    assert table["data"] == [
        ["d", "E", "**0.5**", "**0.5**"],
        ["d", "F", "0.0 (hypergradient vanished)",
         "0.0 (hypergradient vanished)"],
        ["d", "D", "0.001 (value above start)", "0.001 (value above start)"],
        ["d", "C", "1e-06 (diverged)", "1e-06 (diverged)"]]
    # On the value itself a worse value ranks itself; a diverged run is
    # still marked (its best value came before it diverged) and last.
    value = data[f"budget_table_{OBJECTIVE}_objective_value_1_10"]
    assert value["data"] == [["d", "E", "**1.5**", "**1.5**"],
                             ["d", "F", 1.8, 1.8],
                             ["d", "D", 2.0, 2.0],
                             ["d", "C", "1.0 (diverged)", "1.0 (diverged)"]]


def test_budget_table_ranks_a_failed_run_after_a_diverged_one():
    failed = FAILURES.assign(objective_failed=[
        False, False, False, False, False, False, False, False, True])
    data, options = plot_data("budget_table", failed)
    assert "objective_failed" not in options["metric"]
    value = data[f"budget_table_{OBJECTIVE}_objective_value_1_10"]
    assert value["data"] == [["d", "E", "**1.5**", "**1.5**"],
                             ["d", "D", 2.0, 2.0],
                             ["d", "C", "1.0 (diverged)", "1.0 (diverged)"],
                             ["d", "F", "2.0 (failed)", "2.0 (failed)"]]


def test_budget_curve_labels_a_diverged_solver_and_plots_no_status():
    data, options = plot_data("budget_curve", FAILURES)
    assert "objective_diverged" not in options["metric"]
    key = f"budget_curve_d_{OBJECTIVE}_objective_hypergrad_norm_HVPs"
    assert [c["label"] for c in data[key]["data"]] == [
        "C (diverged)", "D", "E", "F"]
