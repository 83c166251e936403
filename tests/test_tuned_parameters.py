"""Parameters given as 'tuned' (benchmark_utils/tuned_parameters.py): read
from the tuned run config of the run's dataset, for the entry of the
solver's own curve; and every curve of the two quickstarts finds its entry
in the committed configs."""
import pytest
import yaml
from benchopt.utils.parametrized_name_mixin import _get_used_parameters
from benchopt.utils.run_context import RunContext
from conftest import BENCHMARK, ROOT, get_solver_class, make_objective

from benchmark_utils import tuned_parameters
from benchmark_utils.tuned_parameters import tunable_parameters
from benchmark_utils.tuning import step_size_names

DATASET = "quadratic[dim_x=10,dim_y=20,kappa=10.0]"
TUNED_CONFIG = {
    "dataset": ["quadratic[kappa=10,dim_x=10,dim_y=20]"],
    "solver": [
        "SOBA[step_size_inner=0.0123,step_size_outer=3.16]",
        "AmIGO[inner_solver=gd,step_size_inner=0.01,step_size_linsys=0.02,"
        "step_size_outer=0.5]",
        "AmIGO[inner_solver=cg,step_size_inner=auto,step_size_outer=4.0]",
        "LancBiO[step_size_inner=0.03,step_size_outer=2.0]",
        "stocBiO[step_size_inner=0.01,step_size_linsys=0.02,"
        "step_size_outer=0.5,n_inner_steps=3,n_neumann_steps=57]",
    ],
}


@pytest.fixture
def tuned_dir(tmp_path, monkeypatch):
    """A tuned-config folder holding TUNED_CONFIG, in place of
    configs/tuned/."""
    (tmp_path / "quadratic.yml").write_text(yaml.safe_dump(TUNED_CONFIG))
    monkeypatch.setattr(tuned_parameters, "TUNED_CONFIGS", tmp_path)
    return tmp_path


def set_up(name, problem, dataset_name=DATASET, **params):
    """Solver ``name`` with ``params``, set up on ``problem`` as a benchopt
    run on the dataset named ``dataset_name`` sets it up."""
    objective = make_objective(problem)
    solver = get_solver_class(name).get_instance(**params)
    RunContext().set_run_context(objective, dataset_name, solver,
                                 repetition=0, base_seed=0)
    solver.set_objective(**objective.get_objective())
    return solver


def test_tuned_steps_are_the_entry_of_the_run_dataset(tuned_dir, quadratic):
    solver = set_up("SOBA", quadratic, step_size_inner="tuned",
                    step_size_outer="tuned")
    unit = quadratic.outer_step_unit
    assert solver.inner_step == 0.0123
    assert solver.outer_step == 3.16 * unit


def test_each_variant_reads_its_own_entry(tuned_dir, quadratic):
    gd = set_up("AmIGO", quadratic, inner_solver="gd",
                step_size_inner="tuned", step_size_linsys="tuned",
                step_size_outer="tuned")
    cg = set_up("AmIGO", quadratic, inner_solver="cg",
                step_size_inner="tuned", step_size_linsys="tuned",
                step_size_outer="tuned")
    assert (gd.inner_step, gd.linsys_step) == (0.01, 0.02)
    assert gd.outer_step == 0.5 * quadratic.outer_step_unit
    # 'auto' as tuned resolves on the instance, as a plain 'auto' does.
    assert cg.inner_step == set_up("AmIGO", quadratic,
                                   inner_solver="cg").inner_step
    assert cg.outer_step == 4.0 * quadratic.outer_step_unit


def test_the_steps_used_reach_the_results(tuned_dir, quadratic):
    solver = set_up("AmIGO", quadratic, inner_solver="cg",
                    step_size_inner="tuned", step_size_linsys=0.05,
                    step_size_outer="tuned")
    # Tuned, tuned to 'auto' and given steps, resolved; the outer step in
    # its parameter's units.
    steps = {"step_size_inner": solver.inner_step, "step_size_linsys": 0.05,
             "step_size_outer": 4.0}
    assert solver.inner_step == set_up("AmIGO", quadratic,
                                       inner_solver="cg").inner_step
    assert solver.steps_used == steps
    metrics = make_objective(quadratic).evaluate_result(
        quadratic.x0, quadratic.y0, None,
        counts=dict(n_grad=0, n_hvp=0, n_cross=0, n_epochs=0), n_outer=0,
        steps=solver.steps_used)
    assert {key: metrics[key] for key in steps} == steps


