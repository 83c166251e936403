"""The report's plots (plots/, benchmark_utils/plotting/) on results
tables written by hand: medians, budget tables (the HVP-free rule, the
value-above-start rule, the tie rule), labels and colours, the performance
profile, the curves table; the saved views of config.yml; and the HTML
report of a real run."""
import itertools
import json
import math
import re
import shutil
import warnings
from pathlib import Path

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
import yaml
from benchopt.plotting import _check_view
from benchopt.plotting.base import COLORS as BENCHOPT_COLORS
from conftest import (BENCHMARK, ROOT, small_hypercleaning_problem,
                      small_regsel_problem)
from test_benchopt import SMALL_QUADRATIC, benchopt

from benchmark_utils.plotting.budget import (FIRST_WITH_METRIC,
                                             HELD_OUT_METRICS, PALETTE,
                                             best_within_budget,
                                             budget_cells, curve_labels,
                                             median_curve, metric_columns,
                                             ranks)
from benchmark_utils.plotting.profile import (performance_ratios, profile,
                                              profile_steps,
                                              times_to_target)

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


def test_points_after_the_budget_do_not_count():
    # B's last point came after the solver-time budget (marked): within
    # any budget its best is the one before.
    late = TABLE.assign(objective_over_budget=[False] * 10 + [True])
    norm = best_within_budget(late, "objective_hypergrad_norm",
                              "objective_n_grad", 100)
    assert norm["d", "B"] == 3.0


def test_tie_rule_is_a_relative_gap_and_values_print_3_digits():
    norm = "objective_hypergrad_norm"
    # 1.0005 is within 0.1% of 1.0: a tie (both rank 1, both bold); 1.01
    # is 1% behind: rank 3, its gap printed.
    values = [1.01, 1.0, 1.0005]
    assert ranks(values, norm, [None] * 3) == [3, 1, 1]
    assert budget_cells(values, norm, [None] * 3) == [
        "1.01 (+1%)", "**1.00** (best)", "**1.00** (tie, +0.05%)"]
    # Values that four fixed decimals would print as 0.0000 alike: a
    # factor 1000 apart, not tied.
    tiny = [1e-9, 1e-12, 2.5e-12]
    assert ranks(tiny, norm, [None] * 3) == [3, 1, 2]
    assert budget_cells(tiny, norm, [None] * 3) == [
        "1.00e-09 (\u00d71e+03)", "**1.00e-12** (best)",
        "2.50e-12 (+150%)"]
    # Larger is better for an accuracy; a disqualified value has no rank
    # and is never bold, even when it is the largest.
    accuracy = [0.871, 0.9, 0.95]
    reasons = [None, None, "value above start"]
    assert ranks(accuracy, "objective_test_accuracy", reasons) == [
        2, 1, None]
    assert budget_cells(accuracy, "objective_test_accuracy", reasons) == [
        "0.871 (-3.22%)", "**0.900** (best)", "0.950 (value above start)"]


def test_metric_options_leave_out_counts_costs_statuses_and_steps():
    table = TABLE.assign(objective_over_budget=False, objective_failed=False,
                         objective_step_size_inner=0.1)
    assert metric_columns(table) == ["objective_hypergrad_norm",
                                     "objective_test_accuracy"]


def plot_data(kind, df=TABLE):
    data, options = BENCHMARK.get_plot_data(df, [kind])
    return data[kind], options[kind]


def test_budget_curve_plots_every_solver_on_every_axis():
    data, options = plot_data("budget_curve")
    assert options["X_axis"] == ["Time", "HVPs", "Gradient-equivalent work",
                                 "Epochs"]
    assert options["dataset"] == [FIRST_WITH_METRIC, "d"]
    key = f"budget_curve_d_{OBJECTIVE}_objective_hypergrad_norm"
    time_plot = data[f"{key}_Time"]
    time = {c["label"]: c for c in time_plot["data"]}
    # Medians over repetitions of the solver time at each stop_val (A's
    # third repetition keeps its last point, at 2 s).
    assert time["A"]["x"] == [0.0, 1.5, 2.0]
    assert time["B"]["x"] == [0.0, 0.5, 1.0]
    assert time_plot["scale"] == "loglog"
    assert time_plot["xlabel"] == "solver time (s)"
    assert time_plot["ylabel"] == (
        "hypergradient norm ||grad phi(x)|| (lower is better)")
    # B spends no HVP: left out of the HVP axis, which says so.
    hvp_plot = data[f"{key}_HVPs"]
    assert [c["label"] for c in hvp_plot["data"]] == ["A"]
    assert "curves without HVPs" in hvp_plot["title"]
    work_plot = data[f"{key}_Gradient-equivalent work"]
    work = {c["label"]: c for c in work_plot["data"]}
    assert set(work) == {"A", "B"}
    # n_grad + 2 n_hvp + 3 n_cross, medians over repetitions.
    assert work["A"]["x"] == [0.0, 2 + 2 * 12 + 3, 4 + 2 * 20 + 3 * 2]
    assert work["B"]["x"] == [0.0, 10.0, 20.0]
    assert "n_grad + 2.00 n_hvp + 3.00 n_cross" in work_plot["xlabel"]
    assert work_plot["scale"] == "semilog-y"
    # Each curve keeps its colour and marker on every axis.
    assert work["A"]["color"] == time["A"]["color"] != work["B"]["color"]


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
    assert len(data[f"{key}_HVPs"]["data"]) == 1
    assert data[f"{key}_Gradient-equivalent work"]["data"] == []


