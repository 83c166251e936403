"""scripts/paper_claims.py: its verdict rules, its reading of results
files (times to a level, the first of a ranking, the memory column when
there is one), its exact HVP counts and its turns of timing, and
docs/paper_claims.md: every claim's block filled, its variants table the
one the solvers' docstrings give."""
import math

import pandas as pd
import pytest
import torch
from conftest import BENCHMARK, ROOT
from test_speed_scripts import load_script

from benchmark_utils.problems.synthetic import SyntheticProblem

claims = load_script("paper_claims")


def test_verdicts_name_the_conditions_that_hold():
    assert claims.verdict({"as published": True, "original": True}) \
        == "holds"
    assert claims.verdict({"as published": False, "original": False}) \
        == "does not hold"
    assert claims.verdict({"as published": True, "original": False}) \
        == "holds only as published"
    assert claims.verdict({"as published": False, "original": True}) \
        == "holds only with the original methods"
    assert claims.verdict({"as published, hypergrad_norm_at_y": True,
                           "original, hypergrad_norm": False}) \
        == "holds only with as published, hypergrad_norm_at_y"


def results_table(curves, memory=None):
    """A results table with one repetition per curve: label -> list of
    (time, test accuracy, residual), plus diverged flags."""
    rows = []
    for label, points in curves.items():
        for index, (time, accuracy, residual) in enumerate(points):
            rows.append(dict(
                solver_name=f"{label}[x=1]", dataset_name="d", idx_rep=0,
                stop_val=index, time=time, objective_value=1.0,
                objective_test_accuracy=accuracy,
                objective_linsys_residual=residual,
                objective_diverged=label == "SOBA" and index == 2,
                **({} if memory is None else
                   {"objective_memory_peak": memory[label]})))
    return pd.DataFrame(rows)


CURVES = {
    "LancBiO": [(0.0, 0.1, 1.0), (1.0, 0.80, 1e-3), (2.0, 0.85, 1e-4)],
    "SubBiO": [(0.0, 0.1, 1.0), (1.5, 0.70, 1e-2), (3.0, 0.86, 1e-5)],
    # Diverged at its last point: never first.
    "SOBA": [(0.0, 0.1, 1.0), (0.5, 0.90, 1e-8), (1.0, 0.95, 1e-9)],
}


def test_times_to_a_level_and_the_first_of_a_ranking():
    df = results_table(CURVES)
    reached = claims.per_label(df, lambda rows: claims.first_time(
        rows, "objective_test_accuracy", 0.84, larger_is_better=True))
    assert reached == {"LancBiO": 2.0, "SubBiO": 3.0, "SOBA": 0.5}
    assert claims.first_time(df[df.solver_name == "LancBiO[x=1]"],
                             "objective_linsys_residual", 1e-6) == math.inf
    disqualified = claims.ended(df)
    assert disqualified == {"SOBA": "diverged"}
    assert claims.ranked_first(reached, disqualified) == ["LancBiO"]
    residual = claims.per_label(df, claims.best("objective_linsys_residual"))
    assert claims.ranked_first(residual, disqualified) == ["SubBiO"]


def test_memory_part_reads_the_column_or_says_what_it_needs():
    runs = {"as published": results_table(CURVES),
            "original": results_table(CURVES)}
    result, text = claims.memory_section(runs)
    assert result is None
    assert "objective_memory_*" in text
    assert "python scripts/paper_claims.py speedup --rerun" in text
    memory = {"LancBiO": 2**20, "SubBiO": 2 * 2**20, "SOBA": 3 * 2**20}
    runs = {setting: results_table(CURVES, memory) for setting in runs}
    result, text = claims.memory_section(runs)
    assert result == "holds"
    assert "| as published | memory_peak | SubBiO | 2 |" in text


def test_original_setting_runs_the_same_solvers_at_their_defaults():
    config = claims.load_config("paper_hyperclean_as_published_cpu")
    arguments = claims.benchopt_arguments(config, "original")
    solvers = [arguments[i + 1] for i, a in enumerate(arguments)
               if a == "-s"]
    assert solvers == ["LancBiO", "SubBiO", "SOBA", "TTSA", "stocBiO",
                       "BSA", "AmIGO", "F2SA", "HJFBiO"]
    assert "-o" not in arguments
    published = claims.benchopt_arguments(config, "as published")
    assert published[published.index("-o") + 1] == config["objective"][0]
    assert [published[i + 1] for i, a in enumerate(published)
            if a == "-s"] == config["solver"]