def test_a_tuned_step_next_to_a_given_one(tuned_dir, quadratic):
    solver = set_up("SOBA", quadratic, step_size_inner="tuned",
                    step_size_outer=0.25)
    assert solver.inner_step == 0.0123
    assert solver.outer_step == 0.25 * quadratic.outer_step_unit


def test_other_parameters_are_another_curve(tuned_dir, quadratic):
    with pytest.raises(ValueError, match=r"has no entry for LancBiO\[.*"
                       r"max_subspace_dim=20"):
        set_up("LancBiO", quadratic, max_subspace_dim=20,
               step_size_inner="tuned")
    with pytest.raises(ValueError, match="has no entry for SubBiO"):
        set_up("SubBiO", quadratic, step_size_inner="tuned")


def test_tuned_truncation_lengths_are_the_entry_of_the_run_dataset(
        tuned_dir, quadratic):
    solver = set_up("stocBiO", quadratic, n_neumann_steps="tuned",
                    n_inner_steps="tuned", step_size_linsys="tuned")
    assert (solver.n_neumann_steps, solver.n_inner_steps) == (57, 3)
    assert solver.linsys_step == 0.02
    # Given ones stay, and still find the entry of their curve.
    solver = set_up("stocBiO", quadratic, n_neumann_steps=20,
                    step_size_linsys="tuned")
    assert (solver.n_neumann_steps, solver.linsys_step) == (20, 0.02)


def test_an_untuned_dataset_is_named(tuned_dir, quadratic):
    other = "quadratic[dim_x=10,dim_y=20,kappa=100.0]"
    with pytest.raises(ValueError, match=r"step_size_inner='tuned': no run "
                       r"config in .* is tuned for the dataset "
                       r"quadratic\[dim_x=10,dim_y=20,kappa=100.0\]; give "
                       r"step_size_inner a value, or tune it: python "
                       r"scripts/tune.py"):
        set_up("SOBA", quadratic, dataset_name=other,
               step_size_inner="tuned")


def test_tuned_needs_a_benchopt_run(tuned_dir, quadratic):
    objective = make_objective(quadratic)
    solver = get_solver_class("SOBA").get_instance(step_size_inner="tuned")
    with pytest.raises(ValueError, match="only a benchopt run has"):
        solver.set_objective(**objective.get_objective())


#: The quickstarts, each a run config whose solvers read tuned steps.
QUICKSTARTS = ("quickstart.yml", "stochastic_quickstart.yml")
#: The variance-reduced methods: their full-batch version is another
#: one's (SABA and SRBA are SOBA, MRBO stocBiO with one inner step...):
#: only the stochastic quickstart runs them.
STOCHASTIC_ONLY = {"SABA", "SRBA", "MA-SOBA", "MRBO", "VRBO", "FSLA",
                   "SUSTAIN"}


def quickstart_curves(name):
    """(dataset name, solver class, params) of every curve of a quickstart
    that reads a tuned step."""
    config = yaml.safe_load((ROOT / "configs" / name).read_text())
    datasets = [str(cls.get_instance(**params))
                for cls, selection in BENCHMARK.check_dataset_patterns(
                    config["dataset"])
                for params in _get_used_parameters(cls, selection)]
    return [(dataset, cls, params) for dataset in datasets
            for cls, selection in BENCHMARK.check_solver_patterns(
                config["solver"])
            for params in _get_used_parameters(cls, selection)
            if "tuned" in params.values()]


def test_the_quickstarts_run_every_solver_at_tuned_parameters():
    names = {name: {cls.name for _, cls, _ in quickstart_curves(name)}
             for name in QUICKSTARTS}
    every_solver = {cls.name for cls in BENCHMARK.get_solvers()}
    assert names["quickstart.yml"] == every_solver - STOCHASTIC_ONLY
    assert names["stochastic_quickstart.yml"] == every_solver - {
        "AID-exact"}
    # Every parameter that the protocol tunes, not only the steps.
    for name in QUICKSTARTS:
        for _, cls, params in quickstart_curves(name):
            searched = {*step_size_names(cls.name, params),
                        *getattr(cls, "tuning_space", {})}
            assert {key for key in searched if params[key] != "tuned"} == (
                set()), (name, cls.name)
            assert set(tunable_parameters(cls, params)) >= searched


@pytest.mark.parametrize("name", QUICKSTARTS)
def test_every_quickstart_curve_finds_its_tuned_parameters(name):
    for dataset, cls, params in quickstart_curves(name):
        tuned = [key for key, value in params.items() if value == "tuned"]
        solver = cls.get_instance(**params)
        for key in tuned:
            value = tuned_parameters.tuned_value(solver, key, dataset)
            assert value == "auto" or float(value) > 0, (dataset, key)
