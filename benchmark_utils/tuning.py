"""The tuning protocol (docs/tuning.md): what is searched for each solver
curve, how a candidate runs and is scored, when a candidate that falls
behind is stopped, and the rule that picks one.

The search itself is Optuna's (Akiba et al., KDD 2019): a TPE sampler
(Bergstra et al., NeurIPS 2011) proposes candidates in the space of
:class:`SearchSpace`, asynchronous successive halving (Li et al., MLSys
2020) stops a candidate whose score at a fraction of the budget is not in
the best third of those that reached it, and every trial lands in a
SQLite study, so that a tuning can be stopped, resumed and inspected. What
is the benchmark's own is here: the space (the steps and each solver's
declared ``tuning_space``), the score, the run of a candidate in this
process through benchopt's callback and the benchmark's stopping rule, and
the selection rule. ``scripts/tune.py`` drives it and writes the tuned run
configs.
"""
import math
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd
from benchopt.callback import _Callback
from benchopt.utils.parametrized_name_mixin import (_get_used_parameters,
                                                   product_param)
from benchopt.utils.run_context import RunContext

from benchmark_utils.plotting.budget import VANISHED_RATIO
from benchmark_utils.solver import LIPSCHITZ_MARGIN
from benchmark_utils.stopping import SolverTimeBudget
from benchmark_utils.tuned_parameters import (STEP_SIZE_PREFIX, TUNED,
                                              tunable_parameters)

#: Of the step sizes (the parameters named STEP_SIZE_PREFIX...), as
#: ``BilevelSolver.step_size`` reads them: ``step_size_outer`` moves x, in
#: the problem's ``outer_step_unit``; every other one (``step_size_inner``
#: on y, ``step_size_linsys`` on v, BOME's ``step_size_joint`` on (x, y))
#: is a step on a function with the lower level's curvature, and 'auto'
#: is 1 / (1.1 L).
OUTER_STEP = "step_size_outer"
#: Step sizes that a solver's variant never reads, by (solver name, the
#: parameter values that make the variant): searching them would waste
#: trials. AmIGO-CG solves A v = b by conjugate gradient, which has no
#: step.
UNUSED_STEP_SIZES = (
    ("AmIGO", {"inner_solver": "cg"}, ("step_size_linsys",)),
)

#: A step is searched log-uniformly within this factor of its default on
#: both sides (10^1.5: from 0.0316 to 31.6 times the default).
STEP_SPAN = 10.0 ** 1.5
#: Gradient descent on a function of curvature at most L is stable for
#: steps below 2 / L; y and v steps stay below this many times
#: 1 / (LIPSCHITZ_MARGIN L), the margin of 'auto', because the power
#: iteration's L is a lower bound.
STABILITY_LIMIT = 2.0
#: Searched steps are rounded to this many significant digits, so that
#: curve labels and tuned configs stay readable.
SIGNIFICANT_DIGITS = 3

#: hypergrad_norm is floored at this fraction of its value at the start
#: before the log: an exact 0 (saturated hyper-cleaning weights) must not
#: score -inf.
HYPERGRAD_FLOOR = 1e-12
#: Two candidates whose scores differ by less than this (in decades of
#: hypergrad_norm, averaged over the budget: a factor of 1.023) tie; the
#: one closer to the default wins, so that a rerun of the protocol does not
#: change a parameter on a difference that small.
TIE_TOLERANCE = 0.01

#: Successive halving: a candidate's score is compared at these fractions
#: of the budget (its "rungs", in percent: 1/9 and 1/3), and it goes on
#: only if it is in the best 1 / REDUCTION_FACTOR of the candidates that
#: reached the rung before it.
REDUCTION_FACTOR = 3
RUNGS = (11, 33)
#: The Optuna sampler's first trials, after the default, are drawn at
#: random (TPE needs a few to model from).
N_STARTUP_TRIALS = 5

#: The columns of benchopt's results table that the score reads.
REQUIRED_COLUMNS = ("stop_val", "time", "objective_value",
                    "objective_hypergrad_norm")
