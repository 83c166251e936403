"""Data hyper-cleaning: loaders on written and on real IDX files, splits,
corruption, the objective's hypergradient, and LancBiO on real digits."""
import gzip
import hashlib
import os
import math
import urllib.error
from pathlib import Path

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import ROOT, get_dataset_class, make_objective, run_solver
from torchvision.datasets import mnist as torchvision_mnist

from benchmark_utils.data import MissingDataError
from benchmark_utils.data.mnist_family import (TORCHVISION_SETS,
                                               load_torchvision_split)
from benchmark_utils.problems.hypercleaning import (
    build_hypercleaning_problem, corrupt_labels, corrupted_f1, image_features)
from benchmark_utils.testing.idx_files import write_random_set, write_split

#: The folder of real test-set files (the MNIST and Fashion-MNIST test
#: sets in torchvision's layout): $BENCHMARK_TEST_DATA, by default the
#: ``shared/data`` folder beside the repository.
TEST_DATA = Path(os.environ.get("BENCHMARK_TEST_DATA",
                                ROOT.parent / "shared" / "data"))
SHARED_MNIST = TEST_DATA / "MNIST" / "raw"
REAL_MD5 = {
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


@pytest.fixture(scope="module")
def real_mnist_test_set(tmp_path_factory):
    """The real 10,000 MNIST test images through the loader: the published
    .gz files, checked against torchvision's md5 and extracted by it,
    beside tiny training files (torchvision wants all four files)."""
    assert SHARED_MNIST.is_dir(), (
        f"the real MNIST test files are not in {SHARED_MNIST}: set "
        "BENCHMARK_TEST_DATA to the folder that holds MNIST/raw")
    root = tmp_path_factory.mktemp("data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, md5 in REAL_MD5.items():
        data = (SHARED_MNIST / name).read_bytes()
        assert hashlib.md5(data).hexdigest() == md5
        (raw / name).write_bytes(data)
    write_split(raw, True, torch.zeros(3, 28, 28), torch.zeros(3))
    images, labels = load_torchvision_split("MNIST", root, False,
                                            "hyperclean_mnist",
                                            download=False)
    for name in REAL_MD5:   # extracted, the archives kept
        assert (raw / name).exists()
        assert (raw / name[:-3]).read_bytes() == gzip.decompress(
            (raw / name).read_bytes())
    return images, labels


@pytest.mark.parametrize("name", list(TORCHVISION_SETS))
def test_loader_reads_written_idx_files(tmp_path, name):
    written = write_random_set(tmp_path, name, n_train=30, n_test=12, seed=3)
    for train in (True, False):
        images, labels = load_torchvision_split(name, tmp_path, train,
                                                "hyperclean_x")
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert torch.equal(images, written[train][0])
        assert torch.equal(labels, written[train][1].long())


def test_loader_reads_the_real_mnist_test_set(real_mnist_test_set):
    images, labels = real_mnist_test_set
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    # The published test set has these class counts.
    assert torch.bincount(labels).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_features_are_normalised_with_a_bias_column(real_mnist_test_set):
    images, _ = real_mnist_test_set
    _, mean, std = TORCHVISION_SETS["MNIST"]
    features = image_features(images, mean, std)
    assert features.shape == (10_000, 785) and features.dtype == torch.float64
    assert torch.equal(features[:, -1], torch.ones(10_000))
    pixels = features[:, :-1]
    # MNIST's statistics normalise its pixels to mean ~0 and std ~1.
    assert abs(float(pixels.mean())) < 0.02
    assert abs(float(pixels.std()) - 1) < 0.02
    torch.testing.assert_close(
        pixels[0], (images[0].flatten().double() / 255 - mean) / std)


def test_splits_are_disjoint_and_corruption_is_exact(real_mnist_test_set):
    problem = build_hypercleaning_problem(
        real_mnist_test_set, None, TORCHVISION_SETS["MNIST"][1:],
        n_train=3000, n_val=2000, corruption_rate=0.5, reg=0.01, seed=4,
        n_test=3000)
    rows = [{tuple(row.tolist()) for row in features} for features in (
        problem.train_features, problem.val_features, problem.test_features)]
    assert [len(r) for r in rows] == [3000, 2000, 3000]
    # MNIST's test set has no duplicate image, so disjoint rows mean
    # disjoint samples.
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])
    assert int(problem.corrupted.sum()) == 1500


