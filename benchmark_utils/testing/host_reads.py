"""Reads of device values by the host, counted where they happen.

On a GPU, kernels are queued and run asynchronously; a read of a value
that lives on the device (``item()``, ``float(t)``, ``int(t)``,
``bool(t)``, a Python branch on a tensor, ``tolist()``) makes the host
wait until the queue has run up to it, and so do the operations whose
output size depends on the data (``nonzero``, boolean-mask indexing,
``masked_select``, ``unique``, ``repeat_interleave`` without its output
size) and ``torch.equal``, and a blocking copy between the host and the
device. Each is a stall of the queue, the one place where a GPU run waits
for the host's Python. :class:`HostReads` counts
them on any device, the CPU included, so that a test can bound them
before a GPU is there: a ``TorchDispatchMode`` sees every aten operation
(the scalar reads all pass through ``aten._local_scalar_dense``), and
``Tensor.tolist``, which reads without the dispatcher, is wrapped while it
is active.

A value drawn on the host on purpose is not a read: a tensor that a CPU
``torch.Generator`` made (a random truncation length, a permutation of
sample indices), and any tensor computed from such tensors only, is
followed through the operations and its reads are left out. On a GPU
those tensors live on the host (they are created with ``device="cpu"``
written out, which ``tests/test_device_placement.py`` checks), so reading
them stalls nothing. (On the CPU, moving such a tensor to the problem's
device returns it as it is: a draw moved to a GPU and read back there
alone would be a read that a count on the CPU misses. The benchmark reads
none: its draws are read on the host before they move, or meet the
problem's data.)

Each read is recorded with its site: the innermost function of the
benchmark's own code (``benchmark_utils/``, ``solvers/``, ``objective.py``)
that made it, as ``path:qualified name``.
"""
import sys
import weakref
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

#: The benchmark's folder: read sites are named relative to it.
ROOT = Path(__file__).resolve().parents[2]
#: Code that is not the benchmark's own: its frames are skipped when a
#: read's site is looked for.
NOT_SITES = (ROOT / "benchmark_utils" / "testing", ROOT / "tests",
             ROOT / "scripts")

aten = torch.ops.aten
#: Operations that return a host value (the scalar of item, float, int,
#: bool and of a data-dependent branch) or whose output shape depends on
#: the data, so that the host must wait for the device.
READING_OPS = {
    aten._local_scalar_dense.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten.equal.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
}
#: Operations that read the device only in one form: boolean-mask
#: indexing (a ``nonzero`` inside), and ``repeat_interleave`` of a tensor
#: of repeats without ``output_size``.
INDEXING_OPS = {aten.index.Tensor, aten.index_put.default,
                aten.index_put_.default}


def _is_mask(value):
    return isinstance(value, torch.Tensor) and value.dtype in (torch.bool,
                                                               torch.uint8)


def _is_blocking_transfer(func, args, kwargs):
    """A copy between the host and another device without
    ``non_blocking=True``: PyTorch waits for the device's queue after it (a
    copy to the device from the host's pageable memory is staged at once
    with ``non_blocking=True``, and waits for nothing)."""
    if func is aten._to_copy.default:
        source, target = args[0].device, kwargs.get("device")
    elif func is aten.copy_.default:
        target, source = args[0].device, args[1].device
    else:
        return False
    if target is None or (source.type == "cpu") == (target.type == "cpu"):
        return False
    non_blocking = (args[2] if func is aten.copy_.default and len(args) > 2
                    else kwargs.get("non_blocking", False))
    return not non_blocking


def _reads_value(func, args, kwargs):
    if func in READING_OPS:
        return True
    if func in INDEXING_OPS:
        return any(_is_mask(index) for index in args[1] if index is not None)
    if func is aten.repeat_interleave.Tensor or (
            func is aten.repeat_interleave.self_Tensor):
        return kwargs.get("output_size") is None
    return False


