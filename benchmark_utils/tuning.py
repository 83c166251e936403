"""The step-size tuning protocol (docs/tuning.md): which parameters are
tuned, the grid of each, the score of one curve of a results table and the
rule that picks one candidate per solver and problem.

``scripts/tune_step_sizes.py`` runs the protocol with benchopt and writes
the tuned run configs; everything here works on plain values and on
benchopt's results table, so that the selection can be tested and rerun
without running a solver.
"""
import ast
import math

import numpy as np
from benchopt.utils.parametrized_name_mixin import (_get_used_parameters,
                                                   product_param)

from benchmark_utils.solver import LIPSCHITZ_MARGIN
from benchmark_utils.tuned_steps import STEP_SIZE_PREFIX, TUNED

#: Of the step sizes (the parameters named STEP_SIZE_PREFIX...), as
#: ``BilevelSolver.step_size`` reads them: ``step_size_outer`` moves x, in
#: the problem's ``outer_step_unit``; every other one (``step_size_inner``
#: on y, ``step_size_linsys`` on v, BOME's ``step_size_joint`` on (x, y))
#: is a step on a function with the lower level's curvature, and 'auto'
#: is 1 / (1.1 L).
OUTER_STEP = "step_size_outer"
#: Coordinate search tunes the steps in this order, the other step names
#: (``step_size_joint``) between the last two: the lower level and the
#: linear system first, because how large a step x tolerates depends on how
#: well y and v track their targets; x last, with them set.
TUNING_ORDER = ("step_size_inner", "step_size_linsys", OUTER_STEP)
#: Step sizes that a solver's variant never reads, by (solver name, the
#: parameter values that make the variant): tuning them would rerun one
#: curve five times. AmIGO-CG solves A v = b by conjugate gradient, which
#: has no step.
UNUSED_STEP_SIZES = (
    ("AmIGO", {"inner_solver": "cg"}, ("step_size_linsys",)),
)

#: The grid: GRID_SIZE values GRID_RATIO apart, centred on the default.
GRID_RATIO = math.sqrt(10.0)
GRID_SIZE = 5
#: Gradient descent on a function of curvature at most L is stable for
#: steps below 2 / L; the grid's y and v steps stay below this many times
#: 1 / (LIPSCHITZ_MARGIN L), the margin of 'auto', because the power
#: iteration's L is a lower bound.
STABILITY_LIMIT = 2.0
#: Grid values other than a default are rounded to this many significant
#: digits, so that curve labels and tuned configs stay readable.
SIGNIFICANT_DIGITS = 3

#: hypergrad_norm is floored at this fraction of its value at the start
#: before the log: an exact 0 (saturated hyper-cleaning weights) must not
#: score -inf.
HYPERGRAD_FLOOR = 1e-12
#: Two candidates whose scores differ by less than this (in decades of
#: hypergrad_norm, averaged over the budget: a factor of 1.023) tie; the
#: one closer to the default wins, so that a rerun of the protocol does not
#: change a step on a difference that small.
TIE_TOLERANCE = 0.01
#: A curve whose last point comes before this fraction of the budget is
#: reported as short (:meth:`TuningCurve.short_curves`).
SHORT_CURVE = 0.9
#: The columns of benchopt's results table that the score reads.
REQUIRED_COLUMNS = ("solver_name", "dataset_name", "base_seed", "idx_rep",
                    "stop_val", "time", "objective_value",
                    "objective_hypergrad_norm")
#: A boolean column the objective adds; a table without it has no
#: diverged point.
DIVERGED_COLUMN = "objective_diverged"
#: The column that a curve on a lower level that is not convex is scored
#: on, in place of hypergrad_norm (NaN wherever its local reference is not
#: known, benchmark_utils/local_metrics.py) and of the value: the upper
#: level's value at the solver's own y, which only such a problem reports.
VALUE_AT_Y_COLUMN = "objective_value_at_y"


