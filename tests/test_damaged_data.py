"""Damaged and missing data, and the runs that meet them.

Each damaged file is named with what is wrong with it and what to do, moved
aside to ``<name>.corrupt`` with its bytes intact (never deleted), and no
cache is built from it; all the missing files of a dataset come in one
message; in a run, a dataset that cannot be built is reported with its
message and without a traceback, and the other datasets' results are
written.
"""
import gzip
import hashlib
import os
import re
import stat
import subprocess
import sys
import urllib.error

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import BENCHMARK, ROOT
from torchvision import datasets
from torchvision.datasets import mnist as torchvision_mnist

from benchmark_utils.data import (BilevelDataset, DamagedDataError,
                                  MissingDataError)
from benchmark_utils.data.libsvm import (fetch_libsvm_set,
                                        fetch_libsvm_sets)
from benchmark_utils.data.mnist_family import load_torchvision_split
from benchmark_utils.testing.idx_files import write_random_set
from benchmark_utils.testing.libsvm_files import write_random_libsvm_set

IJCNN1_URL = ("https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/"
              "binary/ijcnn1.bz2")
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: Proxies on a closed port: a download in a subprocess fails at once, as
#: on a machine without network.
OFFLINE = {"http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}


# -- LIBSVM files -------------------------------------------------------------

@pytest.fixture
def libsvm(tmp_path, monkeypatch):
    """libsvmdata's folder under tmp_path, and no network."""
    monkeypatch.setenv("LIBSVMDATA_HOME", str(tmp_path))
    from libsvmdata import abstraction

    def no_network(url, path, **kwargs):
        raise RuntimeError(f"Error while fetching file {url}.")

    monkeypatch.setattr(abstraction, "download", no_network)
    return tmp_path / "libsvm"


def damaged_ijcnn1(libsvm, content):
    """ijcnn1.bz2 with ``content``; fetching it must fail. Returns the
    message."""
    libsvm.mkdir(exist_ok=True)
    (libsvm / "ijcnn1.bz2").write_bytes(content)
    with pytest.raises(DamagedDataError) as error:
        fetch_libsvm_set("ijcnn1", "regsel_ijcnn1")
    return str(error.value)


def assert_moved_aside(folder, name, content):
    """``name`` is now ``name.corrupt`` with its bytes, and nothing else is
    in ``folder``: no cache, no decompressed copy."""
    assert sorted(os.listdir(folder)) == [f"{name}.corrupt"]
    assert (folder / f"{name}.corrupt").read_bytes() == content


def damage_message(libsvm, problem):
    published = libsvm / "ijcnn1.bz2"
    return (f"{published} (LIBSVM data set 'ijcnn1') is damaged: {problem}. "
            f"It was moved aside to {published}.corrupt. Fetch it again with "
            f"`benchopt prepare . -d regsel_ijcnn1`, or download "
            f"{IJCNN1_URL} into {libsvm}/.")


def test_truncated_bz2_is_named_and_moved_aside(libsvm):
    write_random_libsvm_set(libsvm, "ijcnn1", 300)
    content = (libsvm / "ijcnn1.bz2").read_bytes()
    half = content[:len(content) // 2]
    message = damaged_ijcnn1(libsvm, half)
    assert message == damage_message(
        libsvm, "its bz2 stream ends early (the file is truncated)")
    assert_moved_aside(libsvm, "ijcnn1.bz2", half)


def test_every_damaged_file_of_a_data_set_is_named_in_one_message(libsvm):
    libsvm.mkdir()
    # Both halves of ijcnn1 damaged.
    for name in ("ijcnn1.bz2", "ijcnn1.t.bz2"):
        (libsvm / name).write_bytes(b"not bz2")
    with pytest.raises(DamagedDataError) as error:
        fetch_libsvm_sets(("ijcnn1", "ijcnn1_test"), "regsel_ijcnn1")
    message = str(error.value)
    for libsvm_name, name in (("ijcnn1", "ijcnn1.bz2"),
                              ("ijcnn1_test", "ijcnn1.t.bz2")):
        assert (f"{libsvm / name} (LIBSVM data set '{libsvm_name}') is "
                "damaged: it is not a valid svmlight file") in message
        assert f"moved aside to {libsvm / name}.corrupt" in message
    # One damaged, one missing: both named.
    (libsvm / "ijcnn1.t.bz2.corrupt").rename(libsvm / "ijcnn1.t.bz2")
    with pytest.raises(DamagedDataError) as error:
        fetch_libsvm_sets(("ijcnn1", "ijcnn1_test"), "regsel_ijcnn1")
    message = str(error.value)
    assert f"{libsvm / 'ijcnn1.t.bz2'} (LIBSVM data set 'ijcnn1_test') is " \
        "damaged" in message
    assert f"LIBSVM data set 'ijcnn1' is not in {libsvm}" in message


def test_random_bytes_are_named_and_kept(libsvm):
    content = np.random.default_rng(0).bytes(5_000)
    message = damaged_ijcnn1(libsvm, content)
    assert message == damage_message(
        libsvm, "it is not a valid svmlight file (Invalid data stream)")
    assert_moved_aside(libsvm, "ijcnn1.bz2", content)


def test_a_set_of_another_size_than_published_is_damaged(libsvm):
    write_random_libsvm_set(libsvm, "ijcnn1", 30)
    content = (libsvm / "ijcnn1.bz2").read_bytes()
    message = damaged_ijcnn1(libsvm, content)
    assert message == damage_message(
        libsvm, "it has 30 samples, 30 labels and 22 features where LIBSVM "
        "publishes 49,990 samples of 22 features")
    assert_moved_aside(libsvm, "ijcnn1.bz2", content)


@pytest.mark.parametrize("text, problem", [
    (b"1 1:0.5 7:abc\n", "could not convert string to float"),
    (b"1 7:0.5 2:1\n", "should be sorted and unique"),
    (b"1 1:0.5 3:nan\n-1 2:1\n", "it has non-finite entries"),
])
def test_malformed_content_is_damaged(libsvm, text, problem):
    import bz2
    content = bz2.compress(text)
    assert problem in damaged_ijcnn1(libsvm, content)
    assert_moved_aside(libsvm, "ijcnn1.bz2", content)


def test_a_second_damaged_copy_does_not_overwrite_the_first(libsvm):
    first, second = b"first copy", b"second copy"
    damaged_ijcnn1(libsvm, first)
    damaged_ijcnn1(libsvm, second)
    assert (libsvm / "ijcnn1.bz2.corrupt").read_bytes() == first
    assert (libsvm / "ijcnn1.bz2.corrupt-2").read_bytes() == second


def test_a_cache_built_from_a_damaged_file_is_set_aside(libsvm):
    # What an earlier libsvmdata conversion of a truncated ijcnn1.bz2 left.
    libsvm.mkdir()
    np.save(libsvm / "ijcnn1_X.npy", np.zeros((0, 22)))
    np.save(libsvm / "ijcnn1_y.npy", np.zeros(0))
    with pytest.raises(DamagedDataError) as error:
        fetch_libsvm_set("ijcnn1", "regsel_ijcnn1")
    cache = libsvm / "ijcnn1_X.npy"
    assert str(error.value).startswith(
        f"{cache} (LIBSVM data set 'ijcnn1', converted from the published "
        "file) is damaged: it has 0 samples, 0 labels and 22 features where "
        "LIBSVM publishes 49,990 samples of 22 features. It was moved aside "
        f"to {cache}.corrupt and {libsvm / 'ijcnn1_y.npy'}.corrupt.")
    assert sorted(os.listdir(libsvm)) == ["ijcnn1_X.npy.corrupt",
                                          "ijcnn1_y.npy.corrupt"]
    # With the published file there, the cache is built again from it.
    written, labels = write_random_libsvm_set(libsvm, "ijcnn1",
                                              words_per_sample=2)
    features, read_labels = fetch_libsvm_set("ijcnn1", "regsel_ijcnn1")
    assert features.shape == (49_990, 22)
    np.testing.assert_array_equal(read_labels, labels)
    assert (libsvm / "ijcnn1_X.npz").exists()


# -- torchvision IDX files ----------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision_mnist, "download_and_extract_archive",
                        no_network)


def test_garbage_gz_files_fail_their_checksum_and_are_kept(tmp_path,
                                                           offline):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    contents = {}
    for name in MNIST_FILES:
        contents[name] = np.random.default_rng(len(name)).bytes(1_000)
        (raw / f"{name}.gz").write_bytes(contents[name])
    with pytest.raises(DamagedDataError) as error:
        load_torchvision_split("MNIST", tmp_path, True, "hyperclean_mnist")
    message = str(error.value)
    for (archive, md5), name in zip(datasets.MNIST.resources, MNIST_FILES):
        digest = hashlib.md5(contents[name]).hexdigest()
        assert (f"{raw / archive} (MNIST) is damaged: its md5 is {digest} "
                f"where torchvision publishes {md5} (checksum mismatch). It "
                f"was moved aside to {raw / archive}.corrupt.") in message
        assert (raw / f"{archive}.corrupt").read_bytes() == contents[name]
        assert (f"{archive} (https://ossci-datasets.s3.amazonaws.com/mnist/"
                f"{archive})") in message
    assert "It could not be downloaded (<urlopen error no network>)" \
        in message
    assert "benchopt prepare . -d hyperclean_mnist" in message
    assert sorted(os.listdir(raw)) == sorted(
        f"{name}.gz.corrupt" for name in MNIST_FILES)


@pytest.mark.parametrize("damage, problem", [
    (lambda data: data[:len(data) // 2],
     "its header announces 40 x 28 x 28 values (31,376 bytes with the "
     "header) but it has 15,688 bytes (the file is truncated)"),
    (lambda data: np.random.default_rng(0).bytes(len(data)),
     "it does not start with the header of an IDX file of unsigned bytes of "
     "rank 3 (magic bytes "),
    (lambda data: data[:4] + (10).to_bytes(4, "big") + (56).to_bytes(4, "big")
     + (14).to_bytes(4, "big") + data[16:16 + 10 * 56 * 14],
     "its images are 56 x 14, where the set's are 28 x 28"),
])
def test_damaged_extracted_files_are_named(tmp_path, offline, damage,
                                           problem):
    write_random_set(tmp_path, "FashionMNIST", n_train=40, n_test=20)
    images = tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    content = damage(images.read_bytes())
    images.write_bytes(content)
    with pytest.raises(DamagedDataError) as error:
        load_torchvision_split("FashionMNIST", tmp_path, False,
                               "hyperclean_fashion_mnist")
    message = str(error.value)
    assert message.startswith(f"{images} (FashionMNIST) is damaged: "
                              f"{problem}")
    assert f"It was moved aside to {images}.corrupt." in message
    assert "benchopt prepare . -d hyperclean_fashion_mnist" in message
    assert images.with_name(images.name + ".corrupt").read_bytes() == content


def test_labels_that_do_not_match_the_images_are_named(tmp_path, offline):
    write_random_set(tmp_path, "KMNIST", n_train=40, n_test=20)
    raw = tmp_path / "KMNIST" / "raw"
    other = write_random_set(tmp_path / "other", "KMNIST", n_train=41,
                             n_test=20)
    assert other[True][1].shape == (41,)
    os.replace(tmp_path / "other" / "KMNIST" / "raw" /
               "train-labels-idx1-ubyte", raw / "train-labels-idx1-ubyte")
    with pytest.raises(DamagedDataError) as error:
        load_torchvision_split("KMNIST", tmp_path, True, "hyperclean_kmnist")
    assert ("train-labels-idx1-ubyte holds 41 labels for the 40 images of "
            "train-images-idx3-ubyte") in str(error.value)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        assert (raw / f"{name}.corrupt").exists()


def test_a_damaged_extracted_file_is_extracted_again_from_its_gz(
        tmp_path, offline, monkeypatch, capsys):
    written = write_random_set(tmp_path, "MNIST", n_train=40, n_test=20)
    raw = tmp_path / "MNIST" / "raw"
    resources = []
    for name in MNIST_FILES:
        data = (raw / name).read_bytes()
        (raw / f"{name}.gz").write_bytes(gzip.compress(data))
        resources.append((f"{name}.gz", hashlib.md5(
            (raw / f"{name}.gz").read_bytes()).hexdigest()))
    # The written archives stand in for the published ones.
    monkeypatch.setattr(datasets.MNIST, "resources", resources)
    images = raw / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:100])
    read, labels = load_torchvision_split("MNIST", tmp_path, False,
                                          "hyperclean_mnist")
    assert torch.equal(read, written[False][0])
    assert f"{images} (MNIST) was damaged: its header announces 20 x 28 x 28" \
        in capsys.readouterr().out
    assert (raw / "t10k-images-idx3-ubyte.corrupt").exists()


