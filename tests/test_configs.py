"""The run configurations of configs/: every key is a `benchopt run` option,
every dataset and solver resolves, and the LancBiO paper's experiments carry
its settings."""
import pytest
import yaml
from benchopt.cli.main import run as run_command
from benchopt.utils.parametrized_name_mixin import _get_used_parameters

from conftest import BENCHMARK, ROOT

RUN_CONFIGS = sorted((ROOT / "configs").glob("*.yml")) + sorted(
    (ROOT / "configs" / "tuned").glob("*.yml"))
#: Evaluations of a curve are log-spaced (each 1.5 times the last
#: iteration), so --max-runs N ends a curve after about 1.5^N iterations:
#: at 20 a solver at 0.3 ms per iteration stops after 1 s whatever its
#: --timeout. 50 allows 6e8 iterations: the solver-time budget binds.
MIN_MAX_RUNS = 50


def load(path):
    return yaml.safe_load(path.read_text())


def instances(classes_and_params):
    return [(cls.name, params) for cls, selection in classes_and_params
            for params in _get_used_parameters(cls, selection)]


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.name)
def test_run_config_resolves(path):
    config = load(path)
    options = {param.name for param in run_command.params}
    assert {key.replace("-", "_") for key in config} <= options
    assert instances(BENCHMARK.check_dataset_patterns(config["dataset"]))
    if "solver" in config:
        assert instances(BENCHMARK.check_solver_patterns(config["solver"]))


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.name)
def test_the_solver_time_budget_binds_before_max_runs(path):
    config = load(path)
    if "timeout" in config:
        assert config.get("max-runs", 100) >= MIN_MAX_RUNS


def test_paper_synthetic_runs_every_solver_on_the_papers_problem():
    config = load(ROOT / "configs" / "paper_synthetic.yml")
    assert "solver" not in config   # every solver, at its defaults
    datasets = instances(BENCHMARK.check_dataset_patterns(config["dataset"]))
    assert datasets == [("synthetic", {"n": 10000, "kappa": 1e5})]


#: The variance-reduced methods: batches of 64, as benchmark_bilevel's.
VARIANCE_REDUCED = ("SABA", "SRBA", "MA-SOBA", "MRBO", "VRBO", "FSLA",
                    "SUSTAIN")


def test_paper_hyperclean_uses_the_papers_rates_and_lancbio_schedule():
    config = load(ROOT / "configs" / "paper_hyperclean.yml")
    datasets = instances(BENCHMARK.check_dataset_patterns(config["dataset"]))
    rates = {(name, params["corruption_rate"]) for name, params in datasets}
    assert rates == {("hyperclean_mnist", 0.5), ("hyperclean_mnist", 0.8),
                     ("hyperclean_fashion_mnist", 0.5),
                     ("hyperclean_fashion_mnist", 0.8),
                     ("hyperclean_kmnist", 0.2), ("hyperclean_kmnist", 0.6)}
    assert all((params["n_train"], params["n_val"]) == (5000, 5000)
               for _, params in datasets)
    solvers = instances(BENCHMARK.check_solver_patterns(config["solver"]))
    names = {name for name, _ in solvers}
    # Every solver but the variance-reduced ones, whose memory and
    # recursions only reduce the noise of minibatches (configs/
    # variance_reduced.yml compares them).
    assert names == {solver.name for solver in BENCHMARK.get_solvers()
                     if solver.name not in VARIANCE_REDUCED}
    (lancbio,) = [params for name, params in solvers if name == "LancBiO"]
    assert (lancbio["subspace_dim"], lancbio["max_subspace_dim"],
            lancbio["subspace_growth"], lancbio["growth_every"]) == (
                1, 10, 1.3, 50)
    # Outer step 1 in units of n_train / 10: the LancBiO paper's 500.
    assert lancbio["step_size_outer"] == 1.0


