"""The step-size tuning protocol (benchmark_utils/tuning.py and
scripts/tune_step_sizes.py --read-only), on results tables written here:
the score of a curve, the selection rule (median over seeds,
disqualifications, the floor on hypergrad_norm, ties), the grids and the
tuned configs that the script writes."""
import importlib.util
import math
import runpy
import sys

import pandas as pd
import pytest
import yaml
from benchopt.cli.main import run as run_command
from benchopt.utils.parametrized_name_mixin import _get_used_parameters
from benchopt.utils.run_context import RunContext
from conftest import (BENCHMARK, ROOT, get_dataset_class, get_solver_class,
                      make_objective)

from benchmark_utils.tuning import (TuningCurve, curve_score,
                                    select_candidate, solver_curves,
                                    step_size_grid, tuned_step_sizes)

SCRIPT = ROOT / "scripts" / "tune_step_sizes.py"
SEEDS = (1001, 1002, 1003)
#: SOBA on a problem with L = 10: 'auto' is 1 / 11.
SOBA_DEFAULTS = {"step_size_inner": "auto", "step_size_outer": 1.0}
LIPSCHITZ = 10.0


def load_script():
    spec = importlib.util.spec_from_file_location("tune_step_sizes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def curve(steps, seed, times, norms, values=None, diverged=None,
          dataset="D", solver="SOBA"):
    """The rows of one curve of a results table: solver ``solver`` with
    step sizes ``steps`` on ``dataset`` and ``seed``."""
    n = len(times)
    rows = pd.DataFrame({
        "solver_name": f"{solver}[{steps}]", "dataset_name": dataset,
        "base_seed": seed, "idx_rep": 0, "stop_val": range(n),
        "time": times, "objective_hypergrad_norm": norms,
        "objective_value": values or [1.0] * n,
        "objective_diverged": diverged or [False] * n})
    for name, value in steps.items():
        rows[f"p_solver_{name}"] = str(value)
    return rows


def scored(steps, seed, score, solver="SOBA"):
    """A curve from ||grad phi|| = 1 at time 0 to 10^(2 score) at the
    budget (1 s), linear in log10: its score is ``score``."""
    return curve(steps, seed, [0.0, 1.0], [1.0, 10.0 ** (2 * score)],
                 values=[1.0, 0.5], solver=solver)


def soba_curve():
    return TuningCurve(get_solver_class("SOBA"), SOBA_DEFAULTS, LIPSCHITZ)


def outer(value):
    return {"step_size_inner": "auto", "step_size_outer": value}


def choose(tables):
    tuning_curve = soba_curve()
    scores = tuning_curve.candidate_scores(
        pd.concat(tables, ignore_index=True), budget=1.0)
    return select_candidate(scores, tuning_curve), scores


def test_score_is_the_mean_log_norm_over_the_budget():
    # log10 norm 0, -1, -2 at 0, 0.5, 1 s (the first point's time counts
    # as 0): trapezoids of -0.25 and -0.75.
    rows = curve(outer(1.0), 1, [0.3, 0.5, 1.0], [1.0, 0.1, 0.01])
    assert curve_score(rows, 1.0) == pytest.approx(-1.0)
    # Held at -2 after its last point: (-1 - 2) / 2.
    assert curve_score(rows, 2.0) == pytest.approx(-1.5)
    # A point beyond the budget: interpolated at the budget (-1.5).
    late = curve(outer(1.0), 1, [0.0, 0.5, 1.5], [1.0, 0.1, 0.01])
    assert curve_score(late, 1.0) == pytest.approx(-0.25 - 0.625)
    # The rows' order does not matter.
    assert curve_score(late.iloc[::-1], 1.0) == pytest.approx(-0.875)


def test_smallest_median_wins_not_the_mean():
    # 3.16: median -2.0 (mean 0.3, one bad seed); 1.0: -1.5 everywhere.
    chosen, scores = choose(
        [scored(outer(3.16), seed, score)
         for seed, score in zip(SEEDS, (-2.0, -2.1, 5.0))]
        + [scored(outer(1.0), seed, -1.5) for seed in SEEDS]
        + [scored(outer(0.316), seed, -1.0) for seed in SEEDS])
    assert chosen == ("auto", 3.16)
    assert scores[("auto", 3.16)] == pytest.approx(-2.0)
    assert scores[("auto", 1.0)] == pytest.approx(-1.5)