#: Boolean columns the objective adds; a table without them has no
#: diverged or failed point.
DIVERGED_COLUMN = "objective_diverged"
FAILED_COLUMN = "objective_failed"
#: The column that a curve on a lower level that is not convex is scored
#: on, in place of hypergrad_norm (NaN wherever its local reference is not
#: known, benchmark_utils/local_metrics.py) and of the value: the upper
#: level's value at the solver's own y, which only such a problem reports.
VALUE_AT_Y_COLUMN = "objective_value_at_y"


def round_significant(value, down=False):
    """``value`` rounded to SIGNIFICANT_DIGITS digits (towards 0 if
    ``down``)."""
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if down and rounded > value:
        unit = 10.0 ** (math.floor(math.log10(value)) - SIGNIFICANT_DIGITS
                        + 1)
        rounded = float(f"{rounded - unit:.{SIGNIFICANT_DIGITS}g}")
    return rounded


def format_value(value):
    """A parameter value as a benchopt selection string writes it."""
    return value if isinstance(value, str) else repr(value)


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: log-uniform in [low, high], integers for a
    parameter whose default and bounds are integers.

    ``default`` is the curve's value as the solver spells it (a number, or
    'auto'), ``center`` the same as a number; a candidate at ``center``
    keeps the default's spelling."""

    name: str
    low: float
    high: float
    default: object
    center: float
    integer: bool

    def suggest(self, trial):
        """A value drawn by ``trial`` (an Optuna trial)."""
        if self.integer:
            return trial.suggest_int(self.name, int(self.low),
                                     int(self.high), log=True)
        return self.value(trial.suggest_float(self.name, self.low,
                                              self.high, log=True))

    def value(self, sampled):
        """A drawn value as a candidate holds it: an integer, the default
        itself, or a float rounded to SIGNIFICANT_DIGITS digits (towards 0
        at the upper bound, a stability cap)."""
        if self.integer:
            return int(sampled)
        if sampled == self.center:
            return self.center
        rounded = round_significant(sampled)
        return (round_significant(self.high, down=True)
                if rounded > self.high else rounded)

    def spelling(self, value):
        """``value`` as the solver's parameter: the default's own spelling
        at the default."""
        return self.default if value == self.center else value

    def describe(self):
        kind = "integers" if self.integer else "log-uniform"
        low, high = (int(self.low), int(self.high)) if self.integer else (
            f"{self.low:.3g}", f"{self.high:.3g}")
        return (f"{self.name} in [{low}, {high}] ({kind}; default "
                f"{format_value(self.default)})")


def resolve_step(name, value, lipschitz):
    """A step size as a number: 'auto' is 1 / (LIPSCHITZ_MARGIN L), as
    ``BilevelSolver.step_size`` resolves it; an outer step stays in the
    problem's ``outer_step_unit``."""
    if value == "auto":
        if name == OUTER_STEP:
            raise ValueError(f"{OUTER_STEP} is never 'auto'")
        return 1.0 / (LIPSCHITZ_MARGIN * lipschitz)
    return float(value)


def stability_cap(lipschitz):
    """The largest y or v step searched: STABILITY_LIMIT / (1.1 L), i.e.
    below 2 / L for the true L as long as the estimate is within 10%."""
    return STABILITY_LIMIT / (LIPSCHITZ_MARGIN * lipschitz)


def step_dimension(name, default, lipschitz):
    """The search range of step size ``name`` around its ``default``: a
    factor STEP_SPAN on both sides, a y or v step capped by stability."""
    center = resolve_step(name, default, lipschitz)
    high = center * STEP_SPAN
    if name != OUTER_STEP:
        high = max(min(high, stability_cap(lipschitz)), center)
    return Dimension(name, center / STEP_SPAN, high, default, center,
                     integer=False)


def declared_dimension(name, bounds, default):
    """The search range that a solver's ``tuning_space`` declares for
    ``name``: ``bounds = (low, high)``, integers when both are."""
    low, high = bounds
    integer = all(isinstance(bound, int) and not isinstance(bound, bool)
                  for bound in bounds)
    return Dimension(name, float(low), float(high), default,
                     int(default) if integer else float(default), integer)