def test_extracted_files_take_the_permissions_of_their_archive(
        tmp_path, offline, monkeypatch):
    write_random_set(tmp_path, "MNIST", n_train=40, n_test=20)
    raw = tmp_path / "MNIST" / "raw"
    resources = []
    for mode, name in zip((0o644, 0o640, 0o604, 0o600), MNIST_FILES):
        archive = raw / f"{name}.gz"
        archive.write_bytes(gzip.compress((raw / name).read_bytes()))
        archive.chmod(mode)
        (raw / name).unlink()
        resources.append((archive.name,
                          hashlib.md5(archive.read_bytes()).hexdigest()))
    monkeypatch.setattr(datasets.MNIST, "resources", resources)
    load_torchvision_split("MNIST", tmp_path, True, "hyperclean_mnist")
    for mode, name in zip((0o644, 0o640, 0o604, 0o600), MNIST_FILES):
        assert stat.S_IMODE((raw / name).stat().st_mode) == mode, name


def test_every_missing_file_is_named_in_one_message(tmp_path, offline):
    raw = tmp_path / "KMNIST" / "raw"
    write_random_set(tmp_path, "KMNIST", n_train=40, n_test=20)
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (raw / name).unlink()
    with pytest.raises(MissingDataError) as error:
        load_torchvision_split("KMNIST", tmp_path, True, "hyperclean_kmnist")
    message = str(error.value)
    assert message.startswith(
        "KMNIST (train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz) is "
        f"not in {raw} and could not be downloaded (<urlopen error no "
        "network>).")
    assert "benchopt prepare . -d hyperclean_kmnist" in message