def test_a_candidate_missing_a_seed_scores_inf_there():
    chosen, scores = choose(
        [scored(outer(3.16), seed, -3.0) for seed in SEEDS[:2]]
        + [scored(outer(1.0), seed, -1.0) for seed in SEEDS])
    # The table's seeds are those of every curve: 3.16 scores (-3, -3,
    # inf), median -3; with one seed of three, (-3, inf, inf): inf.
    assert scores[("auto", 3.16)] == pytest.approx(-3.0)
    assert chosen == ("auto", 3.16)
    chosen, scores = choose(
        [scored(outer(3.16), SEEDS[0], -3.0)]
        + [scored(outer(1.0), seed, -1.0) for seed in SEEDS])
    assert scores[("auto", 3.16)] == math.inf and chosen == ("auto", 1.0)


def test_a_diverged_candidate_is_never_chosen():
    diverged = [curve(outer(10.0), seed, [0.0, 0.1, 0.2],
                      [1.0, 1e-9, 1e-10], values=[1.0, 0.5, 0.4],
                      diverged=[False, False, True]) for seed in SEEDS]
    assert curve_score(diverged[0], 1.0) == math.inf
    chosen, scores = choose(
        diverged + [scored(outer(1.0), seed, -0.5) for seed in SEEDS])
    assert scores[("auto", 10.0)] == math.inf
    assert chosen == ("auto", 1.0)


def test_a_failed_candidate_is_never_chosen():
    # A solver that raised after reaching a small hypergradient norm: its
    # last point (the last iterate) is finite, and marked failed.
    failed = [curve(outer(10.0), seed, [0.0, 0.1, 0.2],
                    [1.0, 1e-9, 1e-9], values=[1.0, 0.5, 0.5]).assign(
                        objective_failed=[False, False, True])
              for seed in SEEDS]
    assert curve_score(failed[0], 1.0) == math.inf
    chosen, scores = choose(
        failed + [scored(outer(1.0), seed, -0.5) for seed in SEEDS])
    assert scores[("auto", 10.0)] == math.inf
    assert chosen == ("auto", 1.0)


def test_a_candidate_without_the_diverged_column_or_finite_metrics():
    rows = curve(outer(1.0), 1, [0.0, 1.0], [1.0, 1e-3], values=[1.0, 0.5])
    assert curve_score(rows.drop(columns="objective_diverged"), 1.0) == (
        pytest.approx(-1.5))
    for column in ("objective_value", "objective_hypergrad_norm", "time"):
        broken = rows.copy()
        broken.loc[1, column] = math.nan
        assert curve_score(broken, 1.0) == math.inf


def test_a_candidate_ending_above_its_start_is_never_chosen():
    # Saturated hyper-cleaning weights: ||grad phi|| exactly 0, but the
    # value ends above where it started.
    worse = [curve(outer(3.16), seed, [0.0, 0.1, 1.0], [1.0, 0.0, 0.0],
                   values=[1.0, 1.5, 1.2]) for seed in SEEDS]
    chosen, scores = choose(
        worse + [scored(outer(1.0), seed, -0.5) for seed in SEEDS])
    assert scores[("auto", 3.16)] == math.inf
    assert chosen == ("auto", 1.0)


def test_an_exact_zero_norm_is_floored_and_does_not_win():
    # 0 only at the end: log10 floored at -12 over the last 0.1 s: -0.6.
    zero = [curve(outer(3.16), seed, [0.0, 0.9, 1.0], [1.0, 1.0, 0.0],
                  values=[1.0, 0.9, 0.8]) for seed in SEEDS]
    assert curve_score(zero[0], 1.0) == pytest.approx(-0.6)
    # 1e-4 at 0.2 s and held: 0.2 (-2) + 0.8 (-4) = -3.6.
    fast = [curve(outer(1.0), seed, [0.0, 0.2], [1.0, 1e-4],
                  values=[1.0, 0.5]) for seed in SEEDS]
    chosen, scores = choose(zero + fast)
    assert scores[("auto", 1.0)] == pytest.approx(-3.6)
    assert chosen == ("auto", 1.0)


def test_a_table_without_a_step_column_is_named():
    rows = scored(outer(1.0), 1, -1.0).drop(columns="p_solver_step_size_outer")
    with pytest.raises(ValueError, match="'p_solver_step_size_outer'"):
        soba_curve().candidate_scores(rows, budget=1.0)


