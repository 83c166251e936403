"""The HTML report of a tiny run, opened in headless Chromium without
network, at 1400 px: every saved view of config.yml draws, on the results
of a run like the quickstart (a problem with test data, one without, a
first-order method) and on those of the quadratic alone; every curve is
drawn with all its points, finite, its marker on the figure; every table
has its rows and all its columns in the window; the view tabs all fit. A
screenshot of the view the report opens on goes to pytest's temporary
folder (``python scripts/report_views.py RESULTS --screenshot
docs/report.png`` makes the README's).

Needs Chromium and local copies of the report's scripts: run
.ci/browser-assets first (benchmark_utils/testing/browser.py says how they
are used).
"""
import math
import re
import shutil
import struct

import pandas as pd
import pytest
import yaml
from conftest import ROOT
from test_benchopt import SMALL_QUADRATIC, benchopt

from benchmark_utils.plotting.budget import (curve_labels, hvp_free_runs,
                                             records)
from benchmark_utils.testing.browser import (render_report, report_views,
                                             screenshot, view_problems)

#: Two methods that spend HVPs and one that does not (F2SA).
SOLVERS = ("SOBA", "LancBiO", "F2SA")
#: A problem without test data and one with it (real digits), as in the
#: quickstart.
DATASETS = (SMALL_QUADRATIC,
            "hyperclean_mnist5k[n_train=100,n_val=50,n_test=50]")
#: What benchopt reads from a benchmark folder. The run goes to a copy:
#: benchopt 1.10 writes its outputs into the benchmark's own folder.
BENCHMARK_FILES = ("objective.py", "config.yml", "datasets", "solvers",
                   "plots", "benchmark_utils")
WIDTH, HEIGHT = 1400, 900
#: A number to 3 significant digits, in bold when it ranks first, and why
#: it is or is not first: "**0.500** (best)", "1.00e-06 (diverged)".
BUDGET_CELL = re.compile(r"(\S+) \(([^()]+)\)")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The results of three solvers for three evaluations each on the two
    DATASETS."""
    copy = tmp_path_factory.mktemp("run") / "benchmark"
    copy.mkdir()
    for name in BENCHMARK_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, copy / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, copy / name)
    benchopt(
        "run", str(copy),
        *[arg for dataset in DATASETS for arg in ("-d", dataset)],
        "-o", "Bilevel optimization[device=cpu,hvp_mode=closed_form]",
        *[arg for solver in SOLVERS for arg in ("-s", solver)],
        "--max-runs", "3", "--timeout", "30", "--no-plot",
        "--output", "report")
    return copy / "outputs" / "report.parquet"


def quadratic_only(results, folder):
    """The results that a run of the quadratic alone writes: its rows, and
    only the columns that it fills (no test metrics, no hyper-cleaning
    parameters)."""
    df = pd.read_parquet(results)
    df = df[df["dataset_name"] == SMALL_QUADRATIC].dropna(axis=1, how="all")
    path = folder / "quadratic.parquet"
    df.to_parquet(path)
    return path


@pytest.fixture(scope="module", params=["quickstart-like", "quadratic only"])
def results(request, run, tmp_path_factory):
    if request.param == "quickstart-like":
        return run
    return quadratic_only(run, tmp_path_factory.mktemp("quadratic"))


def saved_views():
    return yaml.safe_load((ROOT / "config.yml").read_text())["plot_configs"]


def is_finite_number(value):
    # JSON (the page's report) writes NaN and infinities as null.
    return isinstance(value, (int, float)) and math.isfinite(value)


def shown_dataset(title):
    """The dataset a plot's title names ("Data: <name>" or "Curves on
    <name>", on its first line)."""
    first_line = re.split(r"<br\s*/?>|\n", title)[0]
    return re.sub(r"^(Data: |Curves on )", "", first_line)


