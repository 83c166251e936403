"""Seeded minibatches of sample indices, one sampler for every stochastic
solver (design.md, section 6).

Batches come in shuffled epochs without replacement: each epoch is a new
permutation of the n samples cut into batches of B, so every sample is
drawn exactly once per epoch. When B does not divide n, the epoch's last
batch holds the n mod B samples left: it is kept (not dropped, which would
leave samples out, nor padded, which would draw some twice), and it needs
no correction, because the oracles count a call on B samples as B / n full
passes: the smaller batch counts less, one epoch counts exactly one pass,
and the mean of the epoch's batch values, each weighted by B / n, is the
full-batch value.

A solver draws its batches from :class:`MinibatchStreams`, three
independent streams from one seed: drawing more batches from one (a longer
inner loop) leaves the batches of the others as they were.

**Fixed batches.** Methods that keep a memory of each batch's last
gradient (SAGA-style variance reduction: SABA) need batches that come
back: with ``fixed_batches=True`` the samples are cut once, by a seeded
permutation, into ``ceil(n / B)`` batches, and each epoch visits them in a
new random order; every sample is still drawn once per epoch, and
``batch_index`` names the batch last drawn.
"""
import numpy as np
import torch

from benchmark_utils.validation import (ParameterError, check_batch_size,
                                        check_int)

#: The ``batch_size`` of the full-batch path: every batch is None.
FULL_BATCH = "full"


class EpochSampler:
    """Batches of the indices ``0 .. n_samples - 1`` in shuffled epochs.

    Parameters
    ----------
    n_samples : int
        The number of samples.
    batch_size : int or 'full'
        Samples per batch, in ``[1, n_samples]``; 'full' gives None (the
        full data) at every draw.
    seed : int
        Seed of the permutations, drawn on the CPU so that the same seed
        gives the same batches on every device.
    device : torch.device
        Where the index tensors live (the problem's device).
    samples : str
        What the samples are, for the error message ("training samples of
        the hyper-cleaning problem").
    fixed_batches : bool
        Cut the samples into batches once and visit those in a new order
        at each epoch (see the module's docstring).
    """

    def __init__(self, n_samples, batch_size, seed, device,
                 samples="samples", fixed_batches=False):
        check_batch_size("batch_size", batch_size, n_samples, samples)
        self.n_samples, self.batch_size = n_samples, batch_size
        self.full_batch = batch_size == FULL_BATCH
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self._order = None
        self._position = n_samples   # the first draw starts an epoch
        self.batches = None
        if fixed_batches and not self.full_batch:
            order = torch.randperm(n_samples, generator=self.generator,
                                   device="cpu")
            self.batches = [batch.to(device) for batch in order.split(
                batch_size)]
        self.batch_index = None

    @property
    def n_batches(self):
        """Batches per epoch: ceil(n / B) (1 for 'full')."""
        return 1 if self.full_batch else -(-self.n_samples
                                           // self.batch_size)

    def next_batch(self):
        """The next batch: a 1-D int64 tensor of sample indices on the
        device (None for 'full')."""
        if self.full_batch:
            self.batch_index = 0
            return None
        if self.batches is not None:
            return self._next_fixed_batch()
        if self._position >= self.n_samples:
            # Drawn on the host; copied without blocking: a blocking copy
            # to a GPU waits for the work queued on it (from the host's
            # pageable memory, a non-blocking copy is staged at once).
            self._order = torch.randperm(
                self.n_samples, generator=self.generator, device="cpu").to(
                    self.device, non_blocking=True)
            self._position = 0
        batch = self._order[self._position:self._position + self.batch_size]
        self._position += self.batch_size
        return batch

    def _next_fixed_batch(self):
        if self._position >= len(self.batches):
            self._order = torch.randperm(len(self.batches),
                                         generator=self.generator,
                                         device="cpu").tolist()
            self._position = 0
        self.batch_index = self._order[self._position]
        self._position += 1
        return self.batches[self.batch_index]


class MinibatchStreams:
    """The three batch streams of a stochastic solver on ``problem``:
    ``inner`` (training samples, for the gradients of g), ``outer``
    (validation samples, for the gradient of f) and ``second_order``
    (training samples, for HVPs and cross products), each an
    :class:`EpochSampler` with its own generator.

    Parameters
    ----------
    problem : BilevelProblem
        The problem (its numbers of samples and its device).
    batch_size : int or 'full'
        Samples per batch of every stream; 'full' is the full-batch path,
        and the only choice on a problem without samples.
    seed : int
        The solver's seed (benchopt's, with the repetition:
        ``self.get_seed(use_repetition=True)`` in ``set_objective``); the
        streams' seeds are spawned from it by numpy's ``SeedSequence``,
        whose children are independent streams by construction.
    fixed_batches : bool
        Every stream cuts its samples into batches once
        (:class:`EpochSampler`).
    """

    def __init__(self, problem, batch_size, seed, fixed_batches=False):
        check_int("seed", seed, 0)
        full_batch = isinstance(batch_size, str) and batch_size == FULL_BATCH
        if problem.n_inner_samples is None and not full_batch:
            raise ParameterError(
                f"batch_size must be 'full' on the {problem.name} problem, "
                f"which has no samples, got {batch_size!r}.")
        inner_seed, outer_seed, second_order_seed = (
            int(child.generate_state(1, dtype=np.uint64)[0])
            for child in np.random.SeedSequence(seed).spawn(3))
        training = f"training samples of the {problem.name} problem"
        validation = f"validation samples of the {problem.name} problem"
        self.inner = EpochSampler(problem.n_inner_samples, batch_size,
                                  inner_seed, problem.device, training,
                                  fixed_batches)
        self.outer = EpochSampler(problem.n_outer_samples, batch_size,
                                  outer_seed, problem.device, validation,
                                  fixed_batches)
        self.second_order = EpochSampler(
            problem.n_inner_samples, batch_size, second_order_seed,
            problem.device, training, fixed_batches)