def test_short_curves_are_counted_among_the_qualified():
    tables = [curve(outer(1.0), 1, [0.0, 0.5], [1.0, 0.1]),
              curve(outer(1.0), 2, [0.0, 0.95], [1.0, 0.1]),
              curve(outer(3.16), 1, [0.0, 0.2], [1.0, math.inf])]
    assert soba_curve().short_curves(
        pd.concat(tables, ignore_index=True), budget=1.0) == (1, 2)


def test_ties_go_to_the_candidate_closest_to_the_default():
    # 0.1 and 3.16 tie at -2; 3.16 is half a decade from 1.0, 0.1 one.
    chosen, _ = choose(
        [scored(outer(value), seed, score) for seed in SEEDS
         for value, score in ((0.1, -2.0), (3.16, -2.0), (1.0, -1.0))])
    assert chosen == ("auto", 3.16)
    # Within the tolerance (0.005 < 0.01) counts as a tie.
    chosen, _ = choose(
        [scored(outer(value), seed, score) for seed in SEEDS
         for value, score in ((10.0, -2.005), (0.316, -2.0))])
    assert chosen == ("auto", 0.316)
    # Equally close (a decade each way): the smaller step.
    chosen, _ = choose(
        [scored(outer(value), seed, -2.0) for seed in SEEDS
         for value in (10.0, 0.1)])
    assert chosen == ("auto", 0.1)
    # Every candidate disqualified: the default.
    chosen, scores = choose(
        [curve(outer(value), seed, [0.0, 1.0], [1.0, math.nan])
         for seed in SEEDS for value in (0.316, 1.0, 3.16)])
    assert set(scores.values()) == {math.inf} and chosen == ("auto", 1.0)


@pytest.fixture(scope="module")
def quadratic_lipschitz(quadratic):
    """(L estimated as BilevelSolver.inner_lipschitz does, true L) on the
    quadratic fixture, whose inner Hessian has eigenvalues in [1, 10]."""
    objective = make_objective(quadratic)
    solver = get_solver_class("SOBA").get_instance()
    RunContext().set_run_context(objective, "dataset", solver,
                                 repetition=0, base_seed=0)
    solver.set_objective(**objective.get_objective())
    return solver.inner_lipschitz(), 10.0


def test_grid_of_an_auto_step_is_capped_at_two_over_l(quadratic_lipschitz):
    estimate, true_lipschitz = quadratic_lipschitz
    assert estimate == pytest.approx(true_lipschitz, rel=1e-3)
    grid = step_size_grid("step_size_inner", "auto", estimate)
    auto = 1 / (1.1 * estimate)
    assert grid[3] == "auto" and len(grid) == 5
    numbers = [auto if value == "auto" else value for value in grid]
    assert all(value < 2 / true_lipschitz for value in numbers)
    # sqrt(10) apart below the default (3 significant digits), and the
    # clipped top: 2 / (1.1 L), rounded down.
    for low, high in zip(numbers[:3], numbers[1:4]):
        assert high / low == pytest.approx(math.sqrt(10), rel=5e-3)
    assert numbers[4] == pytest.approx(2 * auto, rel=1e-2)
    assert numbers[4] <= 2 * auto


def test_grids_of_numeric_steps():
    # Far below the cap (2 / 11): the plain five values.
    assert step_size_grid("step_size_linsys", 0.001, LIPSCHITZ) == [
        0.0001, 0.000316, 0.001, 0.00316, 0.01]
    # An unstable default: clipped to the cap (2 / 11, rounded down),
    # then the default's values below it.
    assert step_size_grid("step_size_inner", 1.0, LIPSCHITZ) == [
        0.00316, 0.01, 0.0316, 0.1, 0.181]
    # The outer step has no cap and keeps its default's spelling.
    assert step_size_grid("step_size_outer", 1.0, LIPSCHITZ) == [
        0.1, 0.316, 1.0, 3.16, 10.0]
    assert step_size_grid("step_size_outer", 0.3, LIPSCHITZ) == [
        0.03, 0.0949, 0.3, 0.949, 3.0]


