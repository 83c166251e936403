"""The tuning protocol (benchmark_utils/tuning.py, scripts/tune.py): the
score of a curve, the selection rule, the search space of every solver,
early stopping of a candidate that falls behind, resuming an interrupted
tuning from its storage, and the tuned configs that the script writes."""
import importlib.util
import math

import optuna
import pandas as pd
import pytest
import yaml
from benchopt.cli.main import run as run_command
from benchopt.utils.parametrized_name_mixin import _get_used_parameters
from benchopt.utils.run_context import RunContext
from conftest import (BENCHMARK, ROOT, get_dataset_class, get_solver_class,
                      make_objective)

from benchmark_utils.tuning import (RUNGS, STEP_SPAN, SearchSpace,
                                    curve_score, finished_candidates,
                                    make_study, run_curve, select_candidate,
                                    set_up_problem, solver_curves,
                                    step_size_names, tune_curve)

SCRIPT = ROOT / "scripts" / "tune.py"
#: SOBA on a problem with L = 10: 'auto' is 1 / 11.
SOBA_DEFAULTS = {"step_size_inner": "auto", "step_size_outer": 1.0,
                 "batch_size": "full", "decay_inner": 0.0,
                 "decay_outer": 0.0}
LIPSCHITZ = 10.0
QUADRATIC = "quadratic[dim_x=10,dim_y=20,kappa=10.0]"