def test_a_metric_view_opens_on_a_dataset_that_records_it():
    # Two datasets, the first without a test accuracy (a quadratic).
    quadratic = TABLE.assign(dataset_name="quadratic",
                             objective_test_accuracy=np.nan)
    both = pd.concat([quadratic, TABLE], ignore_index=True)
    data, _ = plot_data("budget_curve", both)
    key = (f"budget_curve_{FIRST_WITH_METRIC}_{OBJECTIVE}"
           "_objective_test_accuracy_Time")
    assert data[key]["title"] == "Data: d"
    assert data[key]["ylabel"] == "test accuracy (higher is better)"
    # On a run without any test accuracy (the quadratic alone), the view
    # still draws: the hyper-objective, and its title says so.
    alone = quadratic.drop(columns=["objective_test_accuracy"]).assign(
        objective_value=1.0)
    data, options = plot_data("budget_curve", alone)
    assert "objective_test_accuracy" in options["metric"]
    plot = data[key]
    assert plot["title"] == ("Data: quadratic\nno test_accuracy on this "
                             "dataset: value shown")
    assert plot["ylabel"] == "hyper-objective phi(x) (lower is better)"
    assert {c["label"] for c in plot["data"]} == {"A", "B"}
    table, _ = plot_data("budget_table", alone)
    table = table[f"budget_table_{FIRST_WITH_METRIC}_{OBJECTIVE}"
                  "_objective_test_accuracy_10_1000"]
    assert table["title"].startswith("Data: quadratic\nbest value within")
    assert table["title"].endswith(
        "\nno test_accuracy on this dataset: value shown")
    assert len(table["data"]) == 2


def test_held_out_metrics_are_those_the_problems_record():
    problems = (small_hypercleaning_problem(), small_regsel_problem(3))
    recorded = set().union(*(
        problem.test_metrics(problem.x0, problem.y0) for problem in problems))
    assert {f"objective_{key}" for key in recorded} == set(HELD_OUT_METRICS)


def test_budget_table_hvp_budget_ranks_only_curves_that_spend_hvps():
    data, options = plot_data("budget_table")
    assert options["oracle_budget"] == [100, 1000, 10000, 100000]
    table = data[f"budget_table_d_{OBJECTIVE}_objective_hypergrad_norm_1_100"]
    assert table["columns"] == ["rank", "curve", "1 s", "100 HVPs",
                                "100 grad-equiv."]
    assert table["title"].startswith(
        "Data: d\nbest hypergrad_norm within each budget")
    # Within 1 s: A's repetitions reach 4, 8, 8 (median 8), B 0.8. Within
    # 100 HVPs: A's reach 1, 0.5 and 8 (median 1); B spends none: not
    # ranked there, though its 0.8 is below A's 1. Within 100
    # gradient-equivalents (n_grad + 2 n_hvp + 3 n_cross): A's reach 1,
    # 0.5, 8 (work 50, 58 and 33), B 0.8. Rows in rank order within the
    # time budget.
    assert table["data"] == [
        [1, "B", "**0.800** (best)", "n/a: first-order", "**0.800** (best)"],
        [2, "A", "8.00 (\u00d710)", "**1.00** (best)", "1.00 (+25%)"]]


