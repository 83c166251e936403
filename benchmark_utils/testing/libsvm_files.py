"""Random LIBSVM-like data sets, and writing them as LIBSVM publishes them.

Used to exercise the real loading code offline (tests, ``benchopt test``):
tiny random sets, written as bz2-compressed svmlight files under the names
libsvmdata expects, stand in for ijcnn1 and news20; the same generator gives
the news20-shaped matrix of the memory test and of the HVP benchmark.
"""
import bz2
import io

import numpy as np
from libsvmdata.core import ALL_DATASETS
from scipy import sparse as scipy_sparse
from sklearn.datasets import dump_svmlight_file

from benchmark_utils.data.libsvm import PUBLISHED_SHAPES

#: Fraction of a document's words drawn from its class's own block of the
#: vocabulary (the rest is uniform): enough signal for a classifier to learn.
TOPIC_SHARE = 0.3


def random_documents(n_samples, n_features, n_classes, words_per_sample,
                     seed=0):
    """Word counts of random documents (CSR, float64) and their classes
    (0 .. n_classes - 1).

    Each document draws ``words_per_sample`` words with replacement, a
    share ``TOPIC_SHARE`` of them uniformly from its class's block of the
    vocabulary, the others from Zipf's law over the whole vocabulary (word
    k with probability proportional to 1 / (k + 1)), as in natural text.
    With ``words_per_sample`` = 70 and 62,061 features, 0.1% of the entries
    are non-zero, as in news20.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_samples)
    block = n_features // n_classes
    shape = (n_samples, words_per_sample)
    zipf = 1 / np.arange(1, n_features + 1)
    words = np.where(
        rng.random(shape) < TOPIC_SHARE,
        labels[:, None] * block + rng.integers(0, block, shape),
        rng.choice(n_features, shape, p=zipf / zipf.sum()))
    rows = np.repeat(np.arange(n_samples), words_per_sample)
    # Repeated (row, word) pairs add up: the counts.
    counts = scipy_sparse.csr_matrix(
        (np.ones(rows.size), (rows, words.ravel())),
        shape=(n_samples, n_features))
    counts.sum_duplicates()
    return counts, labels


def write_libsvm_file(path, features, labels):
    """An svmlight file (1-based feature indices), bz2-compressed when
    ``path`` ends with .bz2, as LIBSVM publishes most of its files."""
    text = io.BytesIO()
    dump_svmlight_file(features, labels, text, zero_based=False)
    data = text.getvalue()
    if str(path).endswith(".bz2"):
        data = bz2.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_random_libsvm_set(folder, libsvm_name, n_samples=None,
                            n_classes=20, seed=0, words_per_sample=None):
    """A random set under the published file name of ``libsvm_name`` in
    ``folder`` (libsvmdata's ``$LIBSVMDATA_HOME/libsvm``), with that set's
    number of features and ``n_samples`` samples (None: LIBSVM's published
    number, ``benchmark_utils.data.libsvm.PUBLISHED_SHAPES``). Binary sets
    get the labels -1 and +1 and, by default, about 75% non-zeros
    (libsvmdata then stores them dense, as it does ijcnn1); multiclass ones
    the labels 1 .. n_classes and 70 words per sample.
    ``words_per_sample`` sets fewer, for a set at its published size that
    is quick to write. Returns (features, labels) as written."""
    entry = ALL_DATASETS[libsvm_name]
    n_features = entry.n_features
    if n_samples is None:
        n_samples = PUBLISHED_SHAPES[libsvm_name][0]
    if entry.task_name == "binary":
        features, classes = random_documents(
            n_samples, n_features, 2, words_per_sample or 2 * n_features,
            seed)
        labels = 2.0 * classes - 1
    else:
        features, classes = random_documents(
            n_samples, n_features, n_classes, words_per_sample or 70, seed)
        labels = classes + 1.0
    write_libsvm_file(folder / entry.dataset_file, features, labels)
    return features, labels
