"""Host reads of device values, counted for every solver
(``benchmark_utils/testing/host_reads.py``).

Each read (``item``, ``float``/``int``/``bool`` of a tensor, a Python
branch on one, ``tolist``, ``nonzero``, a boolean mask, a blocking copy
between host and device) stalls a GPU's queue. Every solver, on every
problem family, in full batch and on minibatches, reads exactly what
``SOLVER_READS`` says per outer iteration at its steady state (which
docs/solvers.md lists), at the sites it names; the sparse problem adds one
read per selection of a minibatch's rows.
"""
from collections import Counter

import pytest
import torch
from conftest import make_objective
from solver_runs import (BATCH_SIZE, problem_families, set_up_solver,
                         solver_cases)

from benchmark_utils.linalg.krylov import conjugate_gradient
from benchmark_utils.problems.sparse import SparseFeatures
from benchmark_utils.sampling import EpochSampler
from benchmark_utils.testing.host_reads import (HostReads, read_site,
                                                solver_reads,
                                                solver_reads_spec)

#: Iterations before the counted ones (the first iterations of the
#: recursive estimators differ), and iterations counted: two of LancBiO's
#: restarts, two of SRBA's and VRBO's full passes, an epoch of batches.
N_WARMUP, N_COUNTED = 2, 4
#: Where the sparse problem reads the number of stored entries of a
#: minibatch's rows.
SPARSE_SELECTION = ("benchmark_utils/problems/sparse.py:"
                    "SparseFeatures.__getitem__")


@pytest.fixture(scope="module")
def objectives():
    return {family: make_objective(problem, hvp_mode="auto")
            for family, problem in problem_families().items()}


def test_every_kind_of_read_is_counted_once():
    vector = torch.arange(4.0)
    with HostReads() as counter:
        vector.sum().item()
        float(vector[1])
        int(vector[2])
        if vector.max() > 2:
            pass
        vector.tolist()
        vector.nonzero()
        vector[vector > 1]
        torch.equal(vector, vector)
        # Arithmetic, views and reductions that stay on the device.
        torch.dot(vector, vector) * 2 + vector[1:].sum()
    assert counter.total == 8


def test_draws_on_the_host_are_not_reads_and_what_they_meet_is():
    generator = torch.Generator().manual_seed(0)
    data = torch.arange(10.0)
    with HostReads() as counter:
        length = int(torch.randint(5, (), generator=generator,
                                   device="cpu"))
        order = torch.randperm(10, generator=generator, device="cpu")
        order[:3].tolist()
        (order[:3] + 1).tolist()
        assert counter.total == 0
        float(data[order[:3]].sum())
    assert counter.total == 1
    assert length < 5


def test_blocking_copies_to_the_device_are_counted():
    host = torch.ones(3, device="cpu")
    with HostReads() as counter:
        host.to("meta", non_blocking=True)
        assert counter.total == 0
        host.to("meta")
    assert counter.total == 1


def test_the_sampler_copies_its_permutations_without_blocking():
    # Three epochs of batches drawn on the host and moved to the device:
    # no copy waits for the device's queue.
    sampler = EpochSampler(10, 4, seed=0, device=torch.device("meta"))
    with HostReads() as counter:
        for _ in range(9):
            sampler.next_batch()
    assert counter.total == 0


def test_a_read_is_named_by_the_benchmark_function_that_made_it():
    matrix = torch.eye(5) * 2
    with HostReads() as counter:
        conjugate_gradient(lambda u: matrix @ u, torch.ones(5), rtol=1e-12)
    # One step solves it: the test before and after it.
    assert counter.reads == Counter(
        {"benchmark_utils/linalg/krylov.py:conjugate_gradient": 2})
    assert read_site() == "?"


@pytest.mark.parametrize("family, name, params", solver_cases())
def test_host_reads_per_iteration_are_those_listed(
        objectives, monkeypatch, family, name, params):
    selections = Counter()
    select = SparseFeatures.__getitem__

    def counted_select(features, rows):
        selections["rows"] += 1
        return select(features, rows)

    monkeypatch.setattr(SparseFeatures, "__getitem__", counted_select)
    spec = solver_reads_spec(name)
    solver = set_up_solver(name, params, objectives[family])
    per_iteration = solver_reads(solver, N_WARMUP, N_COUNTED)
    assert len(per_iteration) == N_COUNTED
    sites = set()
    for iteration in per_iteration:
        reads = Counter(iteration.reads)
        reads.pop(SPARSE_SELECTION, None)
        assert sum(reads.values()) == spec.expected(
            iteration.n_hvp, iteration.n_inner_gradients)
        sites |= set(reads)
    assert sites == set(spec.sites)
    # The sparse problem reads once per selection of a minibatch's rows:
    # as many as the counted iterations selected (all the selections of
    # the run, less those of a run that stops after the warm-up, which
    # draws the same).
    in_window = selections["rows"]
    solver_reads(solver, N_WARMUP, 0)
    in_window -= selections["rows"] - in_window
    sparse_reads = sum(it.reads[SPARSE_SELECTION] for it in per_iteration)
    assert sparse_reads == in_window
    assert (sparse_reads > 0) == (family == "regsel_sparse"
                                  and params["batch_size"] == BATCH_SIZE)