def test_saved_views_use_valid_plots_and_option_values():
    views = yaml.safe_load((ROOT / "config.yml").read_text())["plot_configs"]
    plots = {plot._get_name(): plot for plot in BENCHMARK.get_plots()}
    quickstart_like = TABLE.assign(objective_value=1.0,
                                   objective_linsys_residual=1.0,
                                   objective_memory_peak_bytes=1e6)
    quadratic_only = quickstart_like.drop(
        columns=["objective_test_accuracy"])
    options_of = {}
    for name, view in views.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _check_view(name, view, list(plots.values()))
        kind = view["plot_kind"]
        for index, table in enumerate((quickstart_like, quadratic_only)):
            if (kind, index) not in options_of:
                options_of[kind, index] = plots[kind]._get_all_plots(table)[1]
            for option, values in options_of[kind, index].items():
                if f"{kind}_{option}" in view:
                    assert view[f"{kind}_{option}"] in values, (name,
                                                                option)
    # Short tab names (tests/test_html_report.py measures in the browser
    # that all the tabs fit at 1400 px).
    assert all(len(name) <= 14 for name in views)


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
    assert {"budget_curve", "budget_table", "performance_profile",
            "curves_table"} <= set(plots)
    labels = curve_labels(df)
    assert sorted(labels.values()) == ["F2SA", "LancBiO", "SOBA"]
    objective = df["objective_name"][0]
    for axis in ("Time", "HVPs", "Gradient-equivalent work"):
        key = (f"budget_curve_{SMALL_QUADRATIC}_{objective}"
               f"_objective_hypergrad_norm_{axis}")
        curves = {c["label"]: c for c in plots["budget_curve"][key]["data"]}
        # F2SA spends no HVP: not on the HVP axis.
        assert set(curves) == ({"LancBiO", "SOBA"} if axis == "HVPs"
                               else {"F2SA", "LancBiO", "SOBA"}), axis
        for solver, label in labels.items():
            if label not in curves:
                continue
            n_points = df.loc[df["solver_name"] == solver, "stop_val"]
            assert len(curves[label]["x"]) == n_points.nunique()
            # 2 repetitions: a quantile band.
            assert len(curves[label]["y_low"]) == len(curves[label]["y"])
    table = plots["budget_table"][
        f"budget_table_{FIRST_WITH_METRIC}_{objective}"
        "_objective_hypergrad_norm_10_1000"]
    assert {row[1] for row in table["data"]} == set(labels.values())
    assert next(row[3] for row in table["data"] if row[1] == "F2SA") == (
        "n/a: first-order")
    # The steps each curve ran with ('auto' resolved: 1 / (1.1 L), L of
    # each repetition's problem) are in the results, the same on every
    # point of a repetition, and in the curves table as their range.
    steps = df.groupby(["solver_name", "idx_rep"])[
        "objective_step_size_inner"]
    assert (steps.nunique() == 1).all() and (steps.min() > 0).all()
    rows = plots["curves_table"][f"curves_table_{SMALL_QUADRATIC}_{objective}"]
    for row in rows["data"]:
        solver = next(s for s, label in labels.items() if label == row[0])
        low, high = steps.min()[solver].min(), steps.max()[solver].max()
        assert row[1].startswith(f"inner={low:#.3g}") and (
            f"{high:#.3g} (auto)" in row[1]), row
    assert not df["objective_over_budget"].any()
    # The saved views of config.yml are in the page.
    assert "Fastest" in page and "Profile" in page


# Four solvers on one dataset, one repetition each: C diverges (marked)
# after reaching the smallest hypergradient norm, D ends with a value above
# its start, F saturates with a value below its start (its hypergradient
# underflows to 8e-68: sigma'(x_i) of saturated hyper-cleaning weights), E
# is the honest best.
FAILURES = results([
    ("d", "C", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "C", 0, 1, 1.0, 0, 5, 0, 1e-6, 0.2),
    ("d", "C", 0, 2, 2.0, 0, 9, 0, 1e-7, 0.1),
    ("d", "D", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "D", 0, 1, 1.0, 0, 5, 0, 1e-3, 0.1),
    ("d", "E", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "E", 0, 1, 1.0, 0, 5, 0, 0.5, 0.9),
    ("d", "F", 0, 0, 0.0, 0, 0, 0, 8.0, 0.1),
    ("d", "F", 0, 1, 1.0, 0, 5, 0, 8e-68, 0.5),
]).assign(objective_value=[2.0, 1.0, 1e9, 2.0, 2.5, 2.0, 1.5, 2.0, 1.8],
          objective_diverged=[False, False, True, False, False, False,
                              False, False, False])