def normalize(value):
    """A parameter value as it compares across results tables: benchopt
    writes a ``p_solver_*`` column holding both 'auto' and numbers as
    strings, integers as floats and None as NaN. Numbers become floats,
    'auto' and other words stay strings, NaN becomes None."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


def step_size_names(params):
    """The step-size parameters among ``params`` (names), in tuning
    order."""
    names = [name for name in params if name.startswith(STEP_SIZE_PREFIX)]
    others = sorted(name for name in names if name not in TUNING_ORDER)
    order = [*TUNING_ORDER[:-1], *others, TUNING_ORDER[-1]]
    return [name for name in order if name in names]


def tuned_step_sizes(solver_name, params):
    """The step sizes that the curve ``solver_name`` with ``params`` reads,
    in tuning order."""
    unused = {step for name, variant, steps in UNUSED_STEP_SIZES
              if name == solver_name
              and all(params.get(key) == value
                      for key, value in variant.items())
              for step in steps}
    return [name for name in step_size_names(params) if name not in unused]


def resolve_step(name, value, lipschitz):
    """A step size as a number, for distances between grid values: 'auto'
    is 1 / (LIPSCHITZ_MARGIN L), as ``BilevelSolver.step_size`` resolves
    it; an outer step stays in the problem's ``outer_step_unit``."""
    if value == "auto":
        if name == OUTER_STEP:
            raise ValueError(f"{OUTER_STEP} is never 'auto'")
        return 1.0 / (LIPSCHITZ_MARGIN * lipschitz)
    return float(value)


def stability_cap(lipschitz):
    """The largest y or v step of a grid: STABILITY_LIMIT / (1.1 L), i.e.
    below 2 / L for the true L as long as the estimate is within 10%."""
    return STABILITY_LIMIT / (LIPSCHITZ_MARGIN * lipschitz)


def round_significant(value, down=False):
    """``value`` rounded to SIGNIFICANT_DIGITS digits (towards 0 if
    ``down``)."""
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if down and rounded > value:
        unit = 10.0 ** (math.floor(math.log10(value)) - SIGNIFICANT_DIGITS
                        + 1)
        rounded = float(f"{rounded - unit:.{SIGNIFICANT_DIGITS}g}")
    return rounded


def step_size_grid(name, default, lipschitz):
    """The values of step size ``name`` that the protocol tries, smallest
    first.

    The default (an 'auto' default resolved to 1 / (1.1 L)) times
    GRID_RATIO ** k for k = 2, 1, 0, -1, -2: five log-spaced values a
    factor sqrt(10) apart. A y or v step (any step but ``step_size_outer``)
    is capped by stability: a value above :func:`stability_cap` is clipped
    to the cap (twice the 'auto' step), the duplicates that clipping makes
    are dropped, and the grid goes on downwards (k = -3, -4, ...) until it
    holds five values. For an 'auto' default the grid is thus 'auto' times
    10^-1.5, 10^-1, 10^-0.5, 1 and 2. The default keeps its own spelling
    (``'auto'``, or its number); other values are rounded to
    SIGNIFICANT_DIGITS digits, the cap downwards.
    """
    center = resolve_step(name, default, lipschitz)
    cap = math.inf if name == OUTER_STEP else stability_cap(lipschitz)
    grid, k = {}, (GRID_SIZE - 1) // 2
    while len(grid) < GRID_SIZE:
        if k == 0 and center <= cap:
            value = default
        else:
            value = round_significant(min(center * GRID_RATIO ** k, cap))
            if value > cap:
                value = round_significant(cap, down=True)
        grid.setdefault(resolve_step(name, value, lipschitz), value)
        k -= 1
    return [grid[key] for key in sorted(grid)]


def solver_curves(solver_class, selection=None):
    """The parameter sets (one curve each) of ``solver_class`` whose steps
    the protocol tunes: those that ``selection`` (a benchopt selection
    dict; the class defaults when None) expands to, merged when they differ
    only in their step sizes (the first one's steps are the defaults). A
    step given as 'tuned' (a run config that runs the tuned steps, such as
    the quickstart) is tuned from its class default."""
    curves = {}
    for params in _get_used_parameters(solver_class, selection or {}):
        params = {key: (solver_class.parameters[key][0] if value == TUNED
                        else value) for key, value in params.items()}
        fixed = tuple((key, repr(value)) for key, value in params.items()
                      if not key.startswith(STEP_SIZE_PREFIX))
        curves.setdefault(fixed, params)
    return list(curves.values())


