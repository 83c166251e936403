"""Regularization selection on LIBSVM data: the sparse oracles against the
densified problem and finite differences, the objective's hypergradient,
the memory of one oracle call at news20's size, LancBiO, the loaders on
written files through libsvmdata, the splits and the bad-input errors."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import (BENCHMARK, ROOT, get_dataset_class, make_objective,
                      point_near_start, run_solver, small_regsel_problem)
from libsvmdata import abstraction as libsvmdata_abstraction
from scipy import sparse as scipy_sparse
from torch.func import grad, jvp, vmap

from benchmark_utils.data import MissingDataError
from benchmark_utils.data import libsvm as libsvm_data
from benchmark_utils.data.libsvm import (fetch_libsvm_set, fetch_libsvm_sets,
                                         libsvm_folder)
from benchmark_utils.oracles import HVP_MODES, Oracles
from benchmark_utils.problems.regsel import RegSelProblem, build_regsel_problem
from benchmark_utils.problems.sparse import SparseFeatures
from benchmark_utils.testing.libsvm_files import (random_documents,
                                                  write_libsvm_file,
                                                  write_random_libsvm_set)


def densified(problem):
    """The same problem with every feature matrix dense."""
    def dense(features):
        return features.matrix.to_dense()

    return RegSelProblem(
        dense(problem.train_features), problem.train_labels,
        dense(problem.val_features), problem.val_labels,
        dense(problem.test_features), problem.test_labels,
        problem.n_classes)


def all_oracles(oracles, x, y, v):
    return dict(grad_inner=oracles.grad_inner(x, y),
                grad_inner_x=oracles.grad_inner_x(x, y),
                grad_outer=torch.cat(oracles.grad_outer(x, y)),
                hvp=oracles.hvp(x, y, v), cross=oracles.cross(x, y, v),
                hvp_and_cross=torch.cat(oracles.hvp_and_cross(x, y, v)))


# -- oracles ------------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [2, 5])
@pytest.mark.parametrize("mode", HVP_MODES)
def test_sparse_oracles_match_the_densified_problem(n_classes, mode):
    problem = small_regsel_problem(n_classes)
    assert isinstance(problem.train_features, SparseFeatures)
    x, y, v = point_near_start(problem, 1)
    sparse = all_oracles(Oracles(problem, mode), x, y, v)
    dense = all_oracles(Oracles(densified(problem), mode), x, y, v)
    for name, value in sparse.items():
        torch.testing.assert_close(value, dense[name], rtol=1e-10,
                                   atol=1e-10, msg=name)
        assert float(torch.linalg.vector_norm(value)) > 1e-3, name


def central_difference(func, point, direction, eps=1e-6):
    return (func(point + eps * direction) - func(point - eps * direction)) / (
        2 * eps)


@pytest.mark.parametrize("mode", HVP_MODES)
def test_sparse_oracles_match_finite_differences(mode):
    problem = small_regsel_problem(4, seed=2)
    oracles = Oracles(problem, mode)
    x, y, v = point_near_start(problem, 3)
    u = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    grad_x_g = oracles.grad_inner_x(x, y)
    torch.testing.assert_close(
        torch.dot(oracles.grad_inner(x, y), v),
        central_difference(lambda s: problem.g(x, s), y, v),
        rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(
        torch.dot(grad_x_g, u),
        central_difference(lambda s: problem.g(s, y), x, u),
        rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(
        torch.dot(oracles.grad_outer(x, y)[1], v),
        central_difference(lambda s: problem.f(x, s), y, v),
        rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(
        oracles.hvp(x, y, v),
        central_difference(lambda s: oracles._grad_g_y(x, s), y, v),
        rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(
        oracles.cross(x, y, v),
        central_difference(lambda s: oracles._grad_g_x(x, s), y, v),
        rtol=1e-6, atol=1e-8)


def test_batched_hvps_through_vmap_match_one_by_one():
    # generate_vmap_rule: the sparse product batches under torch.func.vmap
    # in both modes (forward-over-reverse and reverse-over-reverse).
    problem = small_regsel_problem(3, seed=5)
    x, y, _ = point_near_start(problem, 6)
    directions = torch.randn(4, y.numel(),
                             generator=torch.Generator().manual_seed(7))
    grad_g = grad(problem.g, argnums=1)
    for mode in HVP_MODES:
        oracles = Oracles(problem, mode)
        expected = torch.stack([oracles.hvp(x, y, d) for d in directions])
        if mode == "forward":
            batched = vmap(lambda d: jvp(lambda s: grad_g(x, s), (y,),
                                         (d,))[1])(directions)
        else:
            batched = vmap(lambda d: oracles.hvp(x, y, d))(directions)
        torch.testing.assert_close(batched, expected, rtol=1e-12,
                                   atol=1e-14)


def test_problem_moves_to_float32_and_stays_sparse():
    problem = small_regsel_problem(3)
    moved = problem.to(torch.device("cpu"), torch.float32)
    assert moved.train_features.matrix.layout == torch.sparse_coo
    assert moved.train_features.matrix.dtype == torch.float32
    assert moved.train_features.matrix_t.dtype == torch.float32
    assert problem.train_features.matrix.dtype == torch.float64
    x, y, v = (t.float() for t in point_near_start(problem, 8))
    torch.testing.assert_close(
        Oracles(moved, "forward").hvp(x, y, v),
        Oracles(problem).hvp(x.double(), y.double(), v.double()).float(),
        rtol=1e-4, atol=1e-6)


# -- objective ----------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [2, 3])
def test_hypergrad_norm_matches_finite_differences_of_phi(n_classes):
    problem = small_regsel_problem(n_classes, seed=9, n_features=6)
    objective = make_objective(problem)
    x = problem.x0 + torch.randn(6, generator=torch.Generator().manual_seed(1))
    metrics = objective.evaluate_result(
        x=x, y=problem.y0, v=None, counts=dict(n_grad=0, n_hvp=0, n_cross=0),
        n_outer=0)
    reference = make_objective(problem).reference
    # Finite differences of phi need phi to round-off: fixed-tolerance
    # solves, not the metrics' 1e-6.
    reference.rtol = None

    def phi(point):
        return float(problem.f(point, reference.inner_solution(point)))

    eye = torch.eye(6)
    finite_difference = torch.tensor([
        central_difference(phi, x, eye[j], eps=1e-5) for j in range(6)])
    assert metrics["hypergrad_norm"] == pytest.approx(
        float(torch.linalg.vector_norm(finite_difference)), rel=1e-6)
    assert metrics["hypergrad_norm"] > 1e-3
    assert metrics["value"] == pytest.approx(phi(x), rel=1e-6)


def test_peak_memory_of_one_oracle_call_at_news20_size():
    # 16,000 x 62,061 with 0.1% non-zeros: 7.9 GB dense, 24 MB sparse.
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sparse_hvp.py"),
         "--repeat", "0", "--json"], capture_output=True, text=True,
        timeout=300, check=True)
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["nnz"] == pytest.approx(0.001 * 16_000 * 62_061, rel=0.1)
    peaks = {(r["oracle"], r["mode"]): r["peak_mib"]
             for r in report["results"]}
    assert set(peaks) == {("gradient", "reverse"), ("hvp", "reverse"),
                          ("hvp", "forward"), ("hvp", "closed_form")}
    # W (62,061 x 20) in float64 is 9.5 MiB: a call holds a few such
    # tensors, never a dense copy of the data.
    for key, peak in peaks.items():
        assert 5 < peak < 300, key


def test_auto_inner_step_finds_the_cross_entropy_curvature():
    # A constant start vector is orthogonal to every direction the
    # cross-entropy curves (it shifts all logits of a sample equally): the
    # solvers' power iteration must start elsewhere to find L.
    problem = small_regsel_problem(4, seed=11)
    problem.x0 = torch.full_like(problem.x0, math.log(1e-4))
    hessian = torch.func.hessian(problem.g, argnums=1)(
        problem.x0, problem.y0)
    lipschitz = float(torch.linalg.eigvalsh(hessian)[-1])
    assert lipschitz > 10 * 1e-4   # the loss, not the ridge, sets L
    solver, _, _ = run_solver("SOBA", problem, 0)
    assert solver.inner_lipschitz() == pytest.approx(lipschitz, rel=1e-3)
    assert solver.step_size("step_size_inner", "auto") == pytest.approx(
        1 / (1.1 * lipschitz), rel=1e-3)


SOLVER_NAMES = sorted({solver.name for solver in BENCHMARK.get_solvers()})


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_every_solver_runs_on_the_sparse_problem_without_densifying(
        name, monkeypatch):
    problem = small_regsel_problem(3, seed=12)

    def no_densifying(*args, **kwargs):
        raise AssertionError("a sparse feature matrix was densified")

    monkeypatch.setattr(torch.Tensor, "to_dense", no_densifying)
    solver, objective, _ = run_solver(name, problem, 3)
    result = solver.get_result()
    assert isinstance(problem.train_features, SparseFeatures)
    assert result["n_outer"] == 3
    assert torch.isfinite(result["x"]).all()
    assert torch.isfinite(result["y"]).all()
    assert not torch.equal(result["x"], problem.x0)


# -- LancBiO ------------------------------------------------------------------

def regsel_dataset(tmp_path, monkeypatch, name, n_samples, **sizes):
    """The dataset ``name`` on random files written under LIBSVMDATA_HOME
    (of their own sizes: see ``accept_written_sizes``)."""
    monkeypatch.setenv("LIBSVMDATA_HOME", str(tmp_path))
    accept_written_sizes(monkeypatch)
    dataset_class = get_dataset_class(name)
    for libsvm_name in dataset_class.libsvm_names:
        write_random_libsvm_set(tmp_path / "libsvm", libsvm_name, n_samples,
                                seed=len(libsvm_name))
    dataset = dataset_class.get_instance(**sizes)
    RunContext().set_run_context("objective", dataset, "solver",
                                 repetition=0, base_seed=0)
    return dataset


def test_lancbio_lowers_the_validation_loss_on_news20_shaped_data():
    # news20's make-up on a 2,000-word vocabulary: 70 words per document,
    # 20 classes, unit-norm rows.
    counts, classes = random_documents(400, 2_000, 20, 70, seed=0)
    problem = build_regsel_problem([(counts, classes + 1.0, "news20-like")],
                                   200, 100, 100, seed=0,
                                   normalize_rows=True)
    objective = make_objective(problem)
    start = objective.evaluate_result(**objective.get_one_result())
    solver, _, _ = run_solver("LancBiO", problem, 30, objective=objective,
                              step_size_inner="auto")
    end = objective.evaluate_result(**solver.get_result())
    print(f"validation loss {start['value']:.4f} -> {end['value']:.4f}")
    assert end["value"] < start["value"] - 1e-3
    assert math.isfinite(end["test_loss"])


# -- data ---------------------------------------------------------------------

@pytest.mark.parametrize("libsvm_name, dense", [
    ("ijcnn1", True), ("ijcnn1_test", True), ("news20.multiclass", False)])
def test_loader_reads_written_files_in_libsvmdata_layout(
        tmp_path, monkeypatch, libsvm_name, dense):
    monkeypatch.setenv("LIBSVMDATA_HOME", str(tmp_path))
    accept_written_sizes(monkeypatch)
    folder = libsvm_folder()
    assert folder == tmp_path / "libsvm"
    written, labels = write_random_libsvm_set(folder, libsvm_name, 30,
                                              seed=1)
    published = (folder / written_name(libsvm_name)).read_bytes()
    for _ in range(2):   # converted, then read from the cache
        features, read_labels = fetch_libsvm_set(libsvm_name, "regsel_x")
        assert isinstance(features, np.ndarray) == dense
        np.testing.assert_array_equal(read_labels, labels)
        np.testing.assert_array_equal(
            features if dense else features.toarray(), written.toarray())
    # libsvmdata's cache, and the published file kept as it was.
    extension = "npy" if dense else "npz"
    assert sorted(path.name for path in folder.iterdir()) == sorted([
        written_name(libsvm_name), f"{libsvm_name}_X.{extension}",
        f"{libsvm_name}_y.npy"])
    assert (folder / written_name(libsvm_name)).read_bytes() == published
    cached = (np.load(folder / f"{libsvm_name}_X.npy") if dense
              else scipy_sparse.load_npz(folder / f"{libsvm_name}_X.npz"))
    assert cached.shape == written.shape


def accept_written_sizes(monkeypatch):
    """Sets written by a test have its sizes, not LIBSVM's: only their
    feature counts are checked (tests/test_damaged_data.py checks the
    published sample counts)."""
    monkeypatch.setattr(libsvm_data, "PUBLISHED_SHAPES", {})


def written_name(libsvm_name):
    from libsvmdata.core import ALL_DATASETS
    return ALL_DATASETS[libsvm_name].dataset_file


def test_download_goes_through_libsvmdata(tmp_path, monkeypatch):
    monkeypatch.setenv("LIBSVMDATA_HOME", str(tmp_path))
    accept_written_sizes(monkeypatch)
    counts, classes = random_documents(20, 62_061, 20, 70, seed=2)
    requested = []

    def fake_download(url, path, **kwargs):   # the network, offline
        requested.append(url)
        # Into a temporary name: an interrupted download is never read.
        assert path.name == "news20.bz2.part"
        served = tmp_path / "served" / "news20.bz2"
        write_libsvm_file(served, counts, classes + 1.0)
        served.rename(path)

    monkeypatch.setattr(libsvmdata_abstraction, "download", fake_download)
    features, labels = fetch_libsvm_set("news20.multiclass", "regsel_news20")
    assert requested == ["https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/"
                         "datasets/multiclass/news20.bz2"]
    assert scipy_sparse.issparse(features)
    np.testing.assert_array_equal(features.toarray(), counts.toarray())
    np.testing.assert_array_equal(labels, classes + 1.0)
    assert (tmp_path / "libsvm" / "news20.bz2").exists()
    assert not (tmp_path / "libsvm" / "news20.bz2.part").exists()


def no_network(url, path, **kwargs):
    # What libsvmdata's downloader raises when the fetch fails.
    raise RuntimeError(f"Error while fetching file {url}. Dataset fetching "
                       "aborted.\nError: <urlopen error no network>")


def test_missing_data_without_network_is_a_clear_error(tmp_path,
                                                       monkeypatch):
    monkeypatch.setenv("LIBSVMDATA_HOME", str(tmp_path))
    monkeypatch.setattr(libsvmdata_abstraction, "download", no_network)
    with pytest.raises(MissingDataError) as error:
        fetch_libsvm_set("ijcnn1_test", "regsel_ijcnn1")
    message = str(error.value)
    assert f"is not in {tmp_path / 'libsvm'}" in message
    assert "benchopt prepare . -d regsel_ijcnn1" in message
    assert "ijcnn1.t.bz2" in message and "no network" in message


def test_every_missing_set_is_named_in_one_message(tmp_path, monkeypatch):
    monkeypatch.setenv("LIBSVMDATA_HOME", str(tmp_path))
    monkeypatch.setattr(libsvmdata_abstraction, "download", no_network)
    with pytest.raises(MissingDataError) as error:
        fetch_libsvm_sets(("ijcnn1", "ijcnn1_test"), "regsel_ijcnn1")
    message = str(error.value)
    assert message.startswith("LIBSVM data sets 'ijcnn1', 'ijcnn1_test' are "
                              f"not in {tmp_path / 'libsvm'}")
    for published in ("ijcnn1.bz2", "ijcnn1.t.bz2"):
        assert f"{published} (https://www.csie.ntu.edu.tw/~cjlin/" \
            f"libsvmtools/datasets/binary/{published})" in message
    assert "benchopt prepare . -d regsel_ijcnn1" in message


def test_dataset_reports_missing_data_with_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("LIBSVMDATA_HOME", str(tmp_path))
    monkeypatch.setattr(libsvmdata_abstraction, "download", no_network)
    dataset = get_dataset_class("regsel_news20").get_instance()
    RunContext().set_run_context("objective", dataset, "solver",
                                 repetition=0, base_seed=0)
    with pytest.raises(MissingDataError, match="-d regsel_news20"):
        dataset.build_problem()
    # In a run, the dataset is skipped with that message, without a
    # traceback, and the run goes on (tests/test_damaged_data.py).
    data = dataset.get_data()
    assert data["problem"] is None and "-d regsel_news20" in data["unusable"]


def test_unknown_data_set_name_is_a_clear_error():
    with pytest.raises(ValueError, match="libsvm_name must be a data set "
                       "that libsvmdata knows.*got 'news21'"):
        fetch_libsvm_set("news21", "regsel_news20")


def indexed_pool(n, name="pool"):
    """n samples whose single non-zero feature is their own index."""
    return (scipy_sparse.csc_matrix(scipy_sparse.eye(n)),
            np.arange(n) % 3 + 1.0, name)


def sample_indices(problem):
    return [set(features.matrix.coalesce().indices()[1].tolist())
            for features in (problem.train_features, problem.val_features,
                             problem.test_features)]


def test_one_pool_splits_are_disjoint_and_seeded():
    pool = indexed_pool(50)
    draws = [sample_indices(build_regsel_problem([pool], 20, 10, 15, seed))
             for seed in (3, 3, 4)]
    train, val, test = draws[0]
    assert [len(s) for s in draws[0]] == [20, 10, 15]
    assert not (train & val or train & test or val & test)
    assert draws[1] == draws[0] and draws[2] != draws[0]


def test_two_pools_draw_validation_and_test_from_the_second():
    first, second = indexed_pool(30, "train"), indexed_pool(40, "test")
    problem = build_regsel_problem([first, second], 30, 25, 15, seed=0)
    train, val, test = sample_indices(problem)
    assert train == set(range(30))
    assert len(val) == 25 and len(test) == 15 and not val & test


def test_labels_become_class_indices_and_rows_unit_norm():
    counts, classes = random_documents(40, 100, 20, 10, seed=3)
    labels = classes + 1.0
    labels[:20] = np.arange(1, 21)   # every class present
    problem = build_regsel_problem([(counts, labels, "x")], 20, 10, 10,
                                   seed=0, normalize_rows=True)
    assert problem.n_classes == 20 and problem.y0.shape == (2_000,)
    all_labels = torch.cat([problem.train_labels, problem.val_labels,
                            problem.test_labels])
    assert sorted(all_labels.tolist()) == sorted((labels - 1).tolist())
    norms = torch.linalg.vector_norm(
        problem.train_features.matrix.to_dense(), dim=1)
    torch.testing.assert_close(norms, torch.ones(20))
    binary = build_regsel_problem(
        [(counts, np.where(classes < 10, -1.0, 1.0), "x")], 20, 10, 10, 0)
    assert binary.n_classes == 2 and binary.y0.shape == (100,)
    assert set(binary.train_labels.tolist()) <= {0, 1}
    assert torch.equal(binary.x0, torch.full((100,), math.log(1e-3)))


@pytest.mark.parametrize("sizes, message", [
    ((49, 1, 1), r"n_train \+ n_val \+ n_test must be at most 50 \(the 50 "
     r"samples of pool\), got 49 \+ 1 \+ 1 = 51\.$"),
    ((20, 40, 1), r"got 20 \+ 40 \+ 1 = 61\.$"),
    ((20, 10, 21), r"got 20 \+ 10 \+ 21 = 51\.$"),
    ((0, 10, 10), r"n_train must be an integer >= 1, got 0\.$"),
])
def test_split_sizes_larger_than_the_data_are_clear_errors(sizes, message):
    with pytest.raises(ValueError, match=message):
        build_regsel_problem([indexed_pool(50)], *sizes, seed=0)


def test_second_pool_too_small_is_a_clear_error():
    with pytest.raises(ValueError, match=r"n_val \+ n_test must be at most "
                       r"10 \(the 10 samples of test\), got 5 \+ 6 = 11\.$"):
        build_regsel_problem([indexed_pool(30), indexed_pool(10, "test")],
                             30, 5, 6, seed=0)
    with pytest.raises(ValueError, match=r"n_train must be at most 30 \(the "
                       r"30 samples of pool\), got 31\.$"):
        build_regsel_problem([indexed_pool(30), indexed_pool(10, "test")],
                             31, 5, 5, seed=0)


@pytest.mark.parametrize("labels, message", [
    (np.full(50, 2.0), "has a single class"),
    (np.linspace(0, 1, 50), "has non-integer labels"),
])
def test_labels_that_are_not_classes_are_clear_errors(labels, message):
    features, _, _ = indexed_pool(50)
    with pytest.raises(ValueError, match=f"'pool' {message}"):
        build_regsel_problem([(features, labels, "pool")], 20, 10, 10, 0)


def test_ijcnn1_dataset_uses_both_files(tmp_path, monkeypatch):
    dataset = regsel_dataset(tmp_path, monkeypatch, "regsel_ijcnn1", 50,
                             n_train=50, n_val=30, n_test=20)
    problem = dataset.get_data()["problem"]
    # ijcnn1 has 22 features and two classes, and is stored dense.
    assert problem.n_classes == 2 and problem.y0.shape == (22,)
    assert problem.train_features.layout == torch.strided
    assert problem.train_features.shape == (50, 22)
    assert problem.val_features.shape == (30, 22)
    metrics = problem.test_metrics(problem.x0, problem.y0)
    assert metrics["test_loss"] == pytest.approx(math.log(2))


def test_news20_dataset_stays_sparse(tmp_path, monkeypatch):
    dataset = regsel_dataset(tmp_path, monkeypatch, "regsel_news20", 80,
                             n_train=40, n_val=20, n_test=20)
    problem = dataset.get_data()["problem"]
    assert problem.n_classes == 20 and problem.x0.shape == (62_061,)
    assert problem.y0.shape == (62_061 * 20,)
    for features in (problem.train_features, problem.val_features,
                     problem.test_features):
        assert isinstance(features, SparseFeatures)
        assert features.matrix.layout == torch.sparse_coo
    squared_norms = torch.sparse.sum(
        problem.train_features.matrix ** 2, dim=1).to_dense()
    torch.testing.assert_close(squared_norms, torch.ones(40))


@pytest.mark.long
def test_benchopt_runs_both_datasets_from_libsvmdata_files(tmp_path):
    # `benchopt run . -d regsel_ijcnn1 -d regsel_news20` on written files:
    # the whole pipeline, news20 at its full 62,061 features kept sparse.
    # At LIBSVM's published sizes: the loader checks them.
    for libsvm_name in ("ijcnn1", "ijcnn1_test", "news20.multiclass"):
        write_random_libsvm_set(tmp_path / "libsvm", libsvm_name,
                                seed=len(libsvm_name))
    output = tmp_path / "results.parquet"
    completed = subprocess.run(
        [sys.executable, "-m", "benchopt", "run", ".",
         "-d", "regsel_ijcnn1[n_train=100,n_val=60,n_test=60]",
         "-d", "regsel_news20[n_train=60,n_val=30,n_test=30]",
         "-s", "LancBiO", "-s", "SOBA", "--max-runs", "4", "--timeout", "120",
         "--no-plot", "--no-cache", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "LIBSVMDATA_HOME": str(tmp_path)})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    df = pd.read_parquet(output)
    for dataset in ("regsel_ijcnn1", "regsel_news20"):
        for solver in ("LancBiO", "SOBA"):
            curve = df[df["dataset_name"].str.startswith(dataset)
                       & df["solver_name"].str.startswith(solver)]
            curve = curve.sort_values("stop_val")
            assert len(curve) == 5, (dataset, solver)
            assert curve["objective_test_accuracy"].notna().all()
            # Validation loss after 4 evaluations below its start.
            values = curve["objective_value"].to_numpy()
            assert values[-1] < values[0], (dataset, solver)