def test_budget_table_never_ranks_a_diverged_or_worsened_run_first():
    data, _ = plot_data("budget_table", FAILURES)
    table = data[f"budget_table_d_{OBJECTIVE}_objective_hypergrad_norm_1_100"]
    # Rank order: the honest run, then the marked ones, the diverged last;
    # the same in every budget column.
    marked = [("F", "8.00e-68 (hypergradient vanished)"),
              ("D", "0.00100 (value above start)"),
              ("C", "1.00e-06 (diverged)")]
    assert table["data"] == [[1, "E", *["**0.500** (best)"] * 3]] + [
        ["not ranked", solver, *[cell] * 3] for solver, cell in marked]
    # On the value itself a worse value ranks itself; a diverged run is
    # still marked (its best value came before it diverged) and last.
    value = data[f"budget_table_d_{OBJECTIVE}_objective_value_1_100"]
    assert value["data"] == [
        [1, "E", *["**1.50** (best)"] * 3],
        [2, "F", *["1.80 (+20%)"] * 3],
        [3, "D", *["2.00 (+33.3%)"] * 3],
        ["not ranked", "C", *["1.00 (diverged)"] * 3]]


def test_budget_table_ranks_a_failed_run_after_a_diverged_one():
    failed = FAILURES.assign(objective_failed=[
        False, False, False, False, False, False, False, False, True])
    data, options = plot_data("budget_table", failed)
    assert "objective_failed" not in options["metric"]
    value = data[f"budget_table_d_{OBJECTIVE}_objective_value_1_100"]
    assert value["data"] == [
        [1, "E", *["**1.50** (best)"] * 3],
        [2, "D", *["2.00 (+33.3%)"] * 3],
        ["not ranked", "C", *["1.00 (diverged)"] * 3],
        ["not ranked", "F", *["2.00 (failed)"] * 3]]


def test_budget_curve_labels_a_diverged_solver_and_plots_no_status():
    data, options = plot_data("budget_curve", FAILURES)
    assert "objective_diverged" not in options["metric"]
    key = f"budget_curve_d_{OBJECTIVE}_objective_hypergrad_norm_HVPs"
    assert [c["label"] for c in data[key]["data"]] == [
        "C (diverged)", "D", "E", "F"]


def test_labels_name_only_the_parameters_that_differ():
    curves = pd.DataFrame([
        dict(solver_name=f"AmIGO[{inner},T=5]", p_solver_inner_solver=inner,
             p_solver_n_inner_steps=5, p_solver_step_size_inner="tuned")
        for inner in ("gd", "cg")] + [
        dict(solver_name="LancBiO[T=5,m=1..auto]", p_solver_n_inner_steps=5,
             p_solver_step_size_inner="tuned")])
    assert curve_labels(curves) == {
        "AmIGO[gd,T=5]": "AmIGO[inner_solver=gd]",
        "AmIGO[cg,T=5]": "AmIGO[inner_solver=cg]",
        "LancBiO[T=5,m=1..auto]": "LancBiO"}


def lab(color):
    """CIELAB coordinates of an sRGB colour (D65 white)."""
    rgb = np.array(matplotlib.colors.to_rgb(color))
    linear = np.where(rgb <= 0.04045, rgb / 12.92,
                      ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ linear
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz),
                 xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]),
                     200 * (f[1] - f[2])])


def closest_pair(colors):
    return min(np.linalg.norm(lab(a) - lab(b))
               for a, b in itertools.combinations(colors, 2))


def test_palette_keeps_20_curves_apart_and_visible_on_white():
    assert len(set(PALETTE)) == 20
    # CIE76 colour differences: the closest two of the 20 are 23 apart
    # (benchopt's tab20 order: 17, its pale half close to one another),
    # and every colour is at least 44 from the white page (benchopt's:
    # 20).
    assert closest_pair(PALETTE) > 22
    assert closest_pair(BENCHOPT_COLORS) < 17
    white = lab("white")
    assert min(np.linalg.norm(lab(c) - white) for c in PALETTE) > 40
    assert min(np.linalg.norm(lab(c) - white)
               for c in BENCHOPT_COLORS) < 20


def timed_rows(dataset, solver, times, norms, rep=0):
    return [(dataset, solver, rep, k, t, 0, k, 0, norm, np.nan)
            for k, (t, norm) in enumerate(zip(times, norms))]


