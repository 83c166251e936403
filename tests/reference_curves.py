"""Short curves of every solver at its defaults, for the check that a change
which should not alter the arithmetic leaves every curve as it was.

``python tests/reference_curves.py`` writes ``tests/reference_curves.json``
from the solvers as they are; ``tests/test_reference_curves.py`` recomputes
the curves and compares them with that file. Rewrite the file only with a
change that is meant to alter a curve, and say which one in its commit.
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE_FILE = HERE / "reference_curves.json"
#: Iterations after which a curve's metrics are recorded.
RECORDED_ITERATIONS = (1, 3, 15)
#: The metrics compared: everything the results table carries of a point.
METRICS = ("value", "hypergrad_norm", "inner_gap", "linsys_residual",
           "test_accuracy", "n_grad", "n_hvp", "n_cross", "n_outer")
#: Every solver curve of the default run (AmIGO has two).
CURVES = {
    "LancBiO": {}, "SubBiO": {}, "SOBA": {}, "TTSA": {}, "stocBiO": {},
    "BSA": {}, "AmIGO[gd]": {"inner_solver": "gd"},
    "AmIGO[cg]": {"inner_solver": "cg"}, "F2SA": {}, "HJFBiO": {},
    "BOME": {}, "ITD": {}, "STABLE": {}, "PBGD": {}, "SABA": {},
    "SRBA": {}, "MA-SOBA": {}, "MRBO": {}, "VRBO": {}, "FSLA": {},
    "SUSTAIN": {}, "AID-exact": {},
}


def problems():
    """The three problem families, small: name -> problem."""
    from conftest import get_dataset_class
    from benchopt.utils.run_context import RunContext

    problems = {}
    for name, params in [
            ("quadratic", dict(dim_x=10, dim_y=20, kappa=10.0)),
            ("synthetic", dict(n=40, kappa=100.0)),
            ("hyperclean_mnist5k", dict(n_train=100, n_val=50, n_test=50))]:
        dataset = get_dataset_class(name).get_instance(**params)
        RunContext().set_run_context(None, dataset, None, repetition=0,
                                     base_seed=0)
        problems[name] = dataset.get_data()["problem"]
    return problems


def compute_curves():
    """{problem: {curve: {metric: [value at each recorded iteration]}}}."""
    from conftest import make_objective, run_solver

    curves = {}
    for problem_name, problem in problems().items():
        # The closed-form products that 'auto' picks for these problems.
        objective = make_objective(problem, hvp_mode="closed_form")
        # Compared to 1e-10: fixed-tolerance solves (1e-12), not the
        # metrics' 1e-6.
        objective.reference.rtol = None
        curves[problem_name] = {}
        for label, params in CURVES.items():
            name = label.split("[")[0]
            # Each curve's evaluations warm-start from its own points only.
            objective.reference.forget_warm_starts()
            _, _, callback = run_solver(
                name, problem, max(RECORDED_ITERATIONS), objective=objective,
                record=RECORDED_ITERATIONS, **params)
            points = [objective.evaluate_result(**result)
                      for result in callback.history]
            curves[problem_name][label] = {
                metric: [float(point.get(metric, float("nan")))
                         for point in points] for metric in METRICS}
    return curves


def to_json(curves):
    """The curves as JSON, one line per metric, so a diff shows which."""
    problems = [
        f' "{problem}": {{\n' + ",\n".join(
            f'  "{label}": {{\n' + ",\n".join(
                f'   "{metric}": {json.dumps(values)}'
                for metric, values in metrics.items()) + "\n  }"
            for label, metrics in by_curve.items()) + "\n }"
        for problem, by_curve in curves.items()]
    return "{\n" + ",\n".join(problems) + "\n}\n"


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    REFERENCE_FILE.write_text(to_json(compute_curves()))
    print(f"wrote {REFERENCE_FILE}")
