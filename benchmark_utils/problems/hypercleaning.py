"""Data hyper-cleaning (LancBiO paper, Section 4.2; Franceschi et al. 2017).

A linear classifier W (10 classes x 785 features: 784 pixels and a bias) is
trained on labels of which a fraction is corrupted; the upper level learns
one weight sigma(x_i) per training sample so that the classifier does well
on clean validation labels:

    g(x, W) = 1/n_tr sum_i sigma(x_i) CE(W a_i, label~_i) + reg ||W||^2
    f(x, W) = 1/n_val sum_j CE(W a_j, label_j)

g is 2 reg-strongly convex in W for every x. ``y`` is W flattened. On a
minibatch, g averages its B training samples' terms (each with its own
weight sigma(x_i)) and keeps the whole ridge; f averages its B validation
samples'.

:class:`SampleWeightedCleaning` holds what does not depend on the
classifier, so that another classifier (the multilayer perceptron of
``mlp_hypercleaning``) gets the same data, splits, corruption and weights.
"""
import math

import torch
import torch.nn.functional as F

from benchmark_utils.problems.base import BilevelProblem, select_samples
from benchmark_utils.problems.glm import (class_probabilities,
                                          cross_entropy_curvature,
                                          cross_entropy_residual)
from benchmark_utils.validation import (ParameterError, check_at_least,
                                        check_positive, check_split_sizes)

N_CLASSES = 10
#: The feature directions that the preconditioner of d2_WW g treats one by
#: one: the eigenvectors of the features' second-moment matrix whose
#: eigenvalue is above this fraction of the largest (about 150 of 785 on
#: MNIST digits, as good as all of them at a fifth of the cost); the
#: others share the mean of their eigenvalues.
PRECONDITIONER_EIGENVALUE_CUTOFF = 1e-3


class SampleWeightedCleaning(BilevelProblem):
    """What hyper-cleaning is whatever its classifier: the data, one weight
    sigma(x_i) per training sample, the two levels' losses and the held-out
    metrics. A subclass sets ``y0`` and writes ``logits(y, features)``, its
    classifier's.

    Parameters
    ----------
    train_features, val_features, test_features : tensors (n, 785)
        Normalised pixels with a trailing constant 1 (the bias).
    train_labels : int64 tensor
        Training labels after corruption (what the lower level sees).
    val_labels, test_labels : int64 tensors
        Clean labels.
    corrupted : bool tensor
        Which training labels were corrupted (for ``corrupted_f1``).
    reg : float
        The lower level's ridge weight C_r >= 0 (paper: 0.01).
    """

    #: The LancBiO paper's schedule for hyper-cleaning (Yang, Gao and Yuan,
    #: ICLR 2025, Section 4.2): at most 10 vectors, x1.3 every 50
    #: iterations. Each vector of the basis is built with a Hessian whose
    #: sample weights have moved since the last one, so a long basis loses
    #: orthogonality (see scripts/long_run_stability.py).
    subspace_schedule = (10, 1.3, 50)

    def __init__(self, train_features, train_labels, val_features, val_labels,
                 test_features, test_labels, corrupted, reg=0.01):
        check_at_least("reg", reg, 0.0)
        self.train_features, self.train_labels = train_features, train_labels
        self.val_features, self.val_labels = val_features, val_labels
        self.test_features, self.test_labels = test_features, test_labels
        self.corrupted = corrupted
        self.reg = float(reg)
        self.n_features = train_features.shape[1]
        self.n_inner_samples = train_features.shape[0]
        self.n_outer_samples = val_features.shape[0]
        # Each x_i weighs one of n_tr samples, so d phi / d x_i is O(1/n_tr):
        # outer steps scale with n_tr (the LancBiO paper's 500 for
        # n_tr = 5,000).
        self.outer_step_unit = train_features.shape[0] / 10
        self.x0 = torch.zeros(train_features.shape[0],
                              dtype=train_features.dtype)

    def logits(self, y, features):
        raise NotImplementedError

    def training_samples(self, x, batch):
        """(x_i, features, labels) of the training samples ``batch``."""
        return (select_samples(x, batch),
                select_samples(self.train_features, batch),
                select_samples(self.train_labels, batch))

    def g(self, x, y, batch=None):
        x_batch, features, labels = self.training_samples(x, batch)
        losses = F.cross_entropy(self.logits(y, features), labels,
                                 reduction="none")
        return torch.mean(torch.sigmoid(x_batch) * losses) + (
            self.reg * torch.dot(y, y))

    def f(self, x, y, batch=None):
        return F.cross_entropy(
            self.logits(y, select_samples(self.val_features, batch)),
            select_samples(self.val_labels, batch))

    def test_metrics(self, x, y):
        """Held-out metrics of the solver's classifier ``y``, and how well
        the learnt weights flag the corrupted samples (sigma(x_i) < 1/2):
        their F1 score, NaN where no sample was corrupted (no recall to
        speak of)."""
        test_logits = self.logits(y, self.test_features)
        val_logits = self.logits(y, self.val_features)
        return dict(
            test_accuracy=accuracy(test_logits, self.test_labels),
            test_loss=float(F.cross_entropy(test_logits, self.test_labels)),
            val_accuracy=accuracy(val_logits, self.val_labels),
            corrupted_f1=corrupted_f1(x, self.corrupted),
        )