def test_hvp_counts_are_one_plus_one_over_m_as_published():
    # 60 iterations: a multiple of each m, so ceil(60 / m) restarts.
    measured = claims.hvp_counts(SyntheticProblem(n=30, kappa=100.0,
                                                  seed=0), (1, 4, 6), 60)
    for m in (1, 4, 6):
        assert measured["as published", m] == 1 + 1 / m
    # m grows from 1 (restarts at every iteration), to 2 at iteration 19.
    assert 1.5 < measured["as published", None] < 2


def test_interleaved_times_take_turns(quadratic):
    from conftest import make_objective, run_solver
    objective = make_objective(quadratic)
    solvers = {name: claims.started(run_solver(name, quadratic, 0,
                                               objective=objective)[0])
               for name in ("LancBiO", "SubBiO")}
    times = claims.interleaved_times(solvers, 3, 2, torch.device("cpu"))
    assert [len(values) for values in times.values()] == [2, 2]
    assert all(value > 0 for values in times.values() for value in values)
    assert solvers["LancBiO"].n_outer == solvers["SubBiO"].n_outer == 6


def block(page, name):
    begin = claims.BEGIN.format(name=name)
    return page.split(begin + "\n")[1].split("\n" + claims.END)[0]


def test_the_page_has_every_claim_with_its_verdict():
    page = claims.PAGE.read_text()
    for name in claims.CLAIMS:
        assert block(page, name).strip(), f"the {name} block is empty"
    verdicts = block(page, "verdicts")
    for name in claims.CLAIMS:
        if name != "variants":
            assert f"`python scripts/paper_claims.py {name}`" in verdicts


def test_the_variants_table_is_the_solvers_docstrings():
    page = claims.PAGE.read_text()
    text, _ = claims.claim_variants(benchmark=BENCHMARK)
    assert block(page, "variants") == text, (
        "docs/paper_claims.md is stale: python scripts/paper_claims.py "
        "variants")
    assert {row[0] for row in claims.variant_rows(BENCHMARK)} == {
        "BSA", "F2SA", "HJFBiO", "LancBiO", "SOBA", "SubBiO", "TTSA"}


def test_the_page_links_figures_that_exist():
    page = claims.PAGE.read_text()
    for name in ("plateau", "hvp_count", "subspace_dim",
                 "time_per_iteration", "robust", "speedup"):
        assert f"(paper_claims/{name}.png)" in page
        assert (ROOT / "docs" / "paper_claims" / f"{name}.png").is_file()


@pytest.mark.parametrize("entry, name, value, expected", [
    ("LancBiO", "subspace_dim", 10, "LancBiO[subspace_dim=10]"),
    ("LancBiO[a=1,subspace_dim=80,b=2]", "subspace_dim", 10,
     "LancBiO[a=1,b=2,subspace_dim=10]"),
])
def test_with_parameter(entry, name, value, expected):
    assert claims.with_parameter(entry, name, value) == expected


def test_gpu_option_reads_the_gpu_sized_config_within_the_timeout():
    from types import SimpleNamespace
    options = SimpleNamespace(gpu=True, timeout=60.0)
    config = claims.load_config("paper_synthetic_as_published_cpu", options)
    assert config["dataset"] == ["synthetic[n=10000,kappa=100000.0]"]
    assert config["timeout"] == 60.0
    cpu = claims.load_config("paper_synthetic_as_published_cpu",
                             SimpleNamespace(gpu=False, timeout=None))
    assert cpu["dataset"] == ["synthetic[n=1000,kappa=100000.0]"]


def test_a_claim_on_the_plateau_waits_for_the_plateau():
    rising = results_table(CURVES)
    # SOBA, the most accurate at the end, diverged: the most accurate of
    # the others is SubBiO, still rising at half its time.
    assert not claims.settled(rising)
    flat = dict(CURVES, SubBiO=[(0.0, 0.1, 1.0), (1.5, 0.855, 1e-2),
                                (3.0, 0.86, 1e-5)])
    assert claims.settled(results_table(flat))
    assert claims.on_plateau(results_table(flat).query(
        "solver_name == 'SubBiO[x=1]'"))


def test_a_rerun_is_read_from_the_file_benchopt_wrote(tmp_path):
    # benchopt never overwrites a results file: a rerun of a claim writes
    # <name>_1.parquet beside <name>.parquet, and the claim reads the
    # newest (not another setting's file that shares the prefix).
    for stem in ("paper_claims_speedup_original",
                 "paper_claims_speedup_original_1",
                 "paper_claims_speedup_original_2",
                 "paper_claims_speedup_original_gpu"):
        (tmp_path / f"{stem}.parquet").write_text("")
    path = tmp_path / "paper_claims_speedup_original.parquet"
    assert claims.newest_results(path) == (
        tmp_path / "paper_claims_speedup_original_2.parquet")
    assert claims.newest_results(tmp_path / "other.parquet") == (
        tmp_path / "other.parquet")