def check_curve_plot(name, view, plot, df, labels):
    """One trace per curve of the dataset shown (the curves that spend
    HVPs on the HVP axis), each with all its points, finite, every point
    that the axes can show drawn as a marker."""
    dataset = shown_dataset(plot["title"])
    data = df[df["dataset_name"] == dataset]
    metric = view["budget_curve_metric"]
    if records(df, metric):
        # A view of a metric opens on a dataset that records it.
        assert records(data, metric), (name, dataset)
    else:
        assert "value shown" in plot["title"], name
    left_out = (hvp_free_runs(data) if view["budget_curve_X_axis"] == "HVPs"
                else set())
    n_points = {labels[solver]: curve["stop_val"].nunique()
                for solver, curve in data.groupby("solver_name")
                if (dataset, solver) not in left_out}
    traces = {trace["name"]: trace for trace in plot["traces"]}
    assert len(plot["traces"]) == len(traces) == len(n_points), name
    assert set(traces) == set(n_points), name
    assert sorted(plot["legend"]) == sorted(n_points), name
    log_x, log_y = (axis == "log" for axis in plot["axis_types"])
    for label, trace in traces.items():
        assert len(trace["x"]) == len(trace["y"]) == n_points[label], (
            name, label)
        assert all(map(is_finite_number, trace["x"] + trace["y"])), (
            name, label, trace["x"], trace["y"])
        # A log axis cannot show 0 (no HVP spent yet at the start).
        drawable = sum((x > 0 or not log_x) and (y > 0 or not log_y)
                       for x, y in zip(trace["x"], trace["y"]))
        assert drawable >= 2, (name, label)
        assert trace["markers_drawn"] == drawable, (name, label)


def check_budget_table(name, view, table, df, labels):
    """One row per curve of the dataset shown, which records the metric
    (or the value, where the run has no dataset that does); a first-order
    curve reads "n/a: first-order" under the HVP budget; every other cell
    a finite number and why it ranks as it does."""
    dataset = shown_dataset(table["title"])
    data = df[df["dataset_name"] == dataset]
    if records(df, view["budget_table_metric"]):
        assert records(data, view["budget_table_metric"]), name
    else:
        assert "value shown" in table["title"], name
    assert sorted(row[1] for row in table["rows"]) == sorted(
        labels[solver] for solver in data["solver_name"].unique()), name
    first_order = {labels[solver] for _, solver in hvp_free_runs(data)}
    assert first_order, "the run has a first-order curve"
    for row in table["rows"]:
        assert len(row) == 5, (name, row)
        for index, cell in enumerate(row[2:]):
            if index == 1 and row[1] in first_order:
                assert cell == "n/a: first-order", (name, row)
                continue
            match = BUDGET_CELL.fullmatch(cell)
            assert match and math.isfinite(float(match.group(1))), (
                name, row)


def check_profile(name, plot, labels):
    """One step curve per solver curve, from tau = 1, between 0 and 1."""
    assert sorted(trace["name"] for trace in plot["traces"]) == sorted(
        set(labels.values())), name
    for trace in plot["traces"]:
        assert trace["x"][0] == 1 and all(map(is_finite_number, trace["x"]))
        assert all(0 <= y <= 1 for y in trace["y"]), (name, trace)


def check_curves_table(name, table, df, labels):
    """One row per curve of the dataset shown, with the steps it used."""
    dataset = shown_dataset(table["title"])
    solvers = df.loc[df["dataset_name"] == dataset, "solver_name"].unique()
    assert sorted(row[0] for row in table["rows"]) == sorted(
        labels[solver] for solver in solvers), name
    for row in table["rows"]:
        # Every solver here has an inner step ('auto' resolved).
        assert re.match(r"inner=\d", row[1]), (name, row)


def test_every_saved_view_draws_every_curve(results, tmp_path):
    df = pd.read_parquet(results)
    labels = curve_labels(df)
    views = saved_views()
    report = report_views(render_report(results, tmp_path), tmp_path,
                          WIDTH, HEIGHT)

    not_local = [problem for problem in report["page_problems"]
                 if problem.startswith(("refused to load", "failed to load"))]
    assert not_local == [], "the page loaded something not copied locally"
    assert report["page_problems"] == []
    assert report["window_width"] == WIDTH
    assert report["tabs_fit"], "the view tabs do not fit at 1400 px"
    assert report["opened_on"] == next(iter(views))
    assert [drawn["name"] for drawn in report["views"]] == list(views)

    checked_kinds = set()
    for drawn in report["views"]:
        name, view = drawn["name"], views[drawn["name"]]
        assert view_problems(drawn) == [], name
        assert drawn["plot_kind"] == view["plot_kind"], name
        kind = view["plot_kind"]
        if kind == "budget_curve":
            check_curve_plot(name, view, drawn["plot"], df, labels)
        elif kind == "budget_table":
            check_budget_table(name, view, drawn["table"], df, labels)
        elif kind == "performance_profile":
            check_profile(name, drawn["plot"], labels)
        else:
            check_curves_table(name, drawn["table"], df, labels)
        checked_kinds.add(kind)
    assert checked_kinds == {"budget_curve", "budget_table",
                             "performance_profile", "curves_table"}


def test_screenshot_of_the_view_the_report_opens_on(run, tmp_path):
    png = tmp_path / "report.png"
    screenshot(render_report(run, tmp_path), tmp_path, png, WIDTH, HEIGHT)
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (WIDTH, HEIGHT)
