"""What every bilevel solver shares: its loop, its result, its step sizes.

A solver file subclasses :class:`BilevelSolver` and writes its parameters,
their checks and the algorithm's own lines: :meth:`BilevelSolver.step`, one
outer iteration from ``(x_k, y_k, v_k)`` to ``(x_{k+1}, y_{k+1}, v_{k+1})``,
which reads like the loop body of the method's paper, and, for a method
with more state (a Krylov basis, a random generator),
:meth:`BilevelSolver.init_state`.
"""
import hashlib
from pathlib import Path

import torch
from benchopt import BaseSolver

from benchmark_utils.curve_status import (failure_message, report_failure,
                                          traceback_text)
from benchmark_utils.device import synchronize, synchronized
from benchmark_utils.linalg.krylov import largest_eigenvalue
from benchmark_utils.run_output import interrupt_message, run_output_folder
from benchmark_utils.memory import MemoryMeter
from benchmark_utils.sampling import FULL_BATCH, MinibatchStreams
from benchmark_utils.tuned_parameters import (STEP_SIZE_PREFIX, TUNED,
                                              TUNED_CONFIGS, tuned_value)
from benchmark_utils.validation import ParameterError, check_positive

#: Safety margin on the power-iteration estimate of the inner Lipschitz
#: constant: the estimate is a lower bound.
LIPSCHITZ_MARGIN = 1.1
#: Seed of the power iteration's start vector: the same step on every run.
POWER_ITERATION_SEED = 0
#: The step-size parameters every solver names the same way, and the
#: attribute that holds each one resolved to a number: the step on y (the
#: lower level), on v (the linear system A v = b) and on x (the upper level).
STEP_SIZES = {
    "step_size_inner": "inner_step",
    "step_size_linsys": "linsys_step",
    "step_size_outer": "outer_step",
}

#: The shared code that every solver runs (this folder).
SHARED_CODE = Path(__file__).resolve().parent


