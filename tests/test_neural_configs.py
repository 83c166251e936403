"""The run configurations of the neural-network problems and how the
tuning protocol scores their curves: configs/neural.yml (offline, CPU)
and configs/neural_gpu.yml, and a curve on a lower level that is not
convex scored on the value at the solver's own y."""
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from benchopt.utils.parametrized_name_mixin import _get_used_parameters
from conftest import BENCHMARK, ROOT

from benchmark_utils.tuning import VALUE_AT_Y_COLUMN, curve_score


def load(name):
    return yaml.safe_load((ROOT / "configs" / name).read_text())


def instances(classes_and_params):
    return [(cls.name, params) for cls, selection in classes_and_params
            for params in _get_used_parameters(cls, selection)]


def test_neural_config_runs_both_tasks_offline_for_every_solver():
    config = load("neural.yml")
    datasets = instances(BENCHMARK.check_dataset_patterns(config["dataset"]))
    assert [name for name, _ in datasets] == ["hyperclean_mlp_mnist5k",
                                              "distill_mnist5k"]
    assert all(params["n_hidden"] == 300 for _, params in datasets)
    assert datasets[1][1]["model"] == "mlp"
    # Every solver but AID-exact, which skips a non-convex lower level
    # (tests/test_nonconvex_solvers.py).
    solvers = instances(BENCHMARK.check_solver_patterns(config["solver"]))
    assert {name for name, _ in solvers} == {
        solver.name for solver in BENCHMARK.get_solvers()} - {"AID-exact"}
    # Every step at its default until tuned configs exist for these
    # datasets ('tuned' would skip every curve with the tuning command).
    assert not any("tuned" in entry for entry in config["solver"])
    assert config["objective"] == [
        "Bilevel optimization[second_order_metrics=False]"]
    assert "device" not in config["objective"][0]


def test_neural_gpu_config_is_the_papers_split_with_the_perceptron():
    config = load("neural_gpu.yml")
    datasets = instances(BENCHMARK.check_dataset_patterns(config["dataset"]))
    cleaning = {(name, params["corruption_rate"])
                for name, params in datasets
                if name.startswith("hyperclean_mlp")}
    assert cleaning == {
        ("hyperclean_mlp_mnist", 0.5), ("hyperclean_mlp_mnist", 0.8),
        ("hyperclean_mlp_fashion_mnist", 0.5),
        ("hyperclean_mlp_fashion_mnist", 0.8),
        ("hyperclean_mlp_kmnist", 0.2), ("hyperclean_mlp_kmnist", 0.6)}
    assert all((params["n_train"], params["n_val"], params["n_hidden"])
               == (5000, 5000, 300) for name, params in datasets
               if name.startswith("hyperclean_mlp"))
    distillation = {(name, params["images_per_class"])
                    for name, params in datasets
                    if name.startswith("distill")}
    assert distillation == {(f"distill_{short}", images)
                            for short in ("mnist", "fashion_mnist", "kmnist")
                            for images in (1, 10)}


def nonconvex_curve(times, values_at_y, diverged=None):
    """Rows of a curve on a non-convex lower level: value and
    hypergrad_norm NaN (no local reference), value_at_y given."""
    n = len(times)
    return pd.DataFrame({
        "stop_val": range(n), "time": times,
        "objective_value": [math.nan] * n,
        "objective_hypergrad_norm": [math.nan] * n,
        VALUE_AT_Y_COLUMN: values_at_y,
        "objective_diverged": diverged or [False] * n})


def test_a_nonconvex_curve_is_scored_on_its_value_at_y():
    # log10 value_at_y: 0 at time 0, -1 at 1 s, held to the 2 s budget:
    # area 0.5 + 1, over 2 s.
    curve = nonconvex_curve([0.0, 1.0], [1.0, 0.1])
    assert curve_score(curve, 2.0) == pytest.approx(-0.75, rel=1e-12)
    # Disqualified: above its start at the end, or diverged.
    assert curve_score(nonconvex_curve([0.0, 1.0], [1.0, 1.5]),
                       2.0) == math.inf
    assert curve_score(nonconvex_curve([0.0, 1.0], [1.0, 0.1],
                                       [False, True]), 2.0) == math.inf


def test_a_convex_curve_of_a_mixed_table_keeps_its_score():
    # A table with both kinds of problem has the value_at_y column, NaN on
    # the convex problem's rows: those are scored on hypergrad_norm.
    curve = pd.DataFrame({
        "stop_val": [0, 1], "time": [0.0, 1.0],
        "objective_value": [1.0, 0.5],
        "objective_hypergrad_norm": [1.0, 1e-2],
        VALUE_AT_Y_COLUMN: [np.nan, np.nan],
        "objective_diverged": [False, False]})
    assert curve_score(curve, 1.0) == pytest.approx(-1.0, rel=1e-12)