@pytest.mark.parametrize("rate, n", [(0.5, 1000), (0.8, 999), (0.0, 50),
                                     (0.333, 10)])
def test_corruption_changes_exactly_floor_rate_n_labels(rate, n):
    labels = torch.randint(0, 10, (n,),
                           generator=torch.Generator().manual_seed(1))
    noisy, corrupted = corrupt_labels(labels, rate,
                                      torch.Generator().manual_seed(2))
    assert int(corrupted.sum()) == int(rate * n)
    # Every corrupted label is wrong, every other one is untouched.
    assert bool((noisy[corrupted] != labels[corrupted]).all())
    assert torch.equal(noisy[~corrupted], labels[~corrupted])


def test_corruption_draws_the_other_classes_uniformly():
    labels = torch.zeros(90_000, dtype=torch.long)
    noisy, _ = corrupt_labels(labels, 0.9, torch.Generator().manual_seed(0))
    counts = torch.bincount(noisy, minlength=10)
    assert int(counts[0]) == 9000
    # 81,000 draws over classes 1-9: 9,000 each, standard deviation ~ 89.
    assert bool(((counts[1:] - 9000).abs() < 450).all())


def test_same_seed_same_problem_other_seed_other_problem(real_mnist_test_set):
    def build(seed):
        return build_hypercleaning_problem(
            real_mnist_test_set, None, TORCHVISION_SETS["MNIST"][1:], 100, 50,
            0.5, 0.01, seed=seed, n_test=50)

    first, again, other = build(7), build(7), build(8)
    for key in ("train_features", "train_labels", "val_features",
                "corrupted"):
        assert torch.equal(getattr(first, key), getattr(again, key))
    assert not torch.equal(first.train_features, other.train_features)


def test_missing_data_without_network_is_a_clear_error(tmp_path,
                                                       monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision_mnist, "download_and_extract_archive",
                        no_network)
    with pytest.raises(MissingDataError) as error:
        load_torchvision_split("KMNIST", tmp_path, True, "hyperclean_kmnist")
    message = str(error.value)
    assert f"{tmp_path}/KMNIST/raw" in message
    assert "benchopt prepare . -d hyperclean_kmnist" in message
    assert "train-images-idx3-ubyte.gz" in message and "no network" in message


def test_dataset_reports_missing_data_with_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(tmp_path))
    dataset = get_dataset_class("hyperclean_fashion_mnist").get_instance()
    RunContext().set_run_context("objective", dataset, "solver",
                                 repetition=0, base_seed=0)
    monkeypatch.setattr(
        torchvision_mnist, "download_and_extract_archive",
        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(MissingDataError, match="-d hyperclean_fashion_mnist"):
        dataset.build_problem()
    data = dataset.get_data()   # in a run: skipped with the message
    assert data["problem"] is None
    assert "-d hyperclean_fashion_mnist" in data["unusable"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(corruption_rate=1.0), r"corruption_rate must be in \[0, 1\)"),
    (dict(corruption_rate=-0.1), r"corruption_rate must be in \[0, 1\)"),
    (dict(n_train=0), r"n_train must be an integer >= 1, got 0\.$"),
    (dict(n_train=100), r"n_train \+ n_val \+ n_test must be at most 100 "
     r"\(the 100 training images\), got 100 \+ 20 \+ 30 = 150\.$"),
    (dict(n_val=0), r"n_val must be an integer >= 1, got 0\.$"),
    (dict(n_val=60), r"got 50 \+ 60 \+ 30 = 140\.$"),
    (dict(n_test=10), r"got 60 \+ 40 \+ 10 = 110\.$"),
    # The lower level is strongly convex only through its ridge.
    (dict(reg=-1.0), r"reg must be a finite number > 0, got -1\.0\.$"),
    (dict(reg=0), r"reg must be a finite number > 0, got 0\.$"),
])
def test_bad_parameters_are_clear_errors(kwargs, message):
    images = torch.zeros(100, 28, 28, dtype=torch.uint8)
    labels = torch.arange(100) % 10
    params = dict(n_train=50, n_val=20, corruption_rate=0.5, reg=0.01,
                  seed=0, n_test=30)
    params.update(kwargs)
    if "n_test" in kwargs:
        params.update(n_train=60, n_val=40)
    with pytest.raises(ValueError, match=message):
        build_hypercleaning_problem((images, labels), None, (0.1, 0.3),
                                    **params)