def files_digest(folder, pattern):
    """SHA-256 of the relative names and the contents of the files of
    ``folder`` (recursively) that match ``pattern``."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob(pattern)):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class BilevelSolver(BaseSolver):
    """Base class of the benchmark's solvers.

    It owns the run: counters reset, the device synchronised before each
    timing point, the iterates started at ``(x0, y0, v0)`` and the outer
    iterations counted. For a method that carries ``v`` from one iteration
    to the next (``warm_starts_v``), ``v0`` is the objective's: zero, or the
    same random draw for every curve of a repetition (its ``v_start``, the
    LancBiO authors' starts); for the others, None until the
    first iteration computes one (or always None, for a method without
    ``v``).
    ``get_result`` returns the current ``x``, ``y``, ``v``, the oracle counts,
    the number of outer iterations done, the memory used so far
    (:mod:`benchmark_utils.memory`), whether the run failed and the step
    sizes resolved at set-up (``steps``: the results record them).

    **A solver that raises keeps what it measured.** An exception in
    :meth:`init_state` or :meth:`step` ends the curve there: the console
    says so, the traceback goes to the curve's output folder
    (:mod:`benchmark_utils.curve_status`), and one last point is evaluated
    at the last iterate, marked in ``objective_failed``; the points before
    it are written as usual and the other curves run on.

    The step sizes named in :data:`STEP_SIZES` are resolved once, at set-up,
    into ``inner_step``, ``linsys_step`` and ``outer_step`` (see
    :meth:`step_size`).

    A solver with a ``batch_size`` parameter draws its minibatches from
    :meth:`inner_batch` (for the gradients of g), :meth:`outer_batch` (for
    the gradient of f) and :meth:`second_order_batch` (for HVPs and cross
    products): three independent streams of shuffled epochs
    (:class:`benchmark_utils.sampling.MinibatchStreams`), seeded from
    benchopt's seed and the repetition and restarted at each run, so a run
    repeats its draws. With ``batch_size='full'`` every batch is None, the
    full data: the deterministic method, call for call.
    """

    sampling_strategy = "callback"
    warm_starts_v = True
    #: True for a method that keeps a memory per batch: its streams cut
    #: their samples into batches once (``MinibatchStreams``).
    fixed_batches = False

    def _get_state(self):
        """What benchopt's result cache keys a curve on besides the
        solver's file and parameters (it pickles the solver to key it): the
        digest of the shared code in ``benchmark_utils/``, and, when a step
        is 'tuned', of the tuned configs. Without it, a curve cached before
        a change to the shared code, or before the steps were tuned again,
        would be served after it with the old code or the old steps."""
        state = {"shared_code": files_digest(SHARED_CODE, "*.py")}
        if TUNED in self._parameters.values():
            state["tuned_configs"] = files_digest(TUNED_CONFIGS, "*.yml")
        return state

    def __setstate__(self, state):
        """The state only keys the cache: a solver rebuilt from its
        parameters (benchopt's pickling) has nothing more to restore."""

    def skip(self, oracles, x0, y0, v0=None):
        # A parameter out of range, or a memory that would not fit (SABA),
        # is this curve's skip reason: benchopt prints it without a
        # traceback and goes on with the other curves. set_objective, which
        # benchopt calls next with the same oracles, keeps the Lipschitz
        # estimate made here.
        try:
            self.set_objective(oracles, x0, y0, v0)
        except (ParameterError, MemoryError) as error:
            return True, str(error)
        return False, None

    def set_objective(self, oracles, x0, y0, v0=None):
        # The power-iteration estimate of L depends only on the problem and
        # its start: kept when the same curve is set up again (skip, then
        # set_objective, on one get_objective's oracles).
        if not (oracles is getattr(self, "oracles", None)
                and x0 is getattr(self, "x0", None)
                and y0 is getattr(self, "y0", None)):
            self._inner_lipschitz = None
        self.oracles = oracles
        self.x0, self.y0, self.v0 = x0, y0, v0
        # A parameter of the tuning space given as 'tuned' takes its tuned
        # value (the step sizes resolve theirs in step_size, below).
        for name, value in self._parameters.items():
            if value == TUNED and not name.startswith(STEP_SIZE_PREFIX):
                setattr(self, name, self.tuned(name))
        self.steps_used = {}
        for parameter, attribute in STEP_SIZES.items():
            if parameter in self._parameters:
                setattr(self, attribute,
                        self.step_size(parameter, getattr(self, parameter)))
        self.check_parameters()
        if "batch_size" in self._parameters:
            # Full batch draws nothing: no seed, so that it also runs
            # outside a benchopt run (scripts, tests).
            self._batch_seed = 0 if self.batch_size == FULL_BATCH else (
                self.get_seed(use_repetition=True))
            # Built here too, so that a bad batch size fails at set-up.
            self.restart_batches()
        self.x, self.y, self.v = x0.clone(), y0.clone(), None
        self.n_outer = 0
        self.failure = None

    def check_parameters(self):
        """Validate the solver's other parameters (a clear error for bad
        input) and resolve them."""

    def init_state(self):
        """Set up the method's own state before its first iteration."""

    def step(self, x, y, v):
        """One outer iteration: return ``(x, y, v)`` after it."""
        raise NotImplementedError

    def run(self, callback):
        self.oracles.reset()
        self._memory_meter = MemoryMeter(self)
        timed_callback = self._memory_meter.watch(
            synchronized(callback, self.oracles.device))
        self.x, self.y = self.x0.clone(), self.y0.clone()
        self.v = None
        if self.warm_starts_v:
            self.v = (torch.zeros_like(self.y) if self.v0 is None
                      else self.v0.clone())
        self.n_outer, self.failure = 0, None
        if "batch_size" in self._parameters:
            self.restart_batches()
        try:
            self.iterate(callback, timed_callback)
        except KeyboardInterrupt:
            print(interrupt_message(self), flush=True)
            raise

    def iterate(self, callback, timed_callback):
        """The outer iterations, from the state's set-up, while
        ``timed_callback`` says go on; a failure ends them
        (:meth:`end_on_failure`)."""
        try:
            self.init_state()
        except Exception as error:
            return self.end_on_failure(callback, error,
                                       "while setting up (init_state)")
        while timed_callback():
            try:
                self.x, self.y, self.v = self.step(self.x, self.y, self.v)
            except Exception as error:
                return self.end_on_failure(
                    callback, error, f"at outer iteration {self.n_outer + 1}")
            self.n_outer += 1

    def end_on_failure(self, callback, error, where):
        """End the curve at the exception ``error`` raised ``where``: report
        it, then have ``callback`` evaluate the last iterate now (benchopt's
        callback evaluates only at its log-spaced iterations), where the
        objective marks the point failed and the stopping rule ends the
        curve. An exception of the callback itself (an evaluation) is not
        the solver's: it propagates."""
        # The failed step's unfinished work is charged to nothing.
        synchronize(self.oracles.device)
        self.failure = failure_message(error)
        report_failure(self, self.failure, where, traceback_text(error),
                       run_output_folder(self))
        log_now = getattr(callback, "log_value", None)
        if log_now is None:
            callback()
        else:
            log_now()

    def restart_batches(self):
        """The batch streams from their seed: every run draws the same."""
        self.batches = MinibatchStreams(self.oracles.problem,
                                        self.batch_size, self._batch_seed,
                                        self.fixed_batches)

    def inner_batch(self):
        """The next batch of training samples for a gradient of g (None in
        full batch)."""
        return self.batches.inner.next_batch()

    def outer_batch(self):
        """The next batch of validation samples for a gradient of f."""
        return self.batches.outer.next_batch()

    def second_order_batch(self):
        """The next batch of training samples for HVPs and cross
        products."""
        return self.batches.second_order.next_batch()

    def decayed(self, step, exponent):
        """``step * (k + 1) ** -exponent`` at outer iteration k: the
        decaying step sizes of the stochastic methods' analyses (exponent
        0: constant)."""
        return step * (self.n_outer + 1) ** -exponent

    def decayed_momentum(self, momentum, exponent):
        """``1 - (1 - momentum) (k + 1) ** -exponent`` at outer iteration k:
        a STORM momentum whose complement decays, as in the analyses of
        MRBO, SUSTAIN and FSLA, so that the weight of the past tends to 1
        (exponent 0: constant)."""
        return 1 - self.decayed(1 - momentum, exponent)

    def get_result(self):
        # benchopt calls it with the clock stopped: the memory is measured
        # here (benchmark_utils.memory).
        return dict(x=self.x, y=self.y, v=self.v,
                    counts=self.oracles.counts(), n_outer=self.n_outer,
                    memory=self._memory_meter.measure(),
                    failed=self.failure is not None,
                    steps=dict(self.steps_used))

    def step_size(self, name, value):
        """A step size parameter, in the units of the variable it moves.

        On y and v: a positive number, or 'auto' for 1 / L with L the
        largest eigenvalue of d2_yy g at the starting point, estimated by
        power iteration at set-up (outside the timed run). On x
        (``step_size_outer``): a positive number, in units of the problem's
        ``outer_step_unit`` (see :meth:`on_x`). Any of them: 'tuned', for
        the value that the tuning protocol chose for this solver on the
        run's dataset (:meth:`tuned`). The value, resolved, in the
        parameter's units, is recorded in ``steps_used``: the results show
        the steps a curve ran with."""
        if value == TUNED:
            value = self.tuned(name)
        if value == "auto" and name != "step_size_outer":
            lipschitz = self.inner_lipschitz()
            if not lipschitz > 0:
                raise ParameterError(
                    f"{name}='auto' is 1 / (1.1 L) with L the largest "
                    "eigenvalue of d2_yy g in magnitude at the start, which "
                    f"is {lipschitz:.3g} on the {self.oracles.problem.name} "
                    f"problem: give {name} a number > 0.")
            value = 1.0 / (LIPSCHITZ_MARGIN * lipschitz)
        check_positive(name, value)
        self.steps_used[name] = float(value)
        if name == "step_size_outer":
            return self.on_x(float(value))
        return float(value)

    def tuned(self, name):
        """The value that the tuning protocol chose for the parameter
        ``name`` of this curve on the run's dataset
        (:func:`benchmark_utils.tuned_parameters.tuned_value`)."""
        context = self._run_context
        return tuned_value(self, name, None if context is None
                           else context.dataset_name)

    def on_x(self, step):
        """A step that moves x, in the problem's ``outer_step_unit`` (1 but
        for hyper-cleaning, where it is n_train / 10: each sample weight
        moves g by 1 / n_train, and an outer step of 1 then gives the
        LancBiO paper's 500 for 5,000 training samples)."""
        return step * self.oracles.problem.outer_step_unit

    def inner_lipschitz(self):
        """Largest eigenvalue of d2_yy g at the starting point, by 30 power
        iterations, computed once per set-up; in magnitude, so that on a
        lower level that is not convex, whose Hessian can have its largest
        eigenvalue in magnitude negative, it is the Lipschitz constant of
        d_y g there too.

        Power iteration starts from a fixed random vector: a structured one
        can be orthogonal to the top eigenvector (a constant vector shifts
        every logit of a sample equally, which a cross-entropy does not
        see, so it only finds the ridge's curvature)."""
        if self._inner_lipschitz is None:
            generator = torch.Generator().manual_seed(POWER_ITERATION_SEED)
            start = torch.randn(self.y0.shape, generator=generator,
                                dtype=self.y0.dtype, device="cpu").to(
                                    self.y0.device)
            self._inner_lipschitz = abs(largest_eigenvalue(
                lambda u: self.oracles.hvp(self.x0, self.y0, u), start))
        return self._inner_lipschitz