def load_script():
    spec = importlib.util.spec_from_file_location("tune", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def curve(times, norms, values=None, diverged=None, failed=None):
    """The rows of one curve of a results table."""
    n = len(times)
    return pd.DataFrame({
        "stop_val": range(n), "time": times,
        "objective_hypergrad_norm": norms,
        "objective_value": values or [1.0] * n,
        "objective_diverged": diverged or [False] * n,
        "objective_failed": failed or [False] * n})


def soba_space():
    return SearchSpace(get_solver_class("SOBA"), SOBA_DEFAULTS, LIPSCHITZ)


# -- the score ----------------------------------------------------------------

def test_score_is_the_mean_log_norm_over_the_budget():
    # log10 norm: 0 at t = 0, -2 at t = 0.5, held at -2 until 1.
    rows = curve([0.3, 0.5], [1.0, 1e-2], values=[1.0, 0.5])
    # The first point counts at time 0: (0 + -2) / 2 * 0.5 + -2 * 0.5.
    assert curve_score(rows, 1.0) == pytest.approx(-1.5)
    # Over a shorter budget, interpolated at its end.
    assert curve_score(rows, 0.25) == pytest.approx(-0.5)


@pytest.mark.parametrize("broken", [
    dict(diverged=[False, True]), dict(failed=[False, True]),
    dict(values=[1.0, 2.0]), dict(norms=[1.0, math.nan]),
    dict(values=[1.0, math.inf]), dict(times=[0.0, math.nan])])
def test_a_diverged_failed_non_finite_or_worsened_curve_scores_inf(broken):
    arguments = dict(times=[0.0, 1.0], norms=[1.0, 1e-3], values=[1.0, 0.5])
    assert curve_score(curve(**{**arguments, **broken}), 1.0) == math.inf


def test_a_norm_at_round_off_is_floored_and_a_vanished_one_disqualified():
    # Round-off (1e-17 of the start) is floored at 1e-12: half the budget
    # at 0 decades, half at -12 on average.
    rows = curve([0.0, 1.0], [1.0, 1e-17], values=[1.0, 0.9])
    assert curve_score(rows, 1.0) == pytest.approx(-6.0)
    # Saturated hyper-cleaning weights: the norm underflows (8e-68) or is
    # exactly 0 while the value still decreases: never chosen.
    for vanished in (8e-68, 0.0):
        rows = curve([0.0, 1.0], [1.0, vanished], values=[1.0, 0.9])
        assert curve_score(rows, 1.0) == math.inf


# -- the selection rule -------------------------------------------------------

def outer(value):
    return {"step_size_inner": 1 / 11, "step_size_outer": value}


def test_the_lowest_score_wins_and_ties_go_closest_to_the_default():
    space = soba_space()
    assert space.default == outer(1.0)
    assert select_candidate([(outer(0.1), -1.0), (outer(3.16), -2.0),
                             (outer(1.0), -1.5)], space) == outer(3.16)
    # 0.1 and 3.16 tie at -2; 3.16 is half a decade from 1.0, 0.1 one.
    assert select_candidate([(outer(0.1), -2.0), (outer(3.16), -2.0),
                             (outer(1.0), -1.0)], space) == outer(3.16)
    # Within the tolerance (0.005 < 0.01) counts as a tie.
    assert select_candidate([(outer(10.0), -2.005), (outer(0.316), -2.0)],
                            space) == outer(0.316)
    # Equally close (a decade each way): the smaller value.
    assert select_candidate([(outer(10.0), -2.0), (outer(0.1), -2.0)],
                            space) == outer(0.1)
    # Every candidate disqualified: the default.
    assert select_candidate([(outer(v), math.inf) for v in (0.316, 1.0,
                                                            3.16)],
                            space) == outer(1.0)


# -- the search space ---------------------------------------------------------

def test_an_auto_step_is_searched_up_to_two_over_l_and_the_outer_freely():
    inner, outer_step = soba_space().dimensions
    auto = 1 / (1.1 * LIPSCHITZ)
    assert (inner.center, inner.default) == (pytest.approx(auto), "auto")
    assert inner.low == pytest.approx(auto / STEP_SPAN)
    # Capped by stability: 2 / (1.1 L), not 31.6 times 'auto'.
    assert inner.high == pytest.approx(2 * auto)
    assert (outer_step.low, outer_step.high) == (
        pytest.approx(1 / STEP_SPAN), pytest.approx(STEP_SPAN))
    # A drawn value is rounded to 3 digits, the cap downwards; the default
    # keeps its spelling.
    assert inner.value(0.0123456) == 0.0123
    assert inner.value(inner.high) <= inner.high
    assert inner.spelling(inner.center) == "auto"
    assert inner.spelling(0.0123) == 0.0123


def test_truncation_lengths_are_searched_as_integers():
    space = SearchSpace(get_solver_class("stocBiO"), next(
        _get_used_parameters(get_solver_class("stocBiO"), {})), LIPSCHITZ)
    dims = {d.name: d for d in space.dimensions}
    assert list(dims) == ["step_size_inner", "step_size_linsys",
                          "step_size_outer", "n_inner_steps",
                          "n_neumann_steps"]
    neumann = dims["n_neumann_steps"]
    assert (neumann.low, neumann.high, neumann.center, neumann.integer) == (
        1, 1000, 10, True)
    assert neumann.value(37.0) == 37 and isinstance(neumann.value(37.0),
                                                    int)
    candidate = {**space.default, "n_neumann_steps": 100}
    assert space.parameters(candidate)["n_neumann_steps"] == 100
    assert space.selection(candidate) == (
        "stocBiO[step_size_inner=auto,step_size_linsys=auto,"
        "step_size_outer=1.0,n_inner_steps=10,n_neumann_steps=100]")
    # One decade from the default, on one parameter.
    assert space.distance_to_default(candidate) == pytest.approx(1.0)


def all_curves():
    return [(cls, params) for cls in BENCHMARK.get_solvers()
            for params in _get_used_parameters(cls, {})]


@pytest.mark.parametrize("cls, params", all_curves(),
                         ids=lambda item: getattr(item, "name", ""))
def test_every_solvers_search_space_is_valid(cls, params, quadratic):
    # Built, its declaration checked and every default within its range.
    space = SearchSpace(cls, params, LIPSCHITZ)
    assert {d.name for d in space.dimensions} == {
        *step_size_names(cls.name, params),
        *getattr(cls, "tuning_space", {})}
    # Both ends of every range pass the solver's own checks.
    objective = make_objective(quadratic)
    for end in ("low", "high"):
        candidate = {d.name: d.value(getattr(d, end))
                     for d in space.dimensions}
        solver = cls.get_instance(**space.parameters(candidate))
        RunContext().set_run_context(objective, "dataset", solver,
                                     repetition=0, base_seed=0)
        skip, reason = solver._set_objective(objective)
        assert not skip, reason


def test_a_declared_space_that_names_no_parameter_is_an_error():
    class Broken(get_solver_class("SOBA")):
        tuning_space = {"n_inner_steps": (1, 10)}

    with pytest.raises(ValueError, match="SOBA's tuning_space names "
                       "'n_inner_steps', which is not one of its parameters"):
        SearchSpace(Broken, SOBA_DEFAULTS, LIPSCHITZ)


def test_a_tuned_parameter_of_the_source_config_is_searched_from_its_default():
    amigo = get_solver_class("AmIGO")
    curves = solver_curves(amigo, {"step_size_inner": ["tuned"],
                                   "n_inner_steps": ["tuned"]})
    assert curves == list(_get_used_parameters(amigo, {}))
    assert [curve["inner_solver"] for curve in curves] == ["gd", "cg"]


# -- running candidates: early stopping and resuming --------------------------

@pytest.fixture(scope="module")
def tiny_problem():
    """The benchmark's objective on the small quadratic, seed 1001."""
    quadratic = get_dataset_class("quadratic")
    return set_up_problem(BENCHMARK, quadratic,
                          {"dim_x": 10, "dim_y": 20, "kappa": 10.0}, 1001,
                          {"device": "cpu", "hvp_mode": "reverse"})


def test_a_candidate_far_behind_is_stopped_at_its_first_rung(tiny_problem,
                                                              tmp_path):
    objective, dataset = tiny_problem
    soba = get_solver_class("SOBA")
    space = SearchSpace(soba, next(_get_used_parameters(soba, {})),
                        LIPSCHITZ)
    study = make_study(f"sqlite:///{tmp_path / 'tuning.db'}", "soba", 0)
    budget = 0.5
    for outer_step, expected in ((0.1, optuna.trial.TrialState.COMPLETE),
                                 (1e-6, optuna.trial.TrialState.PRUNED)):
        trial = study.ask()
        try:
            rows = run_curve(objective, dataset, soba,
                             {**space.params, "step_size_outer": outer_step},
                             budget, 1000, 1001, trial)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            state = optuna.trial.TrialState.PRUNED
        else:
            study.tell(trial, curve_score(rows, budget))
            state = optuna.trial.TrialState.COMPLETE
        assert state == expected
    good, bad = study.get_trials()
    assert set(good.intermediate_values) == set(RUNGS)
    # The outer step of 1e-6 barely moves x: behind at 1/9 of the budget,
    # where it was stopped.
    assert list(bad.intermediate_values) == [RUNGS[0]]
    assert bad.intermediate_values[RUNGS[0]] > good.intermediate_values[
        RUNGS[0]]


def test_the_default_is_never_stopped_early(tiny_problem):
    objective, dataset = tiny_problem
    soba = get_solver_class("SOBA")
    params = {**next(_get_used_parameters(soba, {})),
              "step_size_outer": 1e-6}
    study = make_study(None, "soba", 0)
    trial = study.ask()
    trial.report(-10.0, RUNGS[0])
    study.tell(trial, -10.0)
    trial = study.ask()
    rows = run_curve(objective, dataset, soba, params, 0.3, 1000, 1001,
                     trial, protected=True)
    assert rows[-1]["time"] >= 0.3


class Interrupted(Exception):
    """Stands for Ctrl-C, or a job killed: the trial under way stays
    'running' in the storage."""


def test_an_interrupted_tuning_resumes_from_its_storage(tmp_path):
    storage = f"sqlite:///{tmp_path / 'tuning.db'}"
    space = soba_space()
    runs, interrupt_at = [], [3]

    def run(candidate, trial, protected):
        if len(runs) in interrupt_at:
            interrupt_at.clear()
            raise Interrupted   # the fourth trial is interrupted
        runs.append((candidate, protected))
        return -candidate["step_size_outer"]

    with pytest.raises(Interrupted):
        tune_curve(make_study(storage, "soba", 0), space, run, n_trials=5)
    assert len(runs) == 3 and runs[0] == (space.default, True)
    first = finished_candidates(make_study(storage, "soba", 0), space)
    assert [candidate for candidate, _, _ in first] == [
        candidate for candidate, _ in runs]
    tune_curve(make_study(storage, "soba", 0), space, run, n_trials=5)
    study = make_study(storage, "soba", 0)
    states = [trial.state for trial in study.get_trials()]
    # The three finished trials kept, the interrupted one failed, two more.
    assert states == [optuna.trial.TrialState.COMPLETE] * 3 + [
        optuna.trial.TrialState.FAIL] + [
        optuna.trial.TrialState.COMPLETE] * 2
    assert finished_candidates(study, space)[:3] == first
    assert len(runs) == 5 and [protected for _, protected in runs] == [
        True, False, False, False, False]


# -- the script ---------------------------------------------------------------

@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    """The script on SOBA and AmIGO-CG on the small quadratic: 3 trials of
    0.2 s each."""
    tmp_path = tmp_path_factory.mktemp("tuning")
    config = tmp_path / "run.yml"
    config.write_text(yaml.safe_dump(
        {"dataset": [QUADRATIC], "solver": ["SOBA", "AmIGO[inner_solver=cg]"],
         "objective": ["Bilevel optimization[device=cpu]"],
         "timeout": 0.2, "max-runs": 20, "output": "run"}))
    storage = tmp_path / "tuning.db"
    out_dir = tmp_path / "tuned"
    argv = ["--config", str(config), "--trials", "3", "--storage",
            str(storage), "--out-dir", str(out_dir)]
    load_script().main(argv)
    return out_dir / "quadratic.yml", config, storage, argv


def test_the_script_writes_a_valid_run_config(tuned_run):
    path, _, storage, _ = tuned_run
    text = path.read_text()
    config = yaml.safe_load(text)
    options = {param.name for param in run_command.params}
    assert {key.replace("-", "_") for key in config} <= options
    assert "output" not in config and config["timeout"] == 0.2
    solvers = {cls.name: params
               for cls, selection in BENCHMARK.check_solver_patterns(
                   config["solver"])
               for params in _get_used_parameters(cls, selection)}
    assert set(solvers) == {"SOBA", "AmIGO"}
    assert solvers["AmIGO"]["inner_solver"] == "cg"
    # The choice is the study's: the best finished trial.
    for cls_name, line in (("SOBA", "# SOBA["), ("AmIGO", "# AmIGO[")):
        (entry,) = [e for e in config["solver"] if e.startswith(cls_name)]
        assert any(line.startswith(f"# {entry}: score") for line in
                   text.splitlines()), entry
    assert "3 trials" in text and "searched: step_size_inner in" in text
    assert "n_inner_steps in [1, 100] (integers; default 5)" in text


def test_read_only_writes_the_same_configs(tuned_run, tmp_path):
    path, config, storage, argv = tuned_run
    out_dir = tmp_path / "tuned"
    script = load_script()
    # The studies keep the L they were searched with: a process whose own
    # estimate differs (other threads, other last digits) writes the same
    # configs, 'auto' where the default won.
    script.inner_lipschitz = lambda *args: 1e6
    script.main(["--config", str(config), "--trials", "3",
                 "--storage", str(storage), "--out-dir",
                 str(out_dir), "--read-only"])
    def without_command(text):
        return [line for line in text.splitlines()
                if not line.startswith("#   python scripts/tune.py")]

    assert without_command((out_dir / path.name).read_text()) == \
        without_command(path.read_text())


def test_jobs_share_the_curves_among_processes(tuned_run, tmp_path):
    _, config, _, _ = tuned_run
    storage, out_dir = tmp_path / "tuning.db", tmp_path / "tuned"
    load_script().main(["--config", str(config), "--trials", "3",
                        "--storage", str(storage), "--out-dir",
                        str(out_dir), "--jobs", "2"])
    # SOBA's study in the first worker, AmIGO-CG's in the second, each with
    # its 3 trials; the configs written from them once both finished.
    studies = optuna.get_all_study_summaries(f"sqlite:///{storage}")
    workers = {}
    for summary in studies:
        study = optuna.load_study(study_name=summary.study_name,
                                  storage=f"sqlite:///{storage}")
        trials = study.get_trials()
        assert len(trials) == 3
        workers[summary.study_name.split(" | ")[1].split("[")[0]] = {
            trial.user_attrs["worker"] for trial in trials}
    assert workers == {"SOBA": {"0/2"}, "AmIGO": {"1/2"}}
    config = yaml.safe_load((out_dir / "quadratic.yml").read_text())
    assert [entry.split("[")[0] for entry in config["solver"]] == [
        "SOBA", "AmIGO"]


def test_a_rerun_for_one_solver_keeps_the_others(tuned_run, tmp_path):
    path, config, storage, argv = tuned_run
    out_dir = tmp_path / "tuned"
    out_dir.mkdir()
    (out_dir / path.name).write_text(path.read_text())
    load_script().main(["--config", str(config), "--trials", "4",
                        "--storage", str(storage), "--out-dir",
                        str(out_dir), "--solver", "SOBA"])
    text = (out_dir / path.name).read_text()
    before = yaml.safe_load(path.read_text())["solver"]
    after = yaml.safe_load(text)["solver"]
    # AmIGO's entry kept first, SOBA's rewritten after 4 trials.
    assert after[0] == [e for e in before if e.startswith("AmIGO")][0]
    assert after[1].startswith("SOBA[")
    assert [line for line in text.splitlines()
            if line.startswith("#   python")][-1].endswith("--solver SOBA")
    assert "# AmIGO[inner_solver=cg," in text
    assert "4 trials" in text


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
