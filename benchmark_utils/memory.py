"""The memory a solver's run uses: the result columns ``memory_state_bytes``
and ``memory_peak_bytes``, in bytes, measured outside the timed iterations.

- **State** (every device): the bytes of the distinct tensor storages that
  the solver keeps from one outer iteration to the next: ``x``, ``y``,
  ``v`` and every tensor reachable from its own attributes (a Krylov basis,
  variance-reduction tables, momentum buffers, the batch orders of its
  samplers), each storage counted once however many views share it. The
  problem's data, the oracles, the starting point ``(x0, y0)`` and
  benchopt's objects (its run context, the objective and its reference
  copy of the problem) are not the solver's. Taken at each evaluation
  point; the column is the largest so far.
- **Peak** on CUDA: the caching allocator's peak
  (``torch.cuda.max_memory_allocated``) during the solver's iterations,
  above what is allocated and not the solver's state at the curve's first
  evaluation point (the data, the reference copies of the metrics), minus
  what the untimed evaluations have left allocated since: the statistics
  are reset after each evaluation, so an evaluation's own work never
  counts. Allocations are rounded up by the allocator (512 bytes at
  least).
- **Peak** on the CPU: the state plus the largest excess of the bytes
  allocated over the bytes freed at any moment of one outer iteration,
  *replayed* at each evaluation point on a copy of the solver, under
  PyTorch's profiler with ``profile_memory`` (which records every
  allocation and release of the CPU allocator, with its size). The copy
  holds its own state and oracle counters, so the curve goes on exactly as
  if nothing had happened, and no profiler runs during a timed iteration.
  The column is the largest over the replayed iterations: those at the
  evaluation points (at most one per factor ``REPLAY_SPACING`` in
  iterations, which takes every regular evaluation point of a benchopt
  run), not every iteration (a method whose iterations differ, such as a
  periodic full pass, is measured on the ones sampled).
"""
import copy
import gc
import itertools
import math
import os
import types

import torch
from benchopt import BaseDataset, BaseObjective, BaseSolver
from benchopt.utils.run_context import RunContext
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

#: The result columns, in bytes.
COLUMNS = ("memory_state_bytes", "memory_peak_bytes")
#: The solver attributes that are not its state (set up by the base
#: class): the oracles hold the problem, x0 and y0 are the problem's own
#: tensors.
NOT_STATE = ("oracles", "x0", "y0", "_memory_meter")
#: Nor are benchopt's objects, which benchopt sets on the solver (its run
#: context, the objective with its reference copy of the problem).
BENCHOPT_TYPES = (BaseObjective, BaseDataset, BaseSolver, RunContext)
#: The name of the profiled range of a replayed iteration.
REPLAYED_ITERATION = "replayed outer iteration"
#: A point is replayed if its iteration number is at least this factor
#: times that of the last point replayed: benchopt's evaluation points
#: (0, 1, 2, 3, 4, 6, 9, 13, ..., at least a factor 4/3 apart) are all
#: replayed, and a caller measuring every iteration pays for a number of
#: replays that grows with the logarithm of the run's length.
REPLAY_SPACING = 1.2
#: Objects without tensors, not walked through.
_OPAQUE = (str, bytes, int, float, complex, bool, type(None), type,
           types.FunctionType, types.MethodType, types.BuiltinFunctionType,
           types.ModuleType, torch.dtype, torch.device, torch.Generator)


def no_memory():
    """The memory columns of a result with no solver run behind it (NaN:
    there is nothing to measure)."""
    return dict.fromkeys(COLUMNS, math.nan)


def storages(roots, skip=(), skip_types=()):
    """``{(device, address): bytes}`` of the distinct tensor storages
    reachable from ``roots`` through containers and object attributes,
    without going through the objects in ``skip`` or of ``skip_types``."""
    seen = {id(obj) for obj in skip}
    found = {}
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (*_OPAQUE, *skip_types)):
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            found[storage.device, storage.data_ptr()] = storage.nbytes()
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        else:
            stack.extend(getattr(obj, "__dict__", {}).values())
            stack.extend(getattr(obj, name) for cls in type(obj).__mro__
                         for name in getattr(cls, "__slots__", ())
                         if hasattr(obj, name))
    return found


def _not_state(solver):
    """The objects a solver holds that are not its state: those named in
    :data:`NOT_STATE`, the problem, and benchopt's objects."""
    held = [getattr(solver, name) for name in NOT_STATE
            if hasattr(solver, name)]
    if hasattr(solver, "oracles"):
        held.append(solver.oracles.problem)
    return held + [value for value in vars(solver).values()
                   if isinstance(value, BENCHOPT_TYPES)]


def state_storages(solver):
    """:func:`storages` of the solver's state (module docstring)."""
    return storages([vars(solver)], skip=[solver, *_not_state(solver)],
                    skip_types=BENCHOPT_TYPES)


def on_device(where, device):
    """Whether a storage on ``where`` lives on ``device`` (``cuda``, with
    no index, is the current CUDA device, where the problem's tensors
    are)."""
    return where.type == device.type and device.index in (None, where.index)