def test_the_steps_tuned_are_each_solvers_step_sizes():
    tuned = {
        (cls.name, params.get("inner_solver")): tuned_step_sizes(
            cls.name, params)
        for cls in BENCHMARK.get_solvers()
        for params in _get_used_parameters(cls, {})}
    inner, linsys, outer_step = ("step_size_inner", "step_size_linsys",
                                 "step_size_outer")
    assert tuned == {
        ("AID-exact", None): [outer_step],
        ("AmIGO", "gd"): [inner, linsys, outer_step],
        ("AmIGO", "cg"): [inner, outer_step],
        ("BOME", None): [inner, "step_size_joint"],
        ("BSA", None): [inner, linsys, outer_step],
        ("F2SA", None): [inner, outer_step],
        ("HJFBiO", None): [inner, linsys, outer_step],
        ("ITD", None): [inner, outer_step],
        ("LancBiO", None): [inner, outer_step],
        ("SOBA", None): [inner, outer_step],
        ("stocBiO", None): [inner, linsys, outer_step],
        ("SubBiO", None): [inner, linsys, outer_step],
        ("TTSA", None): [inner, linsys, outer_step],
        ("STABLE", None): [inner, linsys, outer_step],
        ("PBGD", None): [inner, outer_step],
        ("SABA", None): [inner, outer_step],
        ("SRBA", None): [inner, outer_step],
        ("MA-SOBA", None): [inner, outer_step],
        ("MRBO", None): [inner, linsys, outer_step],
        ("VRBO", None): [inner, linsys, outer_step],
        ("FSLA", None): [inner, outer_step],
        ("SUSTAIN", None): [inner, linsys, outer_step],
    }


def test_a_tuned_step_of_the_source_config_is_tuned_from_its_default():
    amigo = get_solver_class("AmIGO")
    curves = solver_curves(amigo, {"step_size_inner": ["tuned"],
                                   "step_size_outer": ["tuned"]})
    assert curves == list(_get_used_parameters(amigo, {}))
    assert [curve["inner_solver"] for curve in curves] == ["gd", "cg"]
    assert solver_curves(amigo, {"step_size_outer": ["tuned"],
                                 "inner_solver": ["cg"]}) == [
        next(_get_used_parameters(amigo, {"inner_solver": ["cg"]}))]


def test_coordinate_candidates_vary_one_step_from_the_incumbent():
    tuning_curve = soba_curve()
    candidates = tuning_curve.coordinate_candidates(
        ("auto", 3.16), "step_size_inner")
    assert candidates == [(value, 3.16) for value in
                          (0.00287, 0.00909, 0.0287, "auto", 0.181)]


QUADRATIC = "quadratic[dim_x=10,dim_y=20,kappa=10.0]"


@pytest.fixture(scope="module")
def read_only_run(tmp_path_factory):
    """The script in --read-only mode on a table of SOBA and AmIGO-CG
    curves on the small quadratic, two seeds."""
    tmp_path = tmp_path_factory.mktemp("tuning")
    config = tmp_path / "run.yml"
    config.write_text(yaml.safe_dump(
        {"dataset": [QUADRATIC], "solver": ["SOBA", "AmIGO[inner_solver=cg]"],
         "timeout": 1, "max-runs": 5, "output": "run"}))
    script = load_script()
    (dataset,) = script.config_datasets(script.load_run_config(config),
                                        None)
    label = dataset[2]
    amigo = {"inner_solver": "cg", "n_inner_steps": 5,
             "n_linsys_steps": 5, "step_size_inner": "auto",
             "step_size_linsys": "auto"}
    tables = [scored(outer(value), seed, score) for seed in SEEDS[:2]
              for value, score in ((1.0, -1.0), (3.16, -2.0))]
    tables += [scored({**amigo, "step_size_outer": value}, seed, score,
                      solver="AmIGO")
               for seed in SEEDS[:2]
               for value, score in ((1.0, -1.0), (0.316, -3.0))]
    results = pd.concat(tables, ignore_index=True).assign(
        dataset_name=label)
    table = tmp_path / "results.parquet"
    results.to_parquet(table)
    out_dir = tmp_path / "tuned"
    script.main(["--config", str(config), "--read-only", str(table),
                 "--out-dir", str(out_dir)])
    return out_dir / "quadratic.yml", config, table