#: The batch sizes and inner steps of the LancBiO authors' stochastic code,
#: by solver (AmIGO: both curves), that both stochastic configs carry (the
#: stochastic quickstart tunes the inner steps: its batch sizes only).
PAPER_STOCHASTIC_SETTINGS = {
    "LancBiO": dict(batch_size=256, n_inner_steps=3),
    "SubBiO": dict(batch_size=256, n_inner_steps=3),
    "SOBA": dict(batch_size=128),
    "TTSA": dict(batch_size=256, n_neumann_steps=9),
    "stocBiO": dict(batch_size=256, n_inner_steps=9, n_neumann_steps=9),
    "BSA": dict(batch_size=256, n_inner_steps=9, n_neumann_steps=9),
    "AmIGO": dict(batch_size=256, n_inner_steps=6, n_linsys_steps=9),
}


@pytest.mark.parametrize("name", ["paper_stochastic.yml",
                                  "stochastic_quickstart.yml"])
def test_stochastic_configs_run_every_minibatch_solver_as_the_paper(name):
    config = load(ROOT / "configs" / name)
    solvers = instances(BENCHMARK.check_solver_patterns(config["solver"]))
    minibatch_solvers = {solver.name for solver in BENCHMARK.get_solvers()
                         if solver.name != "AID-exact"}
    assert {solver for solver, _ in solvers} == minibatch_solvers
    # AmIGO with both linear solvers.
    assert len(solvers) == len(minibatch_solvers) + 1
    for solver, params in solvers:
        assert isinstance(params["batch_size"], int)
        expected = PAPER_STOCHASTIC_SETTINGS.get(solver, dict(
            batch_size=64 if solver in VARIANCE_REDUCED else 256))
        if name == "stochastic_quickstart.yml":
            expected = {key: value if key == "batch_size" else "tuned"
                        for key, value in expected.items()}
        assert {key: params[key] for key in expected} == expected, solver


def test_paper_stochastic_is_the_papers_split():
    config = load(ROOT / "configs" / "paper_stochastic.yml")
    datasets = instances(BENCHMARK.check_dataset_patterns(config["dataset"]))
    assert datasets == [("hyperclean_mnist", dict(
        corruption_rate=0.5, n_train=20000, n_val=5000, reg=0.01))]
    assert config["n-repetitions"] == 10


def test_variance_reduced_is_benchmark_bilevels_data_cleaning():
    config = load(ROOT / "configs" / "variance_reduced.yml")
    datasets = instances(BENCHMARK.check_dataset_patterns(config["dataset"]))
    assert datasets == [("hyperclean_mnist", dict(
        corruption_rate=0.5, n_train=20000, n_val=5000, reg=0.01))]
    assert config["n-repetitions"] == 10
    solvers = instances(BENCHMARK.check_solver_patterns(config["solver"]))
    assert set(VARIANCE_REDUCED) <= {name for name, _ in solvers}
    assert all(params["batch_size"] == 64 for _, params in solvers)


#: The LancBiO authors' versions that each as-published config runs
#: (benchmark_utils/published_variants.py); every other solver of it runs
#: the original method, as their code does in that experiment.
AS_PUBLISHED_VARIANTS = {
    "paper_synthetic_as_published": {"LancBiO", "SubBiO", "SOBA", "TTSA",
                                     "BSA"},
    "paper_hyperclean_as_published": {"F2SA", "HJFBiO"},
}


def as_published_solvers(name):
    return instances(BENCHMARK.check_solver_patterns(
        load(ROOT / "configs" / f"{name}.yml")["solver"]))


@pytest.mark.parametrize("name", sorted(AS_PUBLISHED_VARIANTS))
def test_as_published_cpu_companions_run_the_same_curves(name):
    gpu = load(ROOT / "configs" / f"{name}.yml")
    cpu = load(ROOT / "configs" / f"{name}_cpu.yml")
    assert cpu["solver"] == gpu["solver"]
    assert cpu["objective"] == gpu["objective"]
    assert cpu["n-repetitions"] == 1 and cpu["timeout"] <= 10


