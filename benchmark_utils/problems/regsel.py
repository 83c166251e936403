"""Hyperparameter selection: one L2 penalty per feature of a logistic
regression, chosen on held-out data (Pedregosa, ICML 2016; Grazzi, Franceschi,
Pontil and Salzo, ICML 2020; the LancBiO paper's 20 Newsgroups task):

    g(x, W) = 1/n_tr sum_i CE(W^T a_i, b_i) + 1/2 sum_j exp(x_j) ||W_j,:||^2
    f(x, W) = 1/n_val sum_i CE(W^T a_i, b_i)   over the validation split

W has one row per feature and one column per class; with two classes it has
a single column and CE is the logistic loss. Parametrising each penalty by
its logarithm keeps g strongly convex in W for every x in R^n_features.
``y`` is W flattened, ``x`` the log-penalties. On a minibatch, g and f
average their B samples' losses; g keeps its whole penalty.

The data comes from LIBSVM's collection (:mod:`benchmark_utils.data.libsvm`);
sparse data (20 Newsgroups) stays sparse from the file to the device.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse as scipy_sparse
from sklearn.preprocessing import normalize

from benchmark_utils.data import DamagedDataError
from benchmark_utils.problems.base import BilevelProblem, select_samples
from benchmark_utils.problems.glm import (class_probabilities,
                                          cross_entropy_curvature,
                                          cross_entropy_residual)
from benchmark_utils.problems.sparse import SparseFeatures
from benchmark_utils.validation import (check_int, check_positive,
                                        check_split_sizes)

#: The starting penalty exp(x0_j) of every feature: a mild ridge, below the
#: curvature of the mean loss (about 0.015 on news20-shaped documents of
#: unit norm), so that the inner problem starts with a condition number of
#: about 15 and a penalty can grow some 30-fold before an inner step fixed
#: at the start becomes unstable.
INITIAL_PENALTY = 1e-3


class RegSelProblem(BilevelProblem):
    """Parameters
    ----------
    train_features, val_features, test_features : tensors (n, n_features)
        Dense tensors, or sparse COO tensors that stay sparse.
    train_labels, val_labels, test_labels : int64 tensors
        Class indices in ``0 .. n_classes - 1``.
    n_classes : int
        At least 2; with 2, W has a single column and CE is the logistic
        loss of its score.
    initial_penalty : float
        exp(x0), the same for every feature.
    """

    name = "regularization-selection"
    #: The hyper-cleaning schedule: the LancBiO paper gives none for this
    #: task, whose Hessian (a cross-entropy and per-feature penalties that
    #: x moves) changes with x as hyper-cleaning's does.
    subspace_schedule = (10, 1.3, 50)
    has_closed_form_derivatives = True
    #: On a news20-shaped random problem (1,000 training documents), LancBiO
    #: with an outer step of 5 lowers the validation loss steadily for 150
    #: iterations, while 100 lifts some penalties past what the inner step
    #: fixed at x0 tolerates (exp(x_j) > 2 / step) within 13 iterations:
    #: the default step_size_outer 1 means 5.
    outer_step_unit = 5.0

    def __init__(self, train_features, train_labels, val_features, val_labels,
                 test_features, test_labels, n_classes,
                 initial_penalty=INITIAL_PENALTY):
        check_int("n_classes", n_classes, 2)
        check_positive("initial_penalty", initial_penalty)
        self.train_features = as_features(train_features)
        self.val_features = as_features(val_features)
        self.test_features = as_features(test_features)
        self.train_labels = train_labels
        self.val_labels, self.test_labels = val_labels, test_labels
        self.n_classes = n_classes
        self.n_columns = 1 if n_classes == 2 else n_classes
        self.n_features = train_features.shape[1]
        self.n_inner_samples = train_features.shape[0]
        self.n_outer_samples = val_features.shape[0]
        dtype = train_features.dtype
        self.x0 = torch.full((self.n_features,), math.log(initial_penalty),
                             dtype=dtype)
        self.y0 = torch.zeros(self.n_features * self.n_columns, dtype=dtype)

    def logits(self, y, features):
        return features @ y.view(self.n_features, self.n_columns)

    def loss(self, logits, labels):
        if self.n_columns == 1:
            return F.binary_cross_entropy_with_logits(
                logits[:, 0], labels.to(logits.dtype))
        return F.cross_entropy(logits, labels)

    def predict(self, logits):
        if self.n_columns == 1:
            return (logits[:, 0] > 0).long()
        return logits.argmax(dim=1)

    def inner_strong_convexity(self, x):
        """The smallest penalty exp(x_j): the cross-entropy is convex."""
        return float(torch.exp(x.min()))

    def g(self, x, y, batch=None):
        weights = y.view(self.n_features, self.n_columns)
        penalty = 0.5 * torch.dot(torch.exp(x), torch.sum(weights ** 2, 1))
        return self.loss(
            self.logits(y, select_samples(self.train_features, batch)),
            select_samples(self.train_labels, batch)) + penalty

    def f(self, x, y, batch=None):
        return self.loss(
            self.logits(y, select_samples(self.val_features, batch)),
            select_samples(self.val_labels, batch))

    # With R = CE'(A W) (P - onehot(labels), or sigmoid(A w) - labels for
    # two classes) over the n training samples of the batch:
    #   d_W g = 1/n A^T R + exp(x) * W (rows),   d_x g = 1/2 exp(x) ||W_j||^2,
    # and over the n_val validation samples of f's batch:
    #   d_W f = 1/n_val A_val^T R_val,   d_x f = 0.
    def _loss_gradient(self, y, features, labels):
        residual = cross_entropy_residual(
            class_probabilities(self.logits(y, features)), labels)
        return features.T @ residual / features.shape[0]

    def closed_form_grad_inner(self, x, y, batch=None):
        weights = y.view(self.n_features, self.n_columns)
        return torch.addcmul(
            self._loss_gradient(y, select_samples(self.train_features, batch),
                                select_samples(self.train_labels, batch)),
            torch.exp(x)[:, None], weights).reshape(-1)

    def closed_form_grad_inner_x(self, x, y, batch=None):
        weights = y.view(self.n_features, self.n_columns)
        return 0.5 * torch.exp(x) * torch.sum(weights ** 2, 1)

    def closed_form_grad_inner_xy(self, x, y, batch=None):
        return (self.closed_form_grad_inner_x(x, y),
                self.closed_form_grad_inner(x, y, batch))

    def closed_form_grad_outer(self, x, y, batch=None):
        return torch.zeros_like(x), self._loss_gradient(
            y, select_samples(self.val_features, batch),
            select_samples(self.val_labels, batch)).reshape(-1)

    def closed_form_hvp(self, x, y, v, batch=None):
        """d2_WW g V = 1/n A^T CE''(A W) (A V) + exp(x) * V (rows), over the
        n training samples of the batch."""
        features = select_samples(self.train_features, batch)
        curvature = cross_entropy_curvature(
            class_probabilities(self.logits(y, features)),
            self.logits(v, features))
        direction = v.view(self.n_features, self.n_columns)
        return ((features.T @ curvature) / features.shape[0]
                + torch.exp(x)[:, None] * direction).reshape(-1)

    def closed_form_hessian_at(self, x, y, batch=None):
        """The batch's features and training probabilities, computed once
        for every v: two products with the data per HVP instead of
        three."""
        features = select_samples(self.train_features, batch)
        probabilities = class_probabilities(self.logits(y, features))
        penalties = torch.exp(x)[:, None]

        def product(v):
            curvature = cross_entropy_curvature(probabilities,
                                                self.logits(v, features))
            direction = v.view(self.n_features, self.n_columns)
            return ((features.T @ curvature) / features.shape[0]
                    + penalties * direction).reshape(-1)
        return product

    def closed_form_cross(self, x, y, v, batch=None):
        """(d2_xW g V)_j = exp(x_j) <W_j, V_j>: only the penalty depends on
        x, so no pass over the data, and the same on every batch."""
        weights = y.view(self.n_features, self.n_columns)
        direction = v.view(self.n_features, self.n_columns)
        return torch.exp(x) * torch.sum(weights * direction, dim=1)

    def closed_form_cross_transpose(self, x, y, u, batch=None):
        """(d2_Wx g u)_j = exp(x_j) u_j W_j: only the penalty depends on x."""
        weights = y.view(self.n_features, self.n_columns)
        return ((torch.exp(x) * u)[:, None] * weights).reshape(-1)

    def test_metrics(self, x, y):
        """Accuracy and loss of the solver's classifier ``y`` on the test
        split, and its accuracy on the validation split."""
        test_logits = self.logits(y, self.test_features)
        val_logits = self.logits(y, self.val_features)
        return dict(
            test_accuracy=self.accuracy(test_logits, self.test_labels),
            test_loss=float(self.loss(test_logits, self.test_labels)),
            val_accuracy=self.accuracy(val_logits, self.val_labels),
        )

    def accuracy(self, logits, labels):
        return float((self.predict(logits) == labels).double().mean())

    def to(self, device, dtype):
        moved = super().to(device, dtype)
        for key, value in vars(self).items():
            if isinstance(value, SparseFeatures):
                setattr(moved, key, value.to(device, dtype))
        return moved


def as_features(matrix):
    """Dense tensors are used as they are; sparse COO ones are wrapped so
    that every torch.func mode differentiates their products."""
    if matrix.layout == torch.sparse_coo:
        return SparseFeatures(matrix)
    return matrix


def build_regsel_problem(pools, n_train, n_val, n_test, seed,
                         normalize_rows=False,
                         initial_penalty=INITIAL_PENALTY):
    """Draw the three splits and build the problem.

    Parameters
    ----------
    pools : list of (features, labels, source)
        What :func:`fetch_libsvm_set` returns, with the data set's name
        (``source``, for messages). With one pool, the training, validation
        and test samples are drawn disjointly from it; with two, the
        training samples come from the first and the validation and test
        samples, disjointly, from the second.
    n_train, n_val, n_test : int
        Split sizes.
    seed : int
        Seed of the draws.
    normalize_rows : bool
        Scale every sample to unit Euclidean norm (documents of word counts).
    """
    sizes = [len(labels) for _, labels, _ in pools]
    sources = [source for _, _, source in pools]
    if len(pools) == 1:
        check_split_sizes(dict(n_train=n_train, n_val=n_val, n_test=n_test),
                          sizes[0], f"the {sizes[0]} samples of {sources[0]}")
    else:
        check_split_sizes(dict(n_train=n_train), sizes[0],
                          f"the {sizes[0]} samples of {sources[0]}")
        check_split_sizes(dict(n_val=n_val, n_test=n_test), sizes[1],
                          f"the {sizes[1]} samples of {sources[1]}")
    classes = class_values(pools)
    generator = torch.Generator().manual_seed(seed)
    orders = [torch.randperm(size, generator=generator).numpy()
              for size in sizes]
    if len(pools) == 1:
        bounds = [(0, 0, n_train), (0, n_train, n_train + n_val),
                  (0, n_train + n_val, n_train + n_val + n_test)]
    else:
        bounds = [(0, 0, n_train), (1, 0, n_val), (1, n_val, n_val + n_test)]
    rows = [pool_rows(pools[pool]) for pool in range(len(pools))]
    splits = []
    for pool, start, stop in bounds:
        chosen = orders[pool][start:stop]
        features = rows[pool][chosen]
        if normalize_rows:
            features = normalize(features)
        labels = np.searchsorted(classes, pools[pool][1][chosen])
        splits += [to_tensor(features), torch.as_tensor(labels)]
    return RegSelProblem(*splits, n_classes=len(classes),
                         initial_penalty=initial_penalty)


def class_values(pools):
    """The sorted label values of all pools: class k is the k-th of them
    (-1 and +1 become 0 and 1, news20's 1..20 become 0..19)."""
    for _, labels, source in pools:
        if not np.array_equal(labels, np.round(labels)):
            raise DamagedDataError(
                f"LIBSVM data set {source!r} has non-integer labels: it is "
                "not a classification data set.")
    classes = np.unique(np.concatenate([labels for _, labels, _ in pools]))
    if len(classes) < 2:
        names = " and ".join(repr(source) for _, _, source in pools)
        raise DamagedDataError(
            f"LIBSVM data set {names} has a single class ({classes}); a "
            "classification problem needs at least two.")
    return classes


def pool_rows(pool):
    """The features in a format that selects rows fast (CSR if sparse)."""
    features = pool[0]
    return features.tocsr() if scipy_sparse.issparse(features) else features


def to_tensor(features):
    """A float64 tensor: sparse COO for a scipy sparse matrix, else dense."""
    if scipy_sparse.issparse(features):
        coo = features.tocoo()
        indices = torch.as_tensor(np.vstack([coo.row, coo.col]),
                                  dtype=torch.int64)
        return torch.sparse_coo_tensor(
            indices, torch.as_tensor(coo.data, dtype=torch.float64),
            coo.shape, check_invariants=True).coalesce()
    return torch.as_tensor(np.asarray(features), dtype=torch.float64)