# -- runs that meet an unusable dataset ---------------------------------------

def benchopt_command(*args, env=None):
    """``benchopt ARGS`` from the benchmark folder, whatever its exit
    status, with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "benchopt", *args], cwd=ROOT,
        capture_output=True, text=True, timeout=600,
        env={**os.environ, **(env or {})})


def benchopt_run(tmp_path, *args, env=None):
    output = tmp_path / "results.parquet"
    completed = benchopt_command(
        "run", ".", *args, "--max-runs", "2", "--timeout", "60", "--no-plot",
        "--no-cache", "--output", str(output), env=env)
    return completed, output


def test_a_dataset_larger_than_the_memory_costs_nothing_else(tmp_path):
    # The synthetic problem's n x n matrices at n = 200,000: 1.7 TiB.
    completed, output = benchopt_run(
        tmp_path, "-d", "quadratic[dim_x=5,dim_y=10]", "-d",
        "synthetic[n=200000]", "-s", "LancBiO")
    log = completed.stdout + completed.stderr
    assert completed.returncode == 0, log
    assert "Traceback" not in log
    assert re.search(r"The synthetic problem at n=200000 \(dense n x n "
                     r"matrices in float64\) needs 1\.7 TiB, more than the "
                     r"[0-9.]+ [GMT]iB free on cpu: lower n \(the memory "
                     r"grows as n\^2\)\.", log), log
    assert set(pd.read_parquet(output)["dataset_name"]) == {
        "quadratic[dim_x=5,dim_y=10,kappa=100.0]"}


class AllocationFailure(BilevelDataset):
    """A dataset whose problem asks PyTorch for 800 TB."""

    name = "allocation-failure"

    def build_problem(self):
        torch.empty(10 ** 14, dtype=torch.float64)


def test_an_allocation_failure_while_building_is_a_skip_reason():
    data = AllocationFailure.get_instance().get_data()
    assert data["problem"] is None
    assert re.fullmatch(
        r"The dataset allocation-failure ran out of memory \(DefaultCPU"
        r"Allocator: can't allocate memory: you tried to allocate "
        r"800000000000000 bytes\. Error code 12 \(Cannot allocate memory\)"
        r"; [0-9.]+ [GMT]iB is available on this machine\): use smaller "
        r"sizes or a machine with more memory\.", data["unusable"])


def test_an_objective_set_up_that_runs_out_of_memory_skips_the_dataset(
        quadratic, monkeypatch):
    objective_class = BENCHMARK.get_benchmark_objective()

    def out_of_memory(problem):
        torch.empty(10 ** 14, dtype=torch.float64)

    monkeypatch.setattr(sys.modules[objective_class.__module__],
                        "reference_metrics_for", out_of_memory)
    objective = objective_class.get_instance(device="cpu")
    skip, reason = objective.skip(quadratic)
    assert skip
    assert reason.startswith(
        "Setting up the objective on the quadratic problem (device=cpu, "
        "dtype=float64) ran out of memory (DefaultCPUAllocator: can't "
        "allocate memory: you tried to allocate 800000000000000 bytes.")
    assert reason.endswith(": use a smaller dataset or a device with more "
                           "memory.")


def test_bad_parameters_cost_nothing_else(tmp_path):
    completed, output = benchopt_run(
        tmp_path, "-d", "quadratic[dim_x=5,dim_y=10]", "-d",
        "synthetic[n=0]", "-s", "SOBA", "-s", "SOBA[step_size_outer=-1.0]")
    log = completed.stdout + completed.stderr
    assert completed.returncode == 0, log
    assert "Traceback" not in log
    # The bad dataset and the bad solver curve are reported, skipped...
    assert "n must be an integer >= 1, got 0" in log
    assert "step_size_outer must be a finite number > 0, got -1.0" in log
    # ... and the good curve is written: its start and two evaluations.
    results = pd.read_parquet(output)
    assert set(results["dataset_name"]) == {
        "quadratic[dim_x=5,dim_y=10,kappa=100.0]"}
    assert len(results) == 3 and results["solver_name"].nunique() == 1


def test_missing_data_is_one_message_without_traceback(tmp_path):
    completed, output = benchopt_run(
        tmp_path, "-d", "regsel_ijcnn1", "-s", "SOBA",
        env={"LIBSVMDATA_HOME": str(tmp_path), **OFFLINE})
    log = completed.stdout + completed.stderr
    assert completed.returncode == 1, log
    assert "Traceback" not in log
    assert ("LIBSVM data sets 'ijcnn1', 'ijcnn1_test' are not in "
            f"{tmp_path / 'libsvm'} and could not be downloaded") in log
    assert "ijcnn1.t.bz2 (https://" in log and "ijcnn1.bz2 (https://" in log
    assert not output.exists()



def test_prepare_without_network_names_every_file_and_fails(tmp_path):
    # benchopt prepare prints a failed dataset's traceback itself (its
    # _prepare_one); the message names both files and the exit status is 1.
    completed = benchopt_command(
        "prepare", ".", "-d", "regsel_ijcnn1",
        env={"LIBSVMDATA_HOME": str(tmp_path), **OFFLINE})
    log = completed.stdout + completed.stderr
    assert completed.returncode == 1, log
    assert ("MissingDataError: LIBSVM data sets 'ijcnn1', 'ijcnn1_test' are "
            f"not in {tmp_path / 'libsvm'}") in log
    assert "Summary: 0/1 datasets ready, 1 failed." in log
    assert os.listdir(tmp_path / "libsvm") == []