@pytest.mark.parametrize("name", sorted(AS_PUBLISHED_VARIANTS))
def test_as_published_configs_use_the_authors_variants(name):
    solvers = as_published_solvers(name)
    variants = {solver for solver, params in solvers
                if params.get("variant") == "lancbio_code"}
    assert variants == AS_PUBLISHED_VARIANTS[name]
    # AmIGO with both linear solvers.
    assert sorted(params["inner_solver"] for solver, params in solvers
                  if solver == "AmIGO") == ["cg", "gd"]


def test_paper_synthetic_as_published_has_the_authors_steps_and_start():
    config = load(ROOT / "configs" / "paper_synthetic_as_published.yml")
    assert config["objective"] == ["Bilevel optimization[v_start=normal]"]
    datasets = instances(BENCHMARK.check_dataset_patterns(config["dataset"]))
    assert datasets == [("synthetic", {"n": 10000, "kappa": 1e5})]
    cpu = load(ROOT / "configs" / "paper_synthetic_as_published_cpu.yml")
    assert instances(BENCHMARK.check_dataset_patterns(cpu["dataset"])) == [
        ("synthetic", {"n": 1000, "kappa": 1e5})]
    solvers = dict((solver, params) for solver, params in
                   as_published_solvers("paper_synthetic_as_published"))
    for solver, params in solvers.items():
        # The fixed step theta = 1e-5 on y and v, 1 on x.
        assert params["step_size_inner"] == 1e-5, solver
        assert params.get("step_size_linsys", 1e-5) == 1e-5, solver
        assert params["step_size_outer"] == 1.0, solver
    inner_steps = {solver: params.get("n_inner_steps")
                   for solver, params in solvers.items()}
    assert inner_steps == {"LancBiO": 5, "SubBiO": 5, "SOBA": None,
                           "TTSA": None, "stocBiO": 10, "BSA": 10,
                           "AmIGO": 5}
    assert solvers["TTSA"]["n_neumann_steps"] == 10
    assert (solvers["TTSA"]["decay_inner"],
            solvers["TTSA"]["decay_outer"]) == (0.0, 0.4)
    assert solvers["BSA"]["n_neumann_steps"] == 10
    lancbio = solvers["LancBiO"]
    assert (lancbio["subspace_dim"], lancbio["max_subspace_dim"],
            lancbio["subspace_growth"], lancbio["growth_every"],
            lancbio["orthogonality_tol"]) == (1, 80, 1.1, 20, None)


def test_paper_hyperclean_as_published_has_the_authors_steps_and_start():
    config = load(ROOT / "configs" / "paper_hyperclean_as_published.yml")
    assert config["objective"] == ["Bilevel optimization[v_start=uniform]"]
    paper = load(ROOT / "configs" / "paper_hyperclean.yml")
    assert config["dataset"] == paper["dataset"]
    cpu = load(ROOT / "configs" / "paper_hyperclean_as_published_cpu.yml")
    datasets = instances(BENCHMARK.check_dataset_patterns(cpu["dataset"]))
    assert {(name, params["corruption_rate"]) for name, params in datasets
            } == {("hyperclean_mnist5k", 0.5), ("hyperclean_mnist5k", 0.8)}
    solvers = as_published_solvers("paper_hyperclean_as_published")
    for solver, params in solvers:
        assert params["step_size_inner"] == 0.1, solver
        assert params["step_size_outer"] == 1.0, solver
        if solver not in ("SOBA", "F2SA", "HJFBiO", "LancBiO"):
            assert params["step_size_linsys"] == 0.05, solver
    by_name = dict(solvers)
    # Their Neumann estimate Q eta (I - eta A)^p b, p < Q = 10.
    assert by_name["TTSA"]["n_neumann_steps"] == 9
    assert by_name["BSA"]["n_neumann_steps"] == 9
    assert (by_name["F2SA"]["penalty_init"],
            by_name["F2SA"]["penalty_growth"]) == (1.0, 0.1)
    assert by_name["HJFBiO"]["delta"] == 1e-5