class HyperCleaningProblem(SampleWeightedCleaning):
    """Hyper-cleaning of a linear classifier (the LancBiO paper's): the
    parameters of :class:`SampleWeightedCleaning`, with ``reg > 0``: g is
    2 reg-strongly convex in W, through its ridge alone."""

    name = "hyper-cleaning"
    has_closed_form_derivatives = True

    def __init__(self, train_features, train_labels, val_features, val_labels,
                 test_features, test_labels, corrupted, reg=0.01):
        check_positive("reg", reg)
        super().__init__(train_features, train_labels, val_features,
                         val_labels, test_features, test_labels, corrupted,
                         reg)
        self.y0 = torch.zeros(N_CLASSES * self.n_features,
                              dtype=train_features.dtype)
        # The eigendecomposition of the features' second moment, computed
        # by the first call to hessian_preconditioner.
        self.moment_eigenvalues = self.moment_eigenvectors = None

    def inner_strong_convexity(self, x):
        """2 reg: the cross-entropy terms are convex."""
        return 2 * self.reg

    def logits(self, y, features):
        # As V A^T (10 x d times d x n): on 2 CPU cores the BLAS product
        # takes half the time of A V^T, the same numbers up to round-off.
        return (y.view(N_CLASSES, self.n_features) @ features.T).T

    # With P = softmax(A W^T), R = P - onehot(labels) and s = sigmoid(x),
    # over the n training samples of the batch (all of them, without one):
    #   d_W g = 1/n (s * R)^T A + 2 reg W,
    #   (d_x g)_i = 1/n s_i (1 - s_i) CE_i   (0 for a sample outside it),
    # and over the n_val validation samples of f's batch:
    #   d_W f = 1/n_val R_val^T A_val,   d_x f = 0.
    def _grad_weights(self, y, weights, features, probabilities, labels):
        residual = cross_entropy_residual(probabilities, labels)
        scaled = (weights / len(weights))[:, None] * residual
        return torch.add((scaled.T @ features).reshape(-1), y,
                         alpha=2 * self.reg)

    def closed_form_grad_inner(self, x, y, batch=None):
        x_batch, features, labels = self.training_samples(x, batch)
        return self._grad_weights(
            y, torch.sigmoid(x_batch), features,
            class_probabilities(self.logits(y, features)), labels)

    def closed_form_grad_inner_xy(self, x, y, batch=None):
        x_batch, features, labels = self.training_samples(x, batch)
        log_probabilities = torch.log_softmax(self.logits(y, features), 1)
        weights = torch.sigmoid(x_batch)
        losses = -log_probabilities.gather(1, labels[:, None])[:, 0]
        on_batch = weights * (1 - weights) * losses / len(weights)
        grad_x = on_batch if batch is None else torch.zeros_like(
            x).index_add(0, batch, on_batch)
        return grad_x, self._grad_weights(
            y, weights, features, log_probabilities.exp(), labels)

    def closed_form_grad_outer(self, x, y, batch=None):
        features = select_samples(self.val_features, batch)
        residual = cross_entropy_residual(
            class_probabilities(self.logits(y, features)),
            select_samples(self.val_labels, batch))
        return (torch.zeros_like(x),
                (residual.T @ features).reshape(-1) / len(features))

    # With P = softmax(A W^T), Z_v = A V^T and s = sigmoid(x), over the
    # n training samples of the batch (all of them, without one):
    #   d2_WW g V = 1/n (s * CE''(P) Z_v)^T A + 2 reg V
    #   (d2_xW g V)_i = 1/n s_i (1 - s_i) <p_i - onehot(label_i), Z_v,i>
    # (0 for a sample outside the batch), and for u of the size of x
    #   d2_Wx g u = 1/n (u s (1 - s) * (P - onehot(labels)))^T A.
    def _hvp(self, x_batch, features, v, probabilities, logit_direction):
        curvature = cross_entropy_curvature(probabilities, logit_direction)
        weighted = (torch.sigmoid(x_batch)[:, None] * curvature
                    / len(x_batch))
        return (weighted.T @ features).reshape(-1) + 2 * self.reg * v

    def _cross(self, x, batch, labels, probabilities, logit_direction):
        weights = torch.sigmoid(select_samples(x, batch))
        residual = cross_entropy_residual(probabilities, labels)
        on_batch = weights * (1 - weights) * torch.sum(
            residual * logit_direction, dim=1) / len(weights)
        if batch is None:
            return on_batch
        # index_add sums a sample drawn twice, as its gradient does.
        return torch.zeros_like(x).index_add(0, batch, on_batch)

    def _probabilities_and_direction(self, features, y, v):
        return (class_probabilities(self.logits(y, features)),
                self.logits(v, features))

    def closed_form_hvp(self, x, y, v, batch=None):
        x_batch, features, _ = self.training_samples(x, batch)
        return self._hvp(x_batch, features, v,
                         *self._probabilities_and_direction(features, y, v))

    def closed_form_hessian_at(self, x, y, batch=None):
        """The batch's samples and training probabilities, computed once
        for every v: two products with the data per HVP instead of
        three."""
        x_batch, features, _ = self.training_samples(x, batch)
        probabilities = class_probabilities(self.logits(y, features))
        return lambda v: self._hvp(x_batch, features, v, probabilities,
                                   self.logits(v, features))

    def closed_form_cross(self, x, y, v, batch=None):
        _, features, labels = self.training_samples(x, batch)
        return self._cross(x, batch, labels,
                           *self._probabilities_and_direction(features, y, v))

    def closed_form_cross_transpose(self, x, y, u, batch=None):
        x_batch, features, labels = self.training_samples(x, batch)
        weights = torch.sigmoid(x_batch)
        residual = cross_entropy_residual(
            class_probabilities(self.logits(y, features)), labels)
        scales = select_samples(u, batch) * weights * (1 - weights) / len(
            x_batch)
        return ((scales[:, None] * residual).T @ features).reshape(-1)

    def closed_form_hvp_and_cross(self, x, y, v, batch=None):
        x_batch, features, labels = self.training_samples(x, batch)
        probabilities, logit_direction = self._probabilities_and_direction(
            features, y, v)
        return (self._hvp(x_batch, features, v, probabilities,
                          logit_direction),
                self._cross(x, batch, labels, probabilities,
                            logit_direction))

    def hessian_preconditioner(self, x, y):
        """The Kronecker-factored approximation of d2_WW g (Martens and
        Grosse, "Optimizing neural networks with Kronecker-factored
        approximate curvature", ICML 2015): the mean of a product of the
        class and feature factors replaced by the product of their means,

            M = C (x) S + 2 reg I,   C = 1/n sum_i s_i (diag(p_i) - p_i p_i^T),
                                     S = 1/n sum_i a_i a_i^T,

        inverted through the eigendecompositions of C (10 x 10, one product
        with the data for the probabilities p_i) and of S (the same at every
        (x, y): computed once). Applying it costs about 5% of an HVP and
        cuts the conjugate-gradient steps of the reference solves 1.4 to 5
        times on MNIST digits (scripts/evaluation_cost.py); with most
        training probabilities saturated, C no longer describes the
        samples that still have curvature, and it takes up to about 1.4
        times the steps of plain CG."""
        if self.moment_eigenvalues is None:
            self._decompose_feature_moment()
        probabilities = class_probabilities(
            self.logits(y, self.train_features))
        weighted = torch.sigmoid(x)[:, None] * probabilities
        class_factor = (torch.diag(weighted.sum(dim=0))
                        - weighted.T @ probabilities) / len(x)
        class_eigenvalues, class_eigenvectors = torch.linalg.eigh(class_factor)
        ridge = 2 * self.reg
        # 1 / (c_k s_j + 2 reg) on the kept feature directions j; the rest
        # share the mean of their eigenvalues (the last entry): M^-1 is
        # 1 / rest everywhere, plus 1 / kept - 1 / rest on the kept ones.
        rest_inverse = 1 / (class_eigenvalues[:, None]
                            * self.moment_eigenvalues[-1] + ridge)
        kept_gain = 1 / (class_eigenvalues[:, None]
                         * self.moment_eigenvalues[:-1] + ridge) - (
                             rest_inverse)
        directions = self.moment_eigenvectors

        def inverse(r):
            in_classes = class_eigenvectors.T @ r.view(N_CLASSES, -1)
            return (class_eigenvectors @ torch.addmm(
                in_classes * rest_inverse,
                (in_classes @ directions) * kept_gain,
                directions.T)).reshape(-1)
        return inverse

    def _decompose_feature_moment(self):
        """The eigenvectors of S = 1/n A^T A above the cut-off and their
        eigenvalues, with the mean of the other eigenvalues appended."""
        moment = self.train_features.T @ self.train_features / (
            self.n_inner_samples)
        eigenvalues, eigenvectors = torch.linalg.eigh(moment)
        kept = eigenvalues > PRECONDITIONER_EIGENVALUE_CUTOFF * eigenvalues[-1]
        rest = eigenvalues[~kept]
        self.moment_eigenvalues = torch.cat([
            eigenvalues[kept],
            (rest.mean() if len(rest) else eigenvalues.new_zeros(())
             ).reshape(1)])
        self.moment_eigenvectors = eigenvectors[:, kept].contiguous()