class TuningCurve:
    """One solver curve on one problem: its parameters, the steps tuned and
    their grids. A *candidate* is a tuple of step values, one per entry of
    ``steps``, normalized (:func:`normalize`).

    Parameters
    ----------
    solver_class : type
        The benchopt solver class.
    params : dict
        The curve's full parameters, steps at their defaults.
    lipschitz : float
        The largest eigenvalue of d2_yy g at the start, as
        ``BilevelSolver.inner_lipschitz`` estimates it.
    """

    def __init__(self, solver_class, params, lipschitz):
        self.solver_class, self.params = solver_class, dict(params)
        self.name = solver_class.name
        self.lipschitz = float(lipschitz)
        self.steps = tuple(tuned_step_sizes(self.name, self.params))
        self.default = tuple(normalize(self.params[step])
                             for step in self.steps)
        self.fixed = {key: value for key, value in self.params.items()
                      if key not in self.steps}

    def grid(self, step):
        return [normalize(value) for value in step_size_grid(
            step, self.params[step], self.lipschitz)]

    def resolved(self, candidate):
        return tuple(resolve_step(step, value, self.lipschitz)
                     for step, value in zip(self.steps, candidate))

    def distance_to_default(self, candidate):
        """Sum over the steps of |log10(value / default)|."""
        return sum(abs(math.log10(value / default)) for value, default in
                   zip(self.resolved(candidate),
                       self.resolved(self.default)))

    def coordinate_candidates(self, incumbent, step):
        """The candidates of one coordinate-search step: ``incumbent`` with
        ``step`` set to each value of its grid (and to its own value)."""
        position = self.steps.index(step)
        values = self.grid(step)
        if incumbent[position] not in values:
            values.append(incumbent[position])
        return [incumbent[:position] + (value,) + incumbent[position + 1:]
                for value in values]

    def parameters(self, candidate):
        """The curve's full parameters with the steps of ``candidate``."""
        return {**self.params, **dict(zip(self.steps, candidate))}

    def selection(self, candidate):
        """A benchopt selection string for the curve with ``candidate``:
        every step tuned, and every other parameter whose value is not the
        class's only default, so that it selects this curve alone."""
        defaults = list(product_param(self.solver_class.parameters))
        shown = [key for key, value in self.fixed.items()
                 if len({repr(d[key]) for d in defaults}) > 1
                 or repr(defaults[0][key]) != repr(value)]
        params = {**{key: self.fixed[key] for key in shown},
                  **dict(zip(self.steps, candidate))}
        return f"{self.name}[" + ",".join(
            f"{key}={format_value(value)}"
            for key, value in params.items()) + "]"

    def rows(self, results):
        """The rows of ``results`` that belong to this curve (any step
        values), by the ``p_solver_*`` columns of its fixed parameters. A
        table without the column of a parameter predates it: its rows ran
        at the class default, and belong to a curve at that default."""
        mask = results["solver_name"].str.partition("[")[0] == self.name
        default = next(product_param(self.solver_class.parameters))
        for key, value in self.fixed.items():
            column = f"p_solver_{key}"
            if column not in results:
                if repr(value) == repr(default[key]):
                    continue
                return results.iloc[:0]
            mask &= results[column].map(normalize).map(
                lambda cell, wanted=normalize(value): cell == wanted)
        return results[mask]

    def curves(self, results):
        """Yield (candidate, seed, rows) for each curve of this one in
        ``results`` (rows of one dataset), the seed as (base_seed,
        idx_rep)."""
        rows = self.rows(results)
        if rows.empty:
            return
        for step in self.steps:
            if f"p_solver_{step}" not in rows:
                raise ValueError(f"the results table has no column "
                                 f"'p_solver_{step}' ({self.name}'s step)")
        candidates = list(zip(*(rows[f"p_solver_{step}"].map(normalize)
                                for step in self.steps))) or [()] * len(rows)
        # Grouped by the candidate's repr: pandas would unpack tuple keys.
        by_repr = {repr(candidate): candidate for candidate in candidates}
        for (key, base_seed, idx_rep), curve in rows.groupby(
                [[repr(c) for c in candidates], "base_seed", "idx_rep"]):
            yield by_repr[key], (base_seed, idx_rep), curve

    def candidate_scores(self, results, budget):
        """{candidate: median over the tuning seeds of its curve's score}
        for the candidates of this curve in ``results`` (rows of one
        dataset). The tuning seeds are those of the curve's rows (seed and
        repetition): a candidate without a curve for one of them (a failed
        run) scores +inf on it."""
        per_seed = {}
        for candidate, seed, curve in self.curves(results):
            per_seed.setdefault(candidate, {})[seed] = curve_score(
                curve, budget)
        seeds = {seed for scores in per_seed.values() for seed in scores}
        return {candidate: float(np.median(
            [scores.get(seed, math.inf) for seed in seeds]))
            for candidate, scores in per_seed.items()}

    def short_curves(self, results, budget):
        """(how many, of how many) of this one's qualified curves in
        ``results`` stop before SHORT_CURVE of the budget: they reached
        --max-runs or stalled first, or the wall-clock guard cut their
        evaluations short; their last value is held to the budget."""
        scored = [(curve_score(curve, budget), curve["time"].max())
                  for _, _, curve in self.curves(results)]
        qualified = [end for score, end in scored if score < math.inf]
        return (sum(end < SHORT_CURVE * budget for end in qualified),
                len(qualified))