def read_site():
    """``path:qualified name`` of the innermost frame of the benchmark's
    own code on the current stack (``'?'`` if none)."""
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        # Installed packages are never the benchmark's own code, even in a
        # virtual environment inside the benchmark's folder (.venv).
        if path.is_relative_to(ROOT) and "site-packages" not in path.parts \
                and not any(path.is_relative_to(skipped)
                            for skipped in NOT_SITES):
            return (f"{path.relative_to(ROOT).as_posix()}:"
                    f"{frame.f_code.co_qualname}")
        frame = frame.f_back
    return "?"


class HostReads(TorchDispatchMode):
    """Count the host reads of device values while active.

    ``reads`` is a ``Counter`` of read sites (:func:`read_site`); ``total``
    their number. Reads of tensors made on the host on purpose (see the
    module's docstring) are not counted.
    """

    def __init__(self):
        super().__init__()
        self.reads = Counter()
        # id -> weak reference of each tensor made on the host (a WeakSet
        # would compare tensors with ==).
        self._host_made = {}
        self._tolist = None

    @property
    def total(self):
        return sum(self.reads.values())

    def clear(self):
        self.reads.clear()

    def _on_host(self, tensor):
        reference = self._host_made.get(id(tensor))
        return reference is not None and reference() is tensor

    def _mark_on_host(self, tensor):
        key = id(tensor)
        self._host_made[key] = weakref.ref(
            tensor, lambda _: self._host_made.pop(key, None))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = [leaf for leaf in tree_leaves((args, kwargs))
                  if isinstance(leaf, torch.Tensor)]
        from_host = bool(inputs) and all(map(self._on_host, inputs))
        if _is_blocking_transfer(func, args, kwargs) or (
                _reads_value(func, args, kwargs) and not from_host):
            self.reads[read_site()] += 1
        output = func(*args, **kwargs)
        generator = kwargs.get("generator")
        if from_host or (generator is not None
                         and generator.device.type == "cpu"):
            for leaf in tree_leaves(output):
                if isinstance(leaf, torch.Tensor) and leaf.device.type == (
                        "cpu"):
                    self._mark_on_host(leaf)
        return output

    def __enter__(self):
        tolist = self._tolist = torch.Tensor.tolist
        counter = self

        def counted_tolist(tensor):
            if not counter._on_host(tensor):
                counter.reads[read_site()] += 1
            return tolist(tensor)

        torch.Tensor.tolist = counted_tolist
        return super().__enter__()

    def __exit__(self, *exc):
        torch.Tensor.tolist = self._tolist
        return super().__exit__(*exc)


@dataclass(frozen=True)
class SolverReads:
    """What a solver reads back per outer iteration at its steady state,
    on a problem without sparse data, the same in full batch and on
    minibatches: ``fixed`` reads, plus ``per_hvp`` per HVP and
    ``per_inner_gradient`` per gradient of g that the iteration spends
    (for a method whose solves stop at a tolerance), all at ``sites``
    (:func:`read_site`) and for ``purpose``."""
    fixed: int = 0
    per_hvp: int = 0
    per_inner_gradient: int = 0
    sites: tuple = ()
    purpose: str = ""
    #: False for a solver without a minibatch version.
    minibatch: bool = True

    def expected(self, n_hvp, n_inner_gradients):
        """The reads of an iteration that spent ``n_hvp`` HVPs and
        ``n_inner_gradients`` gradients of g."""
        return (self.fixed + self.per_hvp * n_hvp
                + self.per_inner_gradient * n_inner_gradients)

    def describe(self):
        """The count in words, for docs/solvers.md."""
        terms = [f"{self.fixed}"] if self.fixed or not (
            self.per_hvp or self.per_inner_gradient) else []
        terms += [f"{count} per {unit}" for count, unit in (
            (self.per_hvp, "HVP"),
            (self.per_inner_gradient, "gradient of `g`")) if count]
        return " + ".join(terms)


