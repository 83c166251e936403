"""The HTML report of a tiny run, opened in headless Chromium without
network: every saved view of config.yml draws one curve per solver, each
point finite and its marker on the figure, or a table of one row per
solver; the view the report opens on is saved as docs/report.png.

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
from test_benchopt import benchopt

from benchmark_utils.testing.browser import report_views, screenshot

# Solvers that carry v from their start, so that every metric of theirs is
# finite from the first point: benchopt 1.10's objective_curve drops a
# curve's leading NaN from y but not from x (stocBiO's linear-system
# residual before its first iteration), and draws it shifted.
SOLVERS = ("SOBA", "LancBiO", "SubBiO")
#: What benchopt reads from a benchmark folder. The run goes to a copy:
#: benchopt 1.10 writes the report into the benchmark's own outputs/ folder,
#: and writes none for an --output outside it.
BENCHMARK_FILES = ("objective.py", "config.yml", "datasets", "solvers",
                   "plots", "benchmark_utils")
SCREENSHOT = ROOT / "docs" / "report.png"
SCREENSHOT_SIZE = (1600, 1100)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(results table, report HTML) of three solvers for three evaluations
    each on a small hyper-cleaning problem: real digits, so that every
    metric of the saved views, test accuracy included, is recorded."""
    copy = tmp_path_factory.mktemp("run") / "benchmark"
    copy.mkdir()
    for name in BENCHMARK_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, copy / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, copy / name)
    output = benchopt(
        "run", str(copy), "-d",
        "hyperclean_mnist5k[n_train=100,n_val=50,n_test=50]",
        "-o", "Bilevel optimization[device=cpu,hvp_mode=closed_form]",
        *[arg for solver in SOLVERS for arg in ("-s", solver)],
        "--max-runs", "3", "--timeout", "30", "--no-display",
        "--output", "report")
    pages = list((copy / "outputs").glob("*_report.html"))
    assert len(pages) == 1, f"no report written:\n{output}"
    df = pd.read_parquet(copy / "outputs" / "report.parquet")
    return df, pages[0].read_text(encoding="utf-8")


def saved_views():
    return yaml.safe_load((ROOT / "config.yml").read_text())["plot_configs"]


def view_metric(view):
    """The results column a saved view shows, None for a kind without
    one."""
    kind = view["plot_kind"]
    return view.get(f"{kind}_metric", view.get(f"{kind}_objective_column"))


def is_finite_number(value):
    # JSON (the page's report) writes NaN and infinities as null.
    return isinstance(value, (int, float)) and math.isfinite(value)


def check_plot(name, plot, n_points):
    """One trace per solver, ``n_points[solver]`` finite points each, every
    point that the axes can show drawn as a marker."""
    assert plot is not None, f"{name}: no plot drawn"
    traces = {trace["name"]: trace for trace in plot["traces"]}
    assert len(plot["traces"]) == len(traces) == len(n_points), name
    assert set(traces) == set(n_points), name
    assert sorted(plot["legend"]) == sorted(n_points), name
    log_x, log_y = (axis == "log" for axis in plot["axis_types"])
    for solver, trace in traces.items():
        assert len(trace["x"]) == len(trace["y"]) == n_points[solver], (
            name, solver)
        assert all(map(is_finite_number, trace["x"] + trace["y"])), (
            name, solver, trace["x"], trace["y"])
        # A log axis cannot show 0 (no HVP spent yet at the start).
        drawable = sum((x > 0 or not log_x) and (y > 0 or not log_y)
                       for x, y in zip(trace["x"], trace["y"]))
        assert drawable >= 2, (name, solver)
        assert trace["markers_drawn"] == drawable, (name, solver)


def check_table(name, table, solvers):
    """One row per solver, its two budget cells finite numbers (each maybe
    followed by the reason it is not ranked, as "(diverged)")."""
    assert table is not None, f"{name}: no table drawn"
    assert table["columns"][:2] == ["dataset", "solver"], name
    assert len(table["columns"]) == 4, name
    assert len(table["rows"]) == len(solvers), name
    assert {row[1] for row in table["rows"]} == set(solvers), name
    for row in table["rows"]:
        assert len(row) == 4, (name, row)
        for cell in row[2:]:
            number = re.fullmatch(r"(\S+)( \([^)]+\))?", cell)
            assert number and math.isfinite(float(number.group(1))), (
                name, row)


def test_every_saved_view_draws_every_solver(run, tmp_path):
    df, page = run
    n_points = df.groupby("solver_name")["stop_val"].nunique().to_dict()
    assert len(n_points) == len(SOLVERS)
    assert set(n_points.values()) == {4}   # the start and 3 evaluations
    views = saved_views()
    report = report_views(page, tmp_path)

    not_local = [problem for problem in report["page_problems"]
                 if problem.startswith(("refused to load", "failed to load"))]
    assert not_local == [], "the page loaded something not copied locally"
    assert report["opened_on"] == next(iter(views))
    assert [drawn["name"] for drawn in report["views"]] == list(views)

    assert report["page_problems"] == []
    checked_kinds = set()
    for drawn in report["views"]:
        name, view = drawn["name"], views[drawn["name"]]
        metric = view_metric(view)
        assert metric is None or metric in df.columns, (name, metric)
        assert drawn["problems"] == [], name
        assert drawn["plot_kind"] == view["plot_kind"], name
        if view["plot_kind"] == "budget_table":
            check_table(name, drawn["table"], n_points)
        else:
            check_plot(name, drawn["plot"], n_points)
        checked_kinds.add(view["plot_kind"])
    assert checked_kinds == {"objective_curve", "budget_curve",
                             "budget_table"}


def test_screenshot_of_the_view_the_report_opens_on(run, tmp_path):
    _, page = run
    screenshot(page, tmp_path, SCREENSHOT, *SCREENSHOT_SIZE)
    header = SCREENSHOT.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == SCREENSHOT_SIZE