def format_value(value):
    """A parameter value as a benchopt selection string writes it."""
    return value if isinstance(value, str) else repr(value)


def check_columns(results):
    """Raise a ValueError naming the columns the score needs that
    ``results`` lacks."""
    missing = [column for column in REQUIRED_COLUMNS
               if column not in results]
    if missing:
        raise ValueError("the results table has no column "
                         + ", ".join(repr(c) for c in missing))


def curve_score(curve, budget):
    """The score of one curve (its rows of benchopt's results table): the
    mean of log10(hypergrad_norm) over the solver-time budget, lower is
    better; on a lower level that is not convex (a curve with
    :data:`VALUE_AT_Y_COLUMN`), the mean of log10(value_at_y), the value
    at the solver's own y standing for both the value and hypergrad_norm.

    The curve starts at time 0 (its first point, the starting point), is
    linear in log10(hypergrad_norm) between points (the exact area of a
    linearly converging curve) and constant after its last point; the area
    over [0, budget] is divided by ``budget``. hypergrad_norm is floored at
    HYPERGRAD_FLOOR times its starting value. The score is +inf
    (disqualified) when a point is marked diverged, when the value,
    hypergrad_norm or time of a point is not finite, or when the last value
    is above the first one.
    """
    if not budget > 0:
        raise ValueError(f"the budget must be positive, got {budget!r}")
    curve = curve.sort_values("stop_val")
    if (DIVERGED_COLUMN in curve
            and curve[DIVERGED_COLUMN].eq(True).any()):
        return math.inf
    if (VALUE_AT_Y_COLUMN in curve
            and curve[VALUE_AT_Y_COLUMN].notna().any()):
        value = norm = curve[VALUE_AT_Y_COLUMN].to_numpy(dtype=float)
    else:
        value = curve["objective_value"].to_numpy(dtype=float)
        norm = curve["objective_hypergrad_norm"].to_numpy(dtype=float)
    time = curve["time"].to_numpy(dtype=float, copy=True)
    if not (np.isfinite(value).all() and np.isfinite(norm).all()
            and np.isfinite(time).all()) or value[-1] > value[0]:
        return math.inf
    floor = max(HYPERGRAD_FLOOR * norm[0], np.finfo(float).tiny)
    log_norm = np.log10(np.maximum(norm, floor))
    time[0] = 0.0
    inside = time < budget
    # np.interp holds the last value beyond the last point.
    times = np.append(time[inside], budget)
    log_norms = np.append(log_norm[inside],
                          np.interp(budget, time, log_norm))
    return float(np.trapezoid(log_norms, times) / budget)


def select_candidate(scores, curve):
    """The candidate that the protocol picks among ``scores``
    ({candidate: median score}) for ``curve``: the lowest score; among the
    candidates within TIE_TOLERANCE of it, the closest to the default
    (:meth:`TuningCurve.distance_to_default`), then the smallest steps.
    When every candidate is disqualified (+inf), that is the one closest to
    the default."""
    if not scores:
        raise ValueError(f"no candidate of {curve.name} to select from")
    best = min(scores.values())
    tied = [candidate for candidate, score in scores.items()
            if score <= best + TIE_TOLERANCE]
    return min(tied, key=lambda candidate: (
        curve.distance_to_default(candidate), curve.resolved(candidate)))
