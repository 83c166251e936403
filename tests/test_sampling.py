"""The minibatch sampler: shuffled epochs without replacement, the last
partial batch, independent seeded streams, the full-batch path and the
errors for bad batch sizes."""
import pytest
import torch
from conftest import small_hypercleaning_problem

from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.synthetic import SyntheticProblem
from benchmark_utils.sampling import EpochSampler, MinibatchStreams

CPU = torch.device("cpu")


def draws(sampler, n_batches):
    return [sampler.next_batch() for _ in range(n_batches)]


def test_every_sample_exactly_once_per_epoch_in_a_new_order():
    batches = draws(EpochSampler(10, 4, seed=0, device=CPU), 15)
    assert [len(batch) for batch in batches] == [4, 4, 2] * 5
    assert all(batch.dtype == torch.int64 and batch.device == CPU
               for batch in batches)
    epochs = [torch.cat(batches[k:k + 3]) for k in range(0, 15, 3)]
    for epoch in epochs:
        assert torch.equal(torch.sort(epoch).values, torch.arange(10))
    orders = {tuple(epoch.tolist()) for epoch in epochs}
    assert len(orders) == 5


def test_same_seed_same_batches_another_seed_others():
    first, again, other = (draws(EpochSampler(10, 4, seed, CPU), 6)
                           for seed in (3, 3, 4))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_streams_are_independent_and_seeded():
    problem = small_hypercleaning_problem()   # 40 training, 20 validation
    streams = MinibatchStreams(problem, 8, seed=5)
    fresh = MinibatchStreams(problem, 8, seed=5)
    # A long inner loop on one stream leaves the others' batches as they
    # were.
    draws(streams.inner, 23)
    assert all(torch.equal(a, b) for a, b in zip(
        draws(streams.outer, 6), draws(fresh.outer, 6)))
    assert all(torch.equal(a, b) for a, b in zip(
        draws(streams.second_order, 6), draws(fresh.second_order, 6)))
    # The inner stream goes on where it was: its 24th batch is the 24th
    # of the same seed's.
    assert torch.equal(streams.inner.next_batch(),
                       draws(MinibatchStreams(problem, 8, 5).inner, 24)[-1])
    # The two streams of training samples are not copies of each other.
    again = MinibatchStreams(problem, 8, seed=5)
    assert not torch.equal(again.inner.next_batch(),
                           again.second_order.next_batch())
    # Outer batches index the validation samples: an epoch covers them.
    outer_epoch = torch.cat(draws(MinibatchStreams(problem, 8, 5).outer, 3))
    assert torch.equal(torch.sort(outer_epoch).values, torch.arange(20))


def test_one_epoch_of_the_inner_stream_counts_one_gradient():
    """40 samples in batches of 16: 16, 16 and 8, weighted 0.4, 0.4, 0.2."""
    problem = small_hypercleaning_problem()
    streams = MinibatchStreams(problem, 16, seed=0)
    oracles = Oracles(problem, "closed_form")
    x, y = problem.x0, problem.y0
    for _ in range(3):
        oracles.grad_inner(x, y, streams.inner.next_batch())
    assert oracles.counts()["n_grad"] == 1.0


def test_full_batch_gives_none_on_every_problem():
    for problem in (small_hypercleaning_problem(), SyntheticProblem(n=5)):
        streams = MinibatchStreams(problem, "full", seed=0)
        assert [streams.inner.next_batch(), streams.outer.next_batch(),
                streams.second_order.next_batch()] == [None] * 3


@pytest.mark.parametrize("batch_size", [0, -4, 2.5, 4.0, 11, True, "half"])
def test_bad_batch_size_is_a_clear_error(batch_size):
    with pytest.raises(ValueError, match=r"batch_size must be 'full' or an "
                       r"integer in \[1, 10\] \(the 10 samples\)"):
        EpochSampler(10, batch_size, seed=0, device=CPU)


def test_batch_size_above_a_problems_samples_names_them():
    problem = small_hypercleaning_problem()   # 40 training, 20 validation
    with pytest.raises(ValueError, match=r"batch_size must be 'full' or an "
                       r"integer in \[1, 20\] \(the 20 validation samples of "
                       "the hyper-cleaning problem\\), got 32"):
        MinibatchStreams(problem, 32, seed=0)


def test_a_batch_size_on_a_problem_without_samples_is_a_clear_error():
    with pytest.raises(ValueError, match="batch_size must be 'full' on the "
                       "synthetic problem, which has no samples, got 4"):
        MinibatchStreams(SyntheticProblem(n=5), 4, seed=0)


def test_fixed_batches_come_back_in_a_new_order_each_epoch():
    sampler = EpochSampler(10, 4, seed=0, device=CPU, fixed_batches=True)
    assert sampler.n_batches == 3
    assert [len(batch) for batch in sampler.batches] == [4, 4, 2]
    assert torch.equal(torch.sort(torch.cat(sampler.batches)).values,
                       torch.arange(10))
    epochs = []
    for _ in range(6):
        epoch = []
        for _ in range(3):
            batch = sampler.next_batch()
            # The batch drawn is the fixed batch it names.
            assert torch.equal(batch, sampler.batches[sampler.batch_index])
            epoch.append(sampler.batch_index)
        epochs.append(tuple(epoch))
    # Every batch once per epoch, in orders that change.
    assert all(sorted(epoch) == [0, 1, 2] for epoch in epochs)
    assert len(set(epochs)) > 1
    # Full batch: one batch, index 0.
    full = EpochSampler(10, "full", seed=0, device=CPU, fixed_batches=True)
    assert full.next_batch() is None and full.batch_index == 0