def test_unknown_torchvision_set_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="torchvision set must be one of"):
        load_torchvision_split("CIFAR10", tmp_path, True, "x")


def test_hypergradient_matches_finite_differences_on_real_images(
        real_mnist_test_set):
    problem = build_hypercleaning_problem(
        real_mnist_test_set, None, TORCHVISION_SETS["MNIST"][1:], 150, 80,
        0.5, 0.01, seed=0, n_test=50)
    reference = make_objective(problem).reference
    # Finite differences of phi need phi to round-off: fixed-tolerance
    # solves, not the metrics' 1e-6.
    reference.rtol = None
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(150, generator=generator)
    hypergradient, _ = reference.hypergradient(x)

    def phi(point):
        return float(problem.f(point, reference.inner_solution(point)))

    for _ in range(3):
        direction = torch.randn(150, generator=generator)
        eps = 1e-4
        finite_difference = (phi(x + eps * direction)
                             - phi(x - eps * direction)) / (2 * eps)
        assert float(torch.dot(hypergradient, direction)) == pytest.approx(
            finite_difference, rel=1e-5)


def test_lancbio_cleans_real_digits():
    dataset = get_dataset_class("hyperclean_mnist5k").get_instance(
        corruption_rate=0.5, n_train=1000, n_val=500, n_test=1000)
    RunContext().set_run_context("objective", dataset, "solver",
                                 repetition=0, base_seed=0)
    problem = dataset.get_data()["problem"]
    objective = make_objective(problem)
    # All weights equal (x = 0): the classifier trained on corrupted labels.
    x_equal = torch.zeros_like(problem.x0)
    equal = problem.test_metrics(
        x_equal, objective.reference.inner_solution(x_equal))
    solver, _, _ = run_solver(
        "LancBiO", problem, 60, objective=objective, step_size_outer=5.0,
        max_subspace_dim=10, subspace_growth=1.3, growth_every=50)
    # step_size_outer is in units of n_train / 10: 5 means the LancBiO
    # paper's 500.
    assert solver.outer_step == 500.0
    cleaned = objective.evaluate_result(**solver.get_result())
    print(f"equal weights {equal['test_accuracy']:.3f}, LancBiO "
          f"{cleaned['test_accuracy']:.3f}, F1 {cleaned['corrupted_f1']:.3f}")
    assert cleaned["test_accuracy"] >= equal["test_accuracy"] + 0.05
    assert cleaned["corrupted_f1"] > 0.6


def test_corrupted_f1_counts_flagged_samples_and_is_nan_without_corruption():
    corrupted = torch.tensor([True, True, False, False, True])
    # Flagged (x < 0): samples 0, 2 and 3; one true positive of three
    # corrupted: F1 = 2 * 1 / (3 + 3).
    x = torch.tensor([-1.0, 2.0, -0.5, -3.0, 1.0])
    assert corrupted_f1(x, corrupted) == 2 / 6
    assert corrupted_f1(-x, corrupted) == 2 * 2 / (2 + 3)
    assert math.isnan(corrupted_f1(x, torch.zeros(5, dtype=torch.bool)))
    images = torch.randint(0, 256, (60, 6, 6),
                           generator=torch.Generator().manual_seed(0))
    clean = build_hypercleaning_problem(
        (images, torch.arange(60) % 10), None, (0.3, 0.3), n_train=30,
        n_val=15, corruption_rate=0.0, reg=0.01, seed=0, n_test=15)
    metrics = clean.test_metrics(clean.x0, clean.y0)
    assert math.isnan(metrics["corrupted_f1"])
    assert 0 <= metrics["test_accuracy"] <= 1