# Three problems; each curve's norm from 1 down. Targets at tolerance 0.1:
# 0.1 + 0.1 (1 - 0.1) = 0.19 on p and q (best 0.1), 0.1 on r (best 0).
PROFILE_TABLE = results(
    timed_rows("p", "S", [0, 1, 2], [1.0, 0.5, 0.1])
    + timed_rows("p", "T", [0, 4, 8], [1.0, 0.15, 0.12])
    + timed_rows("p", "U", [0, 0.5], [1.0, 1e-3])
    + timed_rows("q", "S", [0, 3], [1.0, 0.1])
    + timed_rows("q", "T", [0, 1, 6], [1.0, 0.5, 0.18])
    + timed_rows("q", "U", [0, 1], [1.0, 0.9])
    + timed_rows("r", "S", [0, 1], [1.0, 1e-3])
    + timed_rows("r", "T", [0, 5], [1.0, 0.05])
    + timed_rows("r", "U", [0, 2], [1.0, 0.5])).assign(
    # U diverged on p (after its small norm): it solves nothing there.
    objective_diverged=lambda df: (df["dataset_name"] == "p")
    & (df["solver_name"] == "U") & (df["stop_val"] == 1),
    objective_value=1.0)


def test_performance_profile_counts_the_problems_solved_within_tau():
    times = times_to_target(PROFILE_TABLE, "objective_hypergrad_norm", 0.1)
    # p: S reaches 0.19 at 2 s, T at 4 s, U diverged. q: S at 3 s, T at
    # 6 s, U never. r: S reaches 0 at 1 s (the best), T's 0.05 misses the
    # target 0.1 * 1 = 0.1? No: 0.05 <= 0.1, at 5 s; U never.
    assert times == {
        "p": {"S": 2.0, "T": 4.0, "U": math.inf},
        "q": {"S": 3.0, "T": 6.0, "U": math.inf},
        "r": {"S": 1.0, "T": 5.0, "U": math.inf}}
    ratios = performance_ratios(times)
    assert ratios["r"] == {"S": 1.0, "T": 5.0, "U": math.inf}
    rho = profile(ratios, [1.0, 2.0, 5.0, math.inf])
    assert rho == {"S": [1.0, 1.0, 1.0, 1.0],
                   "T": [0.0, 2 / 3, 1.0, 1.0],
                   "U": [0.0, 0.0, 0.0, 0.0]}
    # The step curve of T: 0 at tau = 1, 2/3 from tau = 2, 1 from 5.
    assert profile_steps(ratios, "T", 10.0) == (
        [1.0, 2.0, 2.0, 5.0, 5.0, 10.0],
        [0.0, 0.0, 2 / 3, 2 / 3, 1.0, 1.0])


def test_performance_profile_ignores_points_after_the_budget():
    late = PROFILE_TABLE.assign(objective_over_budget=lambda df: (
        df["dataset_name"] == "p") & (df["solver_name"] == "S")
        & (df["stop_val"] == 2))
    times = times_to_target(late, "objective_hypergrad_norm", 0.1)
    # Without S's last point on p, the best there is U's... diverged, so
    # T's 0.12: target 0.12 + 0.1 (1 - 0.12) = 0.208, reached by T at 4 s
    # and by S never.
    assert times["p"] == {"S": math.inf, "T": 4.0, "U": math.inf}


def test_performance_profile_plot_and_curves_table():
    data, options = plot_data("performance_profile", PROFILE_TABLE)
    assert options["tolerance"] == ["1e-1", "1e-3", "1e-6"]
    plot = data[f"performance_profile_{OBJECTIVE}_objective_hypergrad_norm"
                "_1e-1"]
    curves = {c["label"]: c for c in plot["data"]}
    # The plot ends at twice the largest finite ratio (5).
    assert curves["T"]["x"] == [1.0, 2.0, 2.0, 5.0, 5.0, 10.0]
    assert curves["U"]["y"] == [0.0, 0.0]
    assert plot["title"].startswith("Performance profile on 3 dataset(s)")
    # S ran with a tuned inner step and a given outer one.
    steps = PROFILE_TABLE.assign(
        objective_step_size_inner=0.0123,
        objective_step_size_outer=np.where(
            PROFILE_TABLE["solver_name"] == "S", 2.0, np.nan),
        objective_over_budget=PROFILE_TABLE["time"] > 5,
        p_solver_step_size_inner="tuned", p_solver_step_size_outer=2.0,
        p_solver_n_inner_steps=5.0)
    data, _ = plot_data("curves_table", steps)
    table = data[f"curves_table_r_{OBJECTIVE}"]
    assert table["data"] == [
        ["S", "inner=0.0123 (tuned), outer=2.00", "finished", 2, "1.00 s",
         "n_inner_steps=5"],
        ["T", "inner=0.0123 (tuned)", "finished", 2, "5.00 s",
         "n_inner_steps=5"],
        ["U", "inner=0.0123 (tuned)", "finished", 2, "2.00 s",
         "n_inner_steps=5"]]
    q = data[f"curves_table_q_{OBJECTIVE}"]
    assert q["data"][1][4] == "6.00 s (over budget)"
