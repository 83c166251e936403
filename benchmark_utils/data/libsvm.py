"""LIBSVM data sets in libsvmdata's layout, and :class:`LibsvmRegSel`, the
dataset class of the regularization-selection sets.

A set is read from libsvmdata's cache, ``<name>_X.npy`` (dense) or
``<name>_X.npz`` (sparse) and ``<name>_y.npy`` in ``$LIBSVMDATA_HOME/libsvm``;
without it, from the file that LIBSVM publishes (downloaded with libsvmdata's
downloader when it is not there), which is read to its end and checked
against LIBSVM's published sample and feature counts before the cache is
written. The published file is kept, and a damaged file is moved aside, never
deleted (:mod:`benchmark_utils.data`).
"""
import copy
import os
import tempfile
from pathlib import Path

import numpy as np
from libsvmdata import abstraction as libsvmdata_abstraction
from libsvmdata.core import ALL_DATASETS
from scipy import sparse as scipy_sparse
from sklearn.datasets import load_svmlight_file

from benchmark_utils.data import (BilevelDataset, DamagedDataError,
                                  MissingDataError, damaged_data_message,
                                  missing_data_message, move_aside)
from benchmark_utils.problems.regsel import build_regsel_problem

#: Samples and features of each LIBSVM file the benchmark reads, as the
#: LIBSVM site publishes them: a converted set of another shape is damaged.
PUBLISHED_SHAPES = {
    "ijcnn1": (49_990, 22),
    "ijcnn1_test": (91_701, 22),
    "news20.multiclass": (15_935, 62_061),
}
#: libsvmdata stores a set dense when at least this share of its entries
#: are non-zero, sparse (CSC) otherwise.
DENSE_SHARE = 0.5


def libsvm_folder():
    """libsvmdata's cache folder, ``$LIBSVMDATA_HOME/libsvm`` (else
    ``$XDG_DATA_HOME/libsvm``, else ``~/data/libsvm``), read at each call:
    libsvmdata itself fixes it when it is first imported."""
    return Path(libsvmdata_abstraction._get_data_home("libsvm"))


def fetch_libsvm_sets(libsvm_names, dataset_name):
    """[(features, labels)] of the LIBSVM sets ``libsvm_names``
    (:func:`fetch_libsvm_set`). Every set is tried: the damaged files are
    named together in one :class:`DamagedDataError` (which names the
    missing sets too), else the sets that are neither on disk nor
    downloadable in one :class:`MissingDataError`."""
    fetched, missing, damaged = [], [], []
    for libsvm_name in libsvm_names:
        try:
            fetched.append(fetch_libsvm_set(libsvm_name, dataset_name))
        except MissingDataError as error:
            missing.append((libsvm_name, error.__cause__))
        except DamagedDataError as error:
            damaged.append(str(error))
    if damaged:
        if missing:
            damaged.append(_missing_message(missing, dataset_name))
        raise DamagedDataError(" ".join(damaged))
    if missing:
        raise MissingDataError(_missing_message(missing, dataset_name))
    return fetched


def fetch_libsvm_set(libsvm_name, dataset_name):
    """Features (scipy sparse CSC, or a dense array for a set with at least
    half non-zeros) and float labels of a LIBSVM data set.

    Read from libsvmdata's cache in :func:`libsvm_folder`; else from the
    published file in that folder (put there by hand, or downloaded by
    libsvmdata's downloader), read to its end, checked (complete stream,
    valid svmlight, finite, LIBSVM's published shape: ``PUBLISHED_SHAPES``)
    and cached. A damaged file raises :class:`DamagedDataError` and is moved
    aside; a damaged cache is moved aside and rebuilt from the published
    file. Without data and without network, a :class:`MissingDataError`
    says what to fetch and how (``dataset_name`` is the benchmark's
    dataset, for the command).
    """
    if libsvm_name not in ALL_DATASETS:
        raise ValueError(
            "libsvm_name must be a data set that libsvmdata knows (listed in "
            f"libsvmdata.supported), got {libsvm_name!r}.")
    entry = copy.copy(ALL_DATASETS[libsvm_name])
    entry.dataset_dir = folder = libsvm_folder()
    published = folder / entry.dataset_file
    cache = _cache_files(folder, libsvm_name)
    if cache is not None:
        try:
            return _read_cache(entry, cache, dataset_name)
        except DamagedDataError:
            if not published.exists():
                raise
    if not published.exists():
        _download(entry, published, dataset_name)
    features, labels = _read_published(entry, published, dataset_name)
    features = _libsvmdata_layout(features)
    _write_cache(folder, libsvm_name, features, labels)
    return features, labels


def _cache_files(folder, libsvm_name):
    """libsvmdata's two converted files of the set, or None when one of
    them is not there."""
    labels = folder / f"{libsvm_name}_y.npy"
    for extension in (".npy", ".npz"):
        features = folder / f"{libsvm_name}_X{extension}"
        if features.exists() and labels.exists():
            return features, labels
    return None


def _read_cache(entry, cache, dataset_name):
    """The cached set, checked as a converted file is; a damaged cache is
    moved aside (both files) with a :class:`DamagedDataError`."""
    features_file, labels_file = cache
    try:
        features = (np.load(features_file) if features_file.suffix == ".npy"
                    else scipy_sparse.load_npz(features_file))
        labels = np.load(labels_file)
        problem = _shape_or_value_problem(entry, features, labels)
    except (ValueError, OSError, EOFError) as error:
        problem = f"it cannot be read ({error})"
    if problem is None:
        return features, labels
    moved = [move_aside(path) for path in cache]
    raise DamagedDataError(damaged_data_message(
        features_file, f"LIBSVM data set {entry.dataset_name!r}, converted "
        "from the published file", problem,
        " and ".join(str(path) for path in moved),
        _advice(entry, dataset_name)))