def test_read_only_writes_a_valid_run_config(read_only_run):
    path, _, _ = read_only_run
    text = path.read_text()
    assert "--read-only" in text.splitlines()[1]
    config = yaml.safe_load(text)
    options = {param.name for param in run_command.params}
    assert {key.replace("-", "_") for key in config} <= options
    assert "output" not in config and config["timeout"] == 1
    datasets = [params for cls, selection in BENCHMARK.check_dataset_patterns(
        config["dataset"]) for params in _get_used_parameters(cls, selection)]
    assert datasets == [{"dim_x": 10, "dim_y": 20, "kappa": 10.0}]
    solvers = [(cls.name, params)
               for cls, selection in BENCHMARK.check_solver_patterns(
                   config["solver"])
               for params in _get_used_parameters(cls, selection)]
    assert len(solvers) == 2
    soba = dict(solvers)["SOBA"]
    assert (soba["step_size_inner"], soba["step_size_outer"]) == (
        "auto", 3.16)
    amigo = dict(solvers)["AmIGO"]
    assert (amigo["inner_solver"], amigo["step_size_outer"],
            amigo["step_size_linsys"]) == ("cg", 0.316, "auto")
    # Its header gives each choice's score next to the default's.
    assert ("# SOBA[step_size_inner=auto,step_size_outer=3.16]: score "
            "-2.000 (default -1.000)") in text


def test_read_only_names_a_missing_column(read_only_run, monkeypatch):
    _, config, table = read_only_run
    broken = table.with_name("broken.parquet")
    pd.read_parquet(table).drop(
        columns="objective_hypergrad_norm").to_parquet(broken)
    monkeypatch.setattr(sys, "argv", [
        str(SCRIPT), "--config", str(config), "--read-only", str(broken)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert "'objective_hypergrad_norm'" in str(exit_info.value.code)


def test_a_rerun_for_one_solver_keeps_the_others(read_only_run, tmp_path):
    path, config, table = read_only_run
    out_dir = tmp_path / "tuned"
    out_dir.mkdir()
    (out_dir / path.name).write_text(path.read_text())
    # SOBA again, on a table where 1.0 now wins.
    results = pd.read_parquet(table)
    soba = results["solver_name"].str.startswith("SOBA")
    rerun = pd.concat([scored(outer(value), seed, score).assign(
        dataset_name=results["dataset_name"].iloc[0])
        for seed in SEEDS[:2] for value, score in ((1.0, -4.0), (3.16, -2.0))]
        + [results[~soba]], ignore_index=True)
    rerun_table = tmp_path / "rerun.parquet"
    rerun.to_parquet(rerun_table)
    load_script().main(["--config", str(config), "--read-only",
                        str(rerun_table), "--solver", "SOBA", "--out-dir",
                        str(out_dir)])
    text = (out_dir / path.name).read_text()
    assert yaml.safe_load(text)["solver"] == [
        yaml.safe_load(path.read_text())["solver"][1],
        "SOBA[step_size_inner=auto,step_size_outer=1.0]"]
    # Both commands, and the AmIGO entry's header block, are kept.
    assert [line for line in text.splitlines()
            if line.startswith("#   python")] == [
        path.read_text().splitlines()[1],
        f"#   python scripts/tune_step_sizes.py --config {config} "
        f"--read-only {rerun_table} --solver SOBA --out-dir {out_dir}"]
    assert "# AmIGO[inner_solver=cg," in text
    assert "score -4.000 (default -4.000)" in text


def test_another_instance_of_a_tuned_dataset_gets_its_own_file(tmp_path):
    script = load_script()
    quadratic = get_dataset_class("quadratic")
    params = {"dim_x": 10, "dim_y": 20, "kappa": 10.0}
    label = str(quadratic.get_instance(**params))
    # No file yet, or one of this instance: the dataset's name.
    path = script.tuned_config_path(tmp_path, quadratic, params, label,
                                    False)
    assert path == tmp_path / "quadratic.yml"
    path.write_text(yaml.safe_dump({"dataset": [
        script.selection_string("quadratic", params)], "solver": []}))
    assert script.tuned_config_path(tmp_path, quadratic, params, label,
                                    False) == path
    # Another instance keeps the first one's file and gets its own.
    other = {"dim_x": 10, "dim_y": 20, "kappa": 100.0}
    other_label = str(quadratic.get_instance(**other))
    assert script.tuned_config_path(
        tmp_path, quadratic, other, other_label, False) == (
            tmp_path / "quadratic_dim_x=10_dim_y=20_kappa=100.0.yml")
    # So does every instance, when one run tunes several.
    assert script.tuned_config_path(tmp_path, quadratic, params, label,
                                    True).name == (
        "quadratic_dim_x=10_dim_y=20_kappa=10.0.yml")