#: The reads of every solver that reads anything back (the others read
#: nothing: ``SolverReads()``); docs/solvers.md's table is generated from
#: it (``scripts/make_docs.py``), and ``tests/test_host_reads.py`` measures
#: every solver against it.
SOLVER_READS = {
    "LancBiO": SolverReads(
        fixed=1, sites=("benchmark_utils/linalg/krylov.py:"
                        "LanczosProcess.extend",),
        purpose="`β_{j+1}`, the new pivot of `T_j = L D Lᵀ` and the new "
        "vector's overlap with the basis, in one read: whether the Lanczos "
        "process stops and restarts (after a restart, the norm of the new "
        "start comes back with them)"),
    "AID-exact": SolverReads(
        per_hvp=1, per_inner_gradient=3, minibatch=False,
        sites=("benchmark_utils/linalg/krylov.py:conjugate_gradient",
               "benchmark_utils/linalg/inner_loops.py:newton_cg"),
        purpose="the stopping tests of its solves: conjugate gradient's "
        "residual norm before each product and after the last (`‖b‖` "
        "with the first); per Newton step (one gradient of `g` each), the "
        "gradient's norm, its conjugate gradient's first test, and in one "
        "read the values that accept the step and stop the method (`g` at "
        "`y` and at the full step, the slope, the norms of the step and of "
        "the new `y`)"),
    **{name: SolverReads(purpose=(
        "none: its truncation lengths are drawn on the host, from a CPU "
        "generator")) for name in ("BSA", "SUSTAIN", "TTSA")},
}


def solver_reads_spec(name):
    """:data:`SOLVER_READS` of solver ``name`` (nothing for most)."""
    return SOLVER_READS.get(name, SolverReads())


@dataclass
class IterationReads:
    """The host reads of one outer iteration, by site, and the HVPs and
    gradients of g it spent (in full-batch passes)."""
    reads: Counter
    n_hvp: float
    n_inner_gradients: float

    @property
    def total(self):
        return sum(self.reads.values())


class ReadsPerIteration:
    """A solver's callback that lets ``warmup`` outer iterations run, then
    counts the host reads of each of the next ``n_iterations`` ones, and
    what each spent of ``oracles``: ``per_iteration``, a list of
    :class:`IterationReads`."""

    def __init__(self, oracles, warmup, n_iterations):
        self.oracles = oracles
        self.warmup, self.n_iterations = warmup, n_iterations
        self.counter, self.calls = HostReads(), 0
        self.per_iteration = []
        self._spent, self._active = None, False

    def _spent_so_far(self):
        # Gradients of g alone: n_grad also counts those of f.
        return (self.oracles.n_hvp, self.oracles._inner_grad_samples
                / self.oracles._n_inner)

    def __call__(self):
        counted = self.calls - self.warmup
        if counted > 0:
            self.close()
            (hvp, inner), (hvp_before, inner_before) = (
                self._spent_so_far(), self._spent)
            self.per_iteration.append(IterationReads(
                Counter(self.counter.reads), hvp - hvp_before,
                inner - inner_before))
            self.counter.clear()
        self.calls += 1
        if not 0 <= counted < self.n_iterations:
            return counted < 0
        self._spent = self._spent_so_far()
        self.counter.__enter__()
        self._active = True
        return True

    def close(self):
        """Stop counting (also when the run ended with an error)."""
        if self._active:
            self.counter.__exit__(None, None, None)
            self._active = False


def solver_reads(solver, warmup, n_iterations):
    """The host reads of each of ``n_iterations`` outer iterations of a
    set-up ``solver``, after ``warmup`` ones, run through ``solver.run``:
    a list of :class:`IterationReads`."""
    callback = ReadsPerIteration(solver.oracles, warmup, n_iterations)
    try:
        solver.run(callback)
    finally:
        callback.close()
    return callback.per_iteration
