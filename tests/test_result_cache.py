"""benchopt's result cache keys a curve on the solver's file and
parameters; the benchmark's solvers add the shared code they run and, for
steps given as 'tuned', the tuned configs, so that a change to either runs
the curve again instead of serving the cached one."""
import pickle
import shutil

import joblib
import pytest
from conftest import ROOT, get_solver_class

import benchmark_utils.solver as solver_module


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """Copies of the shared code and of the tuned configs that the cache
    key reads, for the test to change."""
    code = shutil.copytree(ROOT / "benchmark_utils", tmp_path / "code",
                           ignore=shutil.ignore_patterns("__pycache__"))
    tuned = shutil.copytree(ROOT / "configs" / "tuned", tmp_path / "tuned")
    monkeypatch.setattr(solver_module, "SHARED_CODE", code)
    monkeypatch.setattr(solver_module, "TUNED_CONFIGS", tuned)
    return code, tuned


def cache_keys():
    """joblib's hash, benchopt's cache key, of SOBA with tuned steps and
    of SOBA at its defaults."""
    cls = get_solver_class("SOBA")
    tuned = cls.get_instance(step_size_inner="tuned",
                             step_size_outer="tuned")
    return joblib.hash(tuned), joblib.hash(cls.get_instance())


def append_line(path):
    with open(path, "a") as file:
        file.write("\n")


def test_unchanged_sources_keep_the_key(sources):
    # The cache still serves a rerun of unchanged code and steps.
    assert cache_keys() == cache_keys()


def test_retuning_changes_the_key_of_tuned_curves_only(sources):
    _, tuned = sources
    before = cache_keys()
    append_line(tuned / "quadratic.yml")
    after = cache_keys()
    assert after[0] != before[0]
    assert after[1] == before[1]


def test_a_change_to_the_shared_code_changes_every_key(sources):
    code, _ = sources
    before = cache_keys()
    append_line(code / "linalg" / "krylov.py")
    after = cache_keys()
    assert after[0] != before[0] and after[1] != before[1]


def test_benchopts_pickling_rebuilds_the_solver_from_its_parameters():
    # benchopt sends solvers to its workers pickled: the state that keys
    # the cache must not get in the way of rebuilding them.
    solver = get_solver_class("SOBA").get_instance(step_size_inner="tuned")
    copy = pickle.loads(pickle.dumps(solver))
    assert type(copy).name == "SOBA"
    assert copy._parameters == solver._parameters
