"""Every solver's short curve on the three problem families equals the one
recorded in ``reference_curves.json`` (see ``reference_curves.py``): a change
that reorganises code leaves the arithmetic, and so every curve, as it was."""
import json
import math

import pytest

from reference_curves import CURVES, REFERENCE_FILE, compute_curves

#: Relative tolerance: the same operations in the same order give the same
#: floating-point numbers; a reordered sum may move the last digits.
RTOL = 1e-10
#: AID-exact stops its solves at a relative tolerance of 1e-10: a round-off
#: change (another torch or BLAS version) can move a stop by one CG step,
#: which moves its iterates by about that tolerance and its counts by one
#: HVP in a few hundred. On the quadratic its solves reach round-off: a
#: residual of 1e-15 is round-off noise, compared in absolute terms.
TOLERANCE_STOPPED = {"AID-exact": dict(metrics=1e-8, counts=1e-2,
                                       absolute=1e-12)}
COUNTS = ("n_grad", "n_hvp", "n_cross", "n_outer")


def tolerance(label, metric):
    """(relative, absolute) tolerance of a curve's metric."""
    if label not in TOLERANCE_STOPPED:
        return RTOL, 1e-300
    kind = "counts" if metric in COUNTS else "metrics"
    return (TOLERANCE_STOPPED[label][kind],
            TOLERANCE_STOPPED[label]["absolute"])


@pytest.fixture(scope="module")
def curves():
    return compute_curves()


def test_reference_covers_every_solver_curve():
    reference = json.loads(REFERENCE_FILE.read_text())
    for by_curve in reference.values():
        assert sorted(by_curve) == sorted(CURVES)


@pytest.mark.parametrize("label", sorted(CURVES))
def test_curve_is_unchanged(curves, label):
    reference = json.loads(REFERENCE_FILE.read_text())
    for problem, by_curve in reference.items():
        for metric, expected in by_curve[label].items():
            got = curves[problem][label][metric]
            relative, absolute = tolerance(label, metric)
            for k, (a, b) in enumerate(zip(got, expected)):
                assert (math.isnan(a) and math.isnan(b)) or math.isclose(
                    a, b, rel_tol=relative, abs_tol=absolute), (
                    f"{label} on {problem}: {metric} at point {k} is {a}, "
                    f"was {b}")