def _download(entry, published, dataset_name):
    """The published file, fetched by libsvmdata's downloader into a
    temporary name first: an interrupted download never takes the file's
    name. A failure is a :class:`MissingDataError` (its cause: the
    download's error)."""
    published.parent.mkdir(parents=True, exist_ok=True)
    partial = published.with_name(published.name + ".part")
    try:
        libsvmdata_abstraction.download(entry.dataset_url, partial,
                                        progressbar=False, replace=True,
                                        verbose=False)
    except Exception as error:   # network errors come in many types
        partial.unlink(missing_ok=True)
        raise MissingDataError(_missing_message(
            [(entry.dataset_name, error)], dataset_name)) from error
    partial.rename(published)


def _read_published(entry, published, dataset_name):
    """The published svmlight file (bz2-compressed where its name says so),
    read to the end of its stream and checked; a damaged file is moved
    aside with a :class:`DamagedDataError`."""
    try:
        features, labels = load_svmlight_file(str(published),
                                              n_features=entry.n_features)
        problem = _shape_or_value_problem(entry, features, labels)
    except EOFError:   # a bz2 stream without its end-of-stream marker
        problem = "its bz2 stream ends early (the file is truncated)"
    except (ValueError, OSError) as error:   # OSError: not a bz2 stream
        problem = f"it is not a valid svmlight file ({error})"
    if problem is None:
        return features, labels
    raise DamagedDataError(damaged_data_message(
        published, f"LIBSVM data set {entry.dataset_name!r}", problem,
        move_aside(published), _advice(entry, dataset_name)))


def _shape_or_value_problem(entry, features, labels):
    """What is wrong with a read set (non-finite entries, a shape other
    than LIBSVM's published one), or None."""
    values = features.data if scipy_sparse.issparse(features) else features
    if not (np.isfinite(values).all() and np.isfinite(labels).all()):
        return "it has non-finite entries"
    shape = (features.shape[0], features.shape[1])
    expected = PUBLISHED_SHAPES.get(entry.dataset_name,
                                    (len(labels), entry.n_features))
    if shape != expected or len(labels) != shape[0]:
        return (f"it has {shape[0]:,} samples, {len(labels):,} labels and "
                f"{shape[1]:,} features where LIBSVM publishes "
                f"{expected[0]:,} samples of {expected[1]:,} features")
    return None


def _libsvmdata_layout(features):
    """The features as libsvmdata stores them: dense (Fortran order) with
    at least ``DENSE_SHARE`` non-zeros, else sparse CSC."""
    features = scipy_sparse.csc_matrix(features)
    features.sort_indices()
    if features.nnz >= DENSE_SHARE * features.shape[0] * features.shape[1]:
        return features.toarray(order="F")
    return features


def _write_cache(folder, libsvm_name, features, labels):
    """Write the set in libsvmdata's layout, each file under a temporary
    name first, so that no half-written cache is ever read."""
    extension = ".npz" if scipy_sparse.issparse(features) else ".npy"
    for path, array in ((folder / f"{libsvm_name}_X{extension}", features),
                        (folder / f"{libsvm_name}_y.npy", labels)):
        with tempfile.NamedTemporaryFile(dir=folder, suffix=path.suffix,
                                         delete=False) as temporary:
            if scipy_sparse.issparse(array):
                scipy_sparse.save_npz(temporary, array)
            else:
                np.save(temporary, array)
        os.replace(temporary.name, path)


def _advice(entry, dataset_name):
    return (f"Fetch it again with `benchopt prepare . -d {dataset_name}`, "
            f"or download {entry.dataset_url} into {entry.dataset_dir}/.")


def _missing_message(missing, dataset_name):
    """One message for every missing set: [(libsvm_name, download error)]."""
    entries = [ALL_DATASETS[libsvm_name] for libsvm_name, _ in missing]
    names = ", ".join(repr(entry.dataset_name) for entry in entries)
    errors = "; ".join(dict.fromkeys(str(error) for _, error in missing
                                     if error is not None))
    folder = libsvm_folder()
    files = ", ".join(f"{entry.dataset_file} ({entry.dataset_url})"
                      for entry in entries)
    sets = "LIBSVM data sets" if len(entries) > 1 else "LIBSVM data set"
    return missing_data_message(
        f"{sets} {names}", folder, errors or None, dataset_name,
        "libsvmdata's folder: $LIBSVMDATA_HOME/libsvm, by default "
        "~/data/libsvm",
        f"put the published files {files} into {folder}/",
        plural=len(entries) > 1)


class LibsvmRegSel(BilevelDataset):
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
        fetch_libsvm_sets(self.libsvm_names, self.name)

    def build_problem(self):
        pools = [(*data, libsvm_name) for data, libsvm_name in zip(
            fetch_libsvm_sets(self.libsvm_names, self.name),
            self.libsvm_names)]
        return build_regsel_problem(
            pools, self.n_train, self.n_val, self.n_test,
            seed=self.get_seed(use_repetition=True),
            normalize_rows=self.normalize_rows)