def corrupted_f1(x, corrupted):
    """The F1 score of the samples that the weights sigma(x_i) < 1/2 flag,
    against the ``corrupted`` ones: 2 TP / (flagged + corrupted); NaN where
    none was corrupted."""
    n_corrupted = int(corrupted.sum())
    if n_corrupted == 0:
        return math.nan
    flagged = x < 0
    true_positives = int((flagged & corrupted).sum())
    return 2 * true_positives / (int(flagged.sum()) + n_corrupted)


def accuracy(logits, labels):
    return float((logits.argmax(dim=1) == labels).double().mean())


def image_features(images, mean, std):
    """Pixels in [0, 255] -> (pixel / 255 - mean) / std, flattened, with a
    constant 1 appended for the bias; float64."""
    pixels = torch.as_tensor(images, dtype=torch.float64).reshape(
        len(images), -1) / 255.0
    features = (pixels - mean) / std
    return torch.cat([features, torch.ones(len(features), 1,
                                           dtype=torch.float64)], dim=1)


def corrupt_labels(labels, corruption_rate, generator):
    """Replace ``floor(corruption_rate * n)`` labels, drawn at random, by a
    uniformly drawn *different* class. Returns (new labels, corrupted mask)."""
    if not 0 <= corruption_rate < 1:
        raise ParameterError(
            f"corruption_rate must be in [0, 1), got {corruption_rate!r}.")
    n = len(labels)
    n_corrupted = int(corruption_rate * n)
    chosen = torch.randperm(n, generator=generator)[:n_corrupted]
    # A shift in 1..9 modulo 10 is uniform over the nine other classes.
    shift = torch.randint(1, N_CLASSES, (n_corrupted,), generator=generator)
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift) % N_CLASSES
    corrupted = torch.zeros(n, dtype=torch.bool)
    corrupted[chosen] = True
    return noisy, corrupted