def replica(solver):
    """A copy of ``solver`` whose iterations leave the solver as it was: a
    deep copy of its state (views that shared a storage still do), its own
    oracle counters, the same problem and run context."""
    copied = object.__new__(type(solver))
    memo = {id(obj): obj for obj in _not_state(solver)}
    memo[id(solver)] = copied
    memo[id(solver.oracles)] = copy.copy(solver.oracles)
    copied.__dict__.update(copy.deepcopy(vars(solver), memo))
    return copied


def iteration_excess_bytes(solver):
    """The largest excess of the bytes allocated over the bytes freed,
    from the start of one outer iteration to any moment of it: the next
    iteration of ``solver``, replayed on a :func:`replica`, under PyTorch's
    profiler (CPU allocations)."""
    # Kineto, the profiler's back end, writes a line to stderr at every
    # start and stop of a profile unless told otherwise.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    # No garbage collection inside the profile: only the iteration's own
    # releases are recorded, whenever the collector would have run.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with profile(activities=[ProfilerActivity.CPU],
                     profile_memory=True) as profiler:
            # Copied under the profiler, so that the releases of the
            # copy's tensors during the iteration are recorded with their
            # sizes.
            copied = replica(solver)
            with record_function(REPLAYED_ITERATION):
                copied.x, copied.y, copied.v = copied.step(
                    copied.x, copied.y, copied.v)
    finally:
        if collecting:
            gc.enable()
    events = profiler.profiler.kineto_results.events()
    window = next(event for event in events
                  if event.name() == REPLAYED_ITERATION)
    start, end = window.start_ns(), window.start_ns() + window.duration_ns()
    changes = sorted(
        (event for event in events if event.name() == "[memory]"
         and event.device_type() == DeviceType.CPU
         and start <= event.start_ns() <= end),
        key=lambda event: event.start_ns())
    return max(itertools.accumulate((event.nbytes() for event in changes),
                                    initial=0))


class MemoryMeter:
    """The memory of one run of ``solver`` (module docstring): created at
    the start of the run; :meth:`measure` is called by the solver's
    ``get_result``, which benchopt calls at each evaluation point, after it
    has stopped the clock."""

    def __init__(self, solver):
        self.solver = solver
        self.device = solver.oracles.device
        self.on_cuda = self.device.type == "cuda"
        self.state_bytes = self.peak_bytes = 0
        # CPU: the outer iteration last replayed.
        self.replayed_at = None
        # CUDA: the bytes allocated that are not the solver's (set at the
        # first measurement), those the evaluations have left allocated
        # since, and the bytes allocated at the last measurement (None: no
        # measurement since the callback was entered).
        self.not_solver_bytes = None
        self.evaluation_bytes = 0
        self.measured_at = None

    def watch(self, callback):
        """On CUDA, the callback that resets the allocator's peak after
        each evaluation (so that it never counts), and counts what the
        evaluation left allocated; this runs with the clock going again,
        at the (log-spaced) evaluation points only. On the CPU, the
        callback unchanged."""
        if not self.on_cuda:
            return callback

        def measured_callback():
            self.measured_at = None
            keep_going = callback()
            if self.measured_at is not None:
                self.evaluation_bytes += (torch.cuda.memory_allocated(
                    self.device) - self.measured_at)
                torch.cuda.reset_peak_memory_stats(self.device)
            return keep_going

        return measured_callback

    def measure(self):
        """The memory columns at this point of the run (the largest values
        so far)."""
        state = state_storages(self.solver)
        state_total = sum(state.values())
        self.state_bytes = max(self.state_bytes, state_total)
        peak = (self._allocator_peak(state) if self.on_cuda
                else self._replayed_peak(state_total))
        return dict(memory_state_bytes=float(self.state_bytes),
                    memory_peak_bytes=float(peak))

    def _allocator_peak(self, state):
        """CUDA: the allocator's peak since the last evaluation, less what
        is not the solver's; the largest so far."""
        allocated = torch.cuda.memory_allocated(self.device)
        if self.not_solver_bytes is None:
            # The first evaluation point: what is allocated then and not
            # held by the solver is not its own. The peak is counted from
            # here (set-up, and a previous run's state still held while
            # this one's is built, do not count).
            self.not_solver_bytes = allocated - sum(
                n_bytes for (where, _), n_bytes in state.items()
                if on_device(where, self.device))
            torch.cuda.reset_peak_memory_stats(self.device)
        self.peak_bytes = max(self.peak_bytes, (
            torch.cuda.max_memory_allocated(self.device)
            - self.not_solver_bytes - self.evaluation_bytes))
        self.measured_at = allocated
        return self.peak_bytes

    def _replayed_peak(self, state_total):
        """CPU: the state plus the largest excess of the next iteration,
        replayed (at most once per factor REPLAY_SPACING in iterations);
        the largest so far."""
        n_outer = self.solver.n_outer
        if self.replayed_at is None or (
                n_outer != self.replayed_at
                and n_outer >= REPLAY_SPACING * self.replayed_at):
            try:
                excess = iteration_excess_bytes(self.solver)
            except Exception:
                # The replay is a measurement: if it fails (no memory left
                # for the copy, or an iteration that raises, which the run
                # meets next), this point's peak is unknown, and the run
                # goes on.
                return math.nan
            self.replayed_at = n_outer
            self.peak_bytes = max(self.peak_bytes, state_total + excess)
        # Between replays, the state held now is a lower bound.
        self.peak_bytes = max(self.peak_bytes, state_total)
        return self.peak_bytes