def step_size_names(solver_name, params):
    """The step sizes that the curve ``solver_name`` with ``params``
    reads."""
    unused = {step for name, variant, steps in UNUSED_STEP_SIZES
              if name == solver_name
              and all(params.get(key) == value
                      for key, value in variant.items())
              for step in steps}
    return [name for name in params if name.startswith(STEP_SIZE_PREFIX)
            and name not in unused]


def solver_curves(solver_class, selection=None):
    """The parameter sets (one curve each) of ``solver_class`` that the
    protocol tunes: those that ``selection`` (a benchopt selection dict;
    the class defaults when None) expands to, merged when they differ only
    in tunable parameters (the first one's are the defaults). A parameter
    given as 'tuned' (a run config that runs the tuned parameters, such as
    the quickstart) is tuned from its class default."""
    curves = {}
    defaults = next(product_param(solver_class.parameters))
    for params in _get_used_parameters(solver_class, selection or {}):
        params = {key: (defaults[key] if value == TUNED else value)
                  for key, value in params.items()}
        tunable = set(tunable_parameters(solver_class, params))
        fixed = tuple((key, repr(value)) for key, value in params.items()
                      if key not in tunable)
        curves.setdefault(fixed, params)
    return list(curves.values())


class SearchSpace:
    """What the protocol searches for one solver curve on one problem: the
    steps it reads (:func:`step_dimension`) and the parameters that its
    solver's ``tuning_space`` declares (numbers of inner steps, Neumann
    terms, unrolled steps...: :func:`declared_dimension`). A *candidate*
    is a dict {parameter: value}.

    Parameters
    ----------
    solver_class : type
        The benchopt solver class.
    params : dict
        The curve's full parameters, tunable ones at their defaults.
    lipschitz : float
        The largest eigenvalue of d2_yy g at the start, as
        ``BilevelSolver.inner_lipschitz`` estimates it.
    """

    def __init__(self, solver_class, params, lipschitz):
        self.solver_class, self.params = solver_class, dict(params)
        self.name = solver_class.name
        self.lipschitz = float(lipschitz)
        declared = getattr(solver_class, "tuning_space", {})
        self.check_declared(declared)
        self.dimensions = [
            step_dimension(name, self.params[name], self.lipschitz)
            for name in step_size_names(self.name, self.params)] + [
            declared_dimension(name, bounds, self.params[name])
            for name, bounds in declared.items()]
        for d in self.dimensions:
            if not d.low <= d.center <= d.high:
                raise ValueError(
                    f"{self.name}'s default {d.name}={d.default!r} is "
                    f"outside its search range [{d.low:g}, {d.high:g}]")
        self.default = {d.name: d.center for d in self.dimensions}
        searched = {d.name for d in self.dimensions}
        self.fixed = {key: value for key, value in self.params.items()
                      if key not in searched}

    def suggest(self, trial):
        return {d.name: d.suggest(trial) for d in self.dimensions}

    def candidate(self, trial_params):
        """The candidate of a finished trial's parameters."""
        return {d.name: d.value(trial_params[d.name])
                for d in self.dimensions}

    def parameters(self, candidate):
        """The curve's full parameters with ``candidate``."""
        return {**self.params, **{d.name: d.spelling(candidate[d.name])
                                  for d in self.dimensions}}

    def distance_to_default(self, candidate):
        """Sum over the parameters of |log10(value / default)|."""
        return sum(abs(math.log10(candidate[d.name] / d.center))
                   for d in self.dimensions)

    def selection(self, candidate):
        """A benchopt selection string for the curve with ``candidate``:
        every searched parameter, and every other parameter whose value is
        not the class's only default, so that it selects this curve
        alone."""
        defaults = list(product_param(self.solver_class.parameters))
        shown = [key for key, value in self.fixed.items()
                 if len({repr(d[key]) for d in defaults}) > 1
                 or repr(defaults[0][key]) != repr(value)]
        params = {**{key: self.fixed[key] for key in shown},
                  **{d.name: d.spelling(candidate[d.name])
                     for d in self.dimensions}}
        return f"{self.name}[" + ",".join(
            f"{key}={format_value(value)}"
            for key, value in params.items()) + "]"

    def check_declared(self, declared):
        """A ValueError naming what is wrong with the solver's declared
        ``tuning_space``: a name that is not a parameter of the solver or
        is a step, or bounds that are not positive and ordered."""
        parameters = set(self.params)
        for name, bounds in declared.items():
            if name not in parameters:
                raise ValueError(f"{self.name}'s tuning_space names "
                                 f"{name!r}, which is not one of its "
                                 "parameters")
            if name.startswith(STEP_SIZE_PREFIX):
                raise ValueError(f"{self.name}'s tuning_space names the step "
                                 f"{name!r}: steps are searched anyway")
            if not (len(bounds) == 2 and 0 < bounds[0] < bounds[1]):
                raise ValueError(f"{self.name}'s tuning_space gives {name} "
                                 f"the bounds {bounds!r}: (low, high) with "
                                 "0 < low < high")

    def describe(self):
        return [d.describe() for d in self.dimensions]


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
    (disqualified) when a point is marked diverged or failed (its solver
    raised, or an evaluation ran out of time), when the value,
    hypergrad_norm or time of a point is not finite, when the last value
    is above the first one, or when hypergrad_norm vanished (at most
    ``VANISHED_RATIO`` of its start: an exact 0 or an underflow).
    """
    if not budget > 0:
        raise ValueError(f"the budget must be positive, got {budget!r}")
    curve = pd.DataFrame(curve).sort_values("stop_val")
    if any(column in curve and curve[column].eq(True).any()
           for column in (DIVERGED_COLUMN, FAILED_COLUMN)):
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
    if norm[0] != 0 and norm.min() <= VANISHED_RATIO * abs(norm[0]):
        # A hypergradient that vanished (saturated hyper-cleaning weights
        # underflow it), not a stationary point: the report does not rank
        # such a curve either (benchmark_utils.plotting.budget).
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


def select_candidate(scored, space):
    """The candidate that the protocol picks among ``scored`` ([(candidate,
    score)], the candidates that ran the whole budget) for ``space``: the
    lowest score; among the candidates within TIE_TOLERANCE of it, the
    closest to the default (:meth:`SearchSpace.distance_to_default`), then
    the smallest values. When every candidate is disqualified (+inf), that
    is the one closest to the default."""
    if not scored:
        raise ValueError(f"no candidate of {space.name} to select from")
    best = min(score for _, score in scored)
    tied = [candidate for candidate, score in scored
            if score <= best + TIE_TOLERANCE]
    return min(tied, key=lambda candidate: (
        space.distance_to_default(candidate),
        [candidate[d.name] for d in space.dimensions]))


class PruningBudget(SolverTimeBudget):
    """The benchmark's stopping rule (the same solver-time budget and
    divergence rule as a benchopt run) that also reports a candidate's
    score to its Optuna ``trial`` at each rung (:data:`RUNGS`, percent of
    the budget) and ends the curve when the pruner says so. Set ``trial``
    (and ``protected``, for a candidate that is never stopped: the
    default) on the runner instance."""

    trial = None
    protected = False
    pruned = False

    def _should_stop(self, stop_val, objective_list):
        stop, status, next_stop_val = super()._should_stop(stop_val,
                                                           objective_list)
        if self.trial is None:
            return stop, status, next_stop_val
        time = objective_list[-1]["time"]
        for rung in RUNGS:
            rung_time = rung / 100 * self.solver_time_budget
            # A curve that ends before a rung (converged and stalled, or
            # at max-runs) holds its last value there, as in its score.
            if rung in self.reported or (time < rung_time and not stop):
                continue
            self.reported.add(rung)
            self.trial.report(curve_score(objective_list, rung_time), rung)
            if not (stop or self.protected) and self.trial.should_prune():
                self.pruned = True
                return True, "pruned", next_stop_val
        return stop, status, next_stop_val


def set_up_problem(benchmark, dataset_class, dataset_params, seed,
                   objective_params=None):
    """The benchmark's objective set up on an instance of the dataset, as
    ``benchopt run --seed SEED`` sets up its repetition 0: (objective,
    dataset). An unusable dataset is a ValueError with benchopt's skip
    reason."""
    objective = benchmark.get_benchmark_objective().get_instance(
        **(objective_params or {}))
    dataset = dataset_class.get_instance(**dataset_params)
    RunContext().set_run_context(objective, dataset, None, repetition=0,
                                 base_seed=seed)
    skip, reason = objective._set_dataset(dataset)
    if skip:
        raise ValueError(f"{dataset} cannot be tuned: {reason}")
    return objective, dataset


def run_curve(objective, dataset, solver_class, params, budget, max_runs,
              seed, trial=None, protected=False):
    """Run one curve in this process, as a sequential ``benchopt run`` runs
    it (benchopt's callback, the benchmark's stopping rule with its
    solver-time ``budget`` and ``max_runs`` evaluations), on the
    ``objective`` that :func:`set_up_problem` set up. Returns its rows; an
    Optuna ``trial`` gets its rung scores and may end it
    (:class:`optuna.TrialPruned`). A curve that its solver skips (a
    parameter out of range, a memory that would not fit) has no rows."""
    solver = solver_class.get_instance(**params)
    RunContext().set_run_context(objective, dataset, solver, repetition=0,
                                 base_seed=seed)
    skip, _ = solver._set_objective(objective)
    if skip:
        return []
    base = objective.stopping_criterion
    criterion = PruningBudget(
        strategy=base.strategy, key_to_monitor=base.key_to_monitor,
        minimize=base.minimize, **base.kwargs).get_runner_instance(
            max_runs=max_runs, timeout=budget, solver=solver)
    criterion.trial, criterion.protected = trial, protected
    criterion.reported = set()
    meta = dict(dataset_name=str(dataset), solver_name=str(solver),
                base_seed=seed, idx_rep=0)
    solver._warm_up()
    callback = _Callback(objective, solver, meta, criterion)
    callback.start()
    solver.run(callback)
    curve, _, _ = callback.get_results()
    if criterion.pruned:
        raise optuna.TrialPruned()
    return curve


def make_study(storage, name, seed):
    """The Optuna study of one curve: TPE from ``seed`` (the default's
    trial first, then N_STARTUP_TRIALS random ones), successive halving at
    :data:`RUNGS`, kept in ``storage`` (an SQLite URL) under ``name``; an
    existing study of that name is resumed."""
    return optuna.create_study(
        storage=storage, study_name=name, direction="minimize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=N_STARTUP_TRIALS, multivariate=True),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=RUNGS[0], reduction_factor=REDUCTION_FACTOR))


def tune_curve(study, space, run, n_trials):
    """Run the study to ``n_trials`` finished trials (complete or pruned):
    the default first, never stopped early, then the sampler's candidates.
    ``run(candidate, trial, protected)`` runs one and returns its score. A
    trial left running by an interrupted tuning is marked failed and does
    not count; the default runs again if it did not finish."""
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.state == optuna.trial.TrialState.RUNNING:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    if not any(trial.user_attrs.get("default") and trial.state in (
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.WAITING) for trial in trials):
        study.enqueue_trial(space.default, user_attrs={"default": True})
    finished = (optuna.trial.TrialState.COMPLETE,
                optuna.trial.TrialState.PRUNED)
    done = sum(trial.state in finished for trial in trials)
    while done < n_trials:
        trial = study.ask()
        candidate = space.suggest(trial)
        try:
            score = run(candidate, trial,
                        bool(trial.user_attrs.get("default")))
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, score)
        done += 1


def finished_candidates(study, space):
    """[(candidate, score, is_default)] of the study's trials that ran the
    whole budget."""
    return [(space.candidate(trial.params), trial.value,
             bool(trial.user_attrs.get("default")))
            for trial in study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
