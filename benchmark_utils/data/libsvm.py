"""LIBSVM data sets through libsvmdata, which downloads a file once and
caches it, converted, in ``$LIBSVMDATA_HOME/libsvm``; and
:class:`LibsvmRegSel`, the dataset class of the regularization-selection
sets."""
import copy
from pathlib import Path

import numpy as np
from benchopt import BaseDataset
from libsvmdata.abstraction import _get_data_home
from libsvmdata.core import ALL_DATASETS
from scipy import sparse as scipy_sparse

from benchmark_utils.data import MissingDataError, missing_data_message
from benchmark_utils.problems.regsel import build_regsel_problem


def libsvm_folder():
    """libsvmdata's cache folder, ``$LIBSVMDATA_HOME/libsvm`` (else
    ``$XDG_DATA_HOME/libsvm``, else ``~/data/libsvm``), read at each call:
    libsvmdata itself fixes it when it is first imported."""
    return Path(_get_data_home("libsvm"))


def fetch_libsvm_set(libsvm_name, dataset_name):
    """Features (scipy sparse CSC, or a dense array for a set with at least
    half non-zeros) and float labels of a LIBSVM data set, via libsvmdata.

    libsvmdata keeps ``<name>_X.npz`` (or ``.npy``) and ``<name>_y.npy`` in
    :func:`libsvm_folder`; without them it downloads the published file and
    converts it. A published file put into that folder by hand (on a machine
    without network) is converted by libsvmdata's own code, which would
    otherwise delete it and download it again. Without data and without
    network, a :class:`MissingDataError` says what to fetch and how
    (``dataset_name`` is the benchmark's dataset, for the command).
    """
    if libsvm_name not in ALL_DATASETS:
        raise ValueError(
            "libsvm_name must be a data set that libsvmdata knows (listed in "
            f"libsvmdata.supported), got {libsvm_name!r}.")
    entry = copy.copy(ALL_DATASETS[libsvm_name])
    entry.dataset_dir = folder = libsvm_folder()
    cached = folder / libsvm_name
    published = folder / entry.dataset_file
    try:
        if published.exists() and not _is_cached(folder, libsvm_name):
            features, labels = entry._load_file_and_save_data(published,
                                                              cached)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            features, labels = entry.get_X_y()
    except RuntimeError as error:   # libsvmdata's download failed
        raise MissingDataError(_missing_message(entry, folder, dataset_name,
                                                error)) from error
    except (ValueError, OSError) as error:   # OSError: not a bz2 stream
        # libsvmdata deletes a file once converted; a file that fails goes
        # too (with its decompressed copy), so that the next run fetches it.
        published.unlink(missing_ok=True)
        if published.suffix == ".bz2":
            published.with_suffix("").unlink(missing_ok=True)
        raise ValueError(
            f"{published} (LIBSVM data set {libsvm_name!r}) is not a valid "
            f"svmlight file ({error}); it was removed from {folder}. Fetch "
            f"it again with `benchopt prepare . -d {dataset_name}`."
        ) from error
    values = features.data if scipy_sparse.issparse(features) else features
    for part, array in (("X", values), ("y", labels)):
        if not np.isfinite(array).all():
            stored = next(folder.glob(f"{libsvm_name}_{part}.np[yz]"))
            raise ValueError(
                f"{stored} (LIBSVM data set {libsvm_name!r}, converted by "
                "libsvmdata from the published file) has non-finite "
                f"entries. Delete it and fetch the data again with "
                f"`benchopt prepare . -d {dataset_name}`.")
    return features, labels


def _is_cached(folder, libsvm_name):
    """Both of libsvmdata's converted files are there."""
    return any((folder / f"{libsvm_name}_X{ext}").exists()
               for ext in (".npz", ".npy")) and (
        folder / f"{libsvm_name}_y.npy").exists()


def _missing_message(entry, folder, dataset_name, error):
    return missing_data_message(
        f"LIBSVM data set {entry.dataset_name!r}", folder, error,
        dataset_name,
        "libsvmdata keeps it in $LIBSVMDATA_HOME/libsvm, by default "
        "~/data/libsvm",
        f"put the published file {entry.dataset_file} "
        f"({entry.dataset_url}) into {folder}/")




class LibsvmRegSel(BaseDataset):
    """One L2 penalty per feature chosen on held-out LIBSVM data
    (:mod:`benchmark_utils.problems.regsel`). A subclass sets ``name``,
    ``requirements``, ``parameters`` (``n_train, n_val, n_test``),
    ``libsvm_names`` (one data set, split three ways, or a training set and
    a set split into validation and test) and ``normalize_rows``."""

    libsvm_names = ()
    normalize_rows = False
    # The download does not depend on any parameter.
    prepare_cache_ignore = "all"

    def prepare(self):
        for libsvm_name in self.libsvm_names:
            fetch_libsvm_set(libsvm_name, self.name)

    def get_data(self):
        pools = [(*fetch_libsvm_set(libsvm_name, self.name), libsvm_name)
                 for libsvm_name in self.libsvm_names]
        problem = build_regsel_problem(
            pools, self.n_train, self.n_val, self.n_test,
            seed=self.get_seed(use_repetition=True),
            normalize_rows=self.normalize_rows)
        return dict(problem=problem)
