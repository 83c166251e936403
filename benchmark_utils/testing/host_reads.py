"""Reads of device values by the host, counted where they happen.

On a GPU, kernels are queued and run asynchronously; a read of a value
that lives on the device (``item()``, ``float(t)``, ``int(t)``,
``bool(t)``, a Python branch on a tensor, ``tolist()``) makes the host
wait until the queue has run up to it, and so do the operations whose
output size depends on the data (``nonzero``, boolean-mask indexing,
``masked_select``, ``unique``, ``repeat_interleave`` without its output
size) and ``torch.equal``. Each is a stall of the queue, the one place
where a GPU run waits for the host's Python. :class:`HostReads` counts
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
them stalls nothing.

Each read is recorded with its site: the innermost function of the
benchmark's own code (``benchmark_utils/``, ``solvers/``, ``objective.py``)
that made it, as ``path:qualified name``.
"""
import sys
import weakref
from collections import Counter
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


def _reads_device(func, args, kwargs):
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
        if path.is_relative_to(ROOT) and not any(
                path.is_relative_to(skipped) for skipped in NOT_SITES):
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
        if _reads_device(func, args, kwargs) and not (
                inputs and all(map(self._on_host, inputs))):
            self.reads[read_site()] += 1
        output = func(*args, **kwargs)
        generator = kwargs.get("generator")
        host_draw = (generator is not None
                     and generator.device.type == "cpu")
        if host_draw or (inputs and all(map(self._on_host, inputs))):
            for leaf in tree_leaves(output):
                if isinstance(leaf, torch.Tensor):
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


class ReadsPerIteration:
    """A solver's callback that lets ``warmup`` outer iterations run, then
    counts the host reads of each of the next ``n_iterations`` ones:
    ``per_iteration`` is a list of ``Counter`` of read sites, one per
    iteration."""

    def __init__(self, warmup, n_iterations):
        self.warmup, self.n_iterations = warmup, n_iterations
        self.counter, self.calls = HostReads(), 0
        self.per_iteration = []

    def __call__(self):
        counted = self.calls - self.warmup
        if counted == 0:
            self.counter.__enter__()
        elif counted > 0:
            self.per_iteration.append(Counter(self.counter.reads))
            self.counter.clear()
            if counted == self.n_iterations:
                self.counter.__exit__(None, None, None)
        self.calls += 1
        return self.calls <= self.warmup + self.n_iterations


def solver_reads(solver, warmup, n_iterations):
    """The host reads of each of ``n_iterations`` outer iterations of a
    set-up ``solver``, after ``warmup`` ones, run through ``solver.run``:
    a list of ``Counter`` of read sites."""
    callback = ReadsPerIteration(warmup, n_iterations)
    solver.run(callback)
    return callback.per_iteration