def draw_cleaning_data(train_pool, test_pool, normalisation, n_train,
                       n_val, corruption_rate, generator, n_test=None,
                       pool_name="training images"):
    """Draw disjoint training and validation sets from ``train_pool`` and
    corrupt the training labels, from ``generator``: the arguments of a
    :class:`SampleWeightedCleaning` before ``reg``.

    Parameters
    ----------
    train_pool, test_pool : (images, labels)
        Pixels in [0, 255] (any shape n x ...) and int64 labels.
        ``test_pool`` None draws ``n_test`` test samples from ``train_pool``
        as well, disjoint from the two other sets (for a small data set).
    normalisation : (mean, std)
        Pixel statistics of the data set, after scaling to [0, 1].
    pool_name : str
        What ``train_pool`` holds, for the message of splits larger than it.
    """
    images, labels = train_pool
    n_pool = len(labels)
    splits = dict(n_train=n_train, n_val=n_val)
    if test_pool is None:
        splits["n_test"] = n_test
    check_split_sizes(splits, n_pool, f"the {n_pool} {pool_name}")
    order = torch.randperm(n_pool, generator=generator)
    train_idx = order[:n_train]
    val_idx = order[n_train:n_train + n_val]
    if test_pool is None:
        test_pool = [part[order[n_train + n_val:n_train + n_val + n_test]]
                     for part in (images, labels)]
    noisy_labels, corrupted = corrupt_labels(labels[train_idx],
                                             corruption_rate, generator)
    # Features only for the drawn samples: the full 60,000-image pool in
    # float64 would take 377 MB.
    return (image_features(images[train_idx], *normalisation), noisy_labels,
            image_features(images[val_idx], *normalisation), labels[val_idx],
            image_features(test_pool[0], *normalisation), test_pool[1],
            corrupted)


def build_hypercleaning_problem(train_pool, test_pool, normalisation,
                                n_train, n_val, corruption_rate, reg, seed,
                                n_test=None, pool_name="training images"):
    """The linear hyper-cleaning problem on the sets that
    :func:`draw_cleaning_data` draws from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return HyperCleaningProblem(
        *draw_cleaning_data(train_pool, test_pool, normalisation, n_train,
                            n_val, corruption_rate, generator, n_test,
                            pool_name),
        reg=reg)
