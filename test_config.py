"""Hooks for `benchopt test`: make its dataset checks run offline.

The torchvision datasets (hyper-cleaning, its perceptron version and
distillation) and the LIBSVM regularization-selection datasets download
their data; for the test they read tiny random sets written in the
libraries' own file layouts under a temporary data home, so the real
loading code runs without network.
"""
from benchmark_utils.data import libsvm as libsvm_data
from benchmark_utils.data.libsvm import LibsvmRegSel
from benchmark_utils.data.mnist_family import TorchvisionImageSet
from benchmark_utils.testing.idx_files import write_random_set
from benchmark_utils.testing.libsvm_files import write_random_libsvm_set


def check_test_dataset_get_data(dataset, tmp_path, monkeypatch):
    if issubclass(dataset, TorchvisionImageSet):
        write_random_set(tmp_path / "torchvision", dataset.torchvision_name,
                         n_train=40, n_test=20)
        monkeypatch.setenv("BENCHOPT_DATA_HOME", str(tmp_path))
    if issubclass(dataset, LibsvmRegSel):
        for libsvm_name in dataset.libsvm_names:
            write_random_libsvm_set(tmp_path / "libsvm", libsvm_name,
                                    n_samples=100)
        monkeypatch.setenv("LIBSVMDATA_HOME", str(tmp_path))
        # Sets of 100 samples: the check against LIBSVM's published sample
        # counts would refuse them (their feature counts stay checked).
        monkeypatch.setattr(libsvm_data, "PUBLISHED_SHAPES", {})
