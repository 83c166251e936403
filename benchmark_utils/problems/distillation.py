"""Dataset distillation (Wang, Zhu, Torralba and Efros, "Dataset
distillation", arXiv 2018; as a bilevel problem with an implicit
hypergradient, Lorraine, Vicol and Duvenaud, AISTATS 2020): learn a few
synthetic images such that a classifier trained on them alone does well on
the real training set.

The upper variable x holds ``images_per_class`` images per class (10 x 784
pixels on MNIST with one per class), in the normalised pixel space of the
real features; their labels are fixed, ``c`` for the images of class c.
The lower level trains a classifier (linear softmax or the one-hidden-layer
network of :mod:`benchmark_utils.problems.networks`) on them alone, with a
ridge; the upper level is that classifier's loss on the real training set:

    g(x, y) = 1/m sum_k CE(net(y, [x_k, 1]), c_k) + reg ||y||^2
    f(x, y) = 1/n_tr sum_i CE(net(y, a_i), label_i)

a fixed, learning-rate-free lower objective (no unrolled training steps).
A minibatch of g draws distilled images, one of f real training images.
With the linear classifier g is 2 reg-strongly convex in y; with the
network it is not convex (``lower_level_convex = False``). The test split's
accuracy and loss are reported.
"""
import torch
import torch.nn.functional as F

from benchmark_utils.problems.base import BilevelProblem, select_samples
from benchmark_utils.problems.hypercleaning import (N_CLASSES, accuracy,
                                                    image_features)
from benchmark_utils.problems.networks import make_classifier
from benchmark_utils.validation import (ParameterError, check_at_least,
                                        check_choice, check_int,
                                        check_positive, check_split_sizes)

#: How the distilled images start: 'real' copies training images of their
#: class (drawn from the seed), 'noise' draws every pixel from a standard
#: normal in the normalised pixel space (where the real pixels have mean 0
#: and standard deviation 1).
INITIALISATIONS = ("real", "noise")


class DistillationProblem(BilevelProblem):
    """Parameters
    ----------
    train_features, test_features : tensors (n, 785)
        Normalised pixels of the real images with a trailing constant 1.
    train_labels, test_labels : int64 tensors
    images_per_class : int
        Distilled images per class.
    init : {'real', 'noise'}
        How the distilled images start (:data:`INITIALISATIONS`).
    model : {'linear', 'mlp'}
        The classifier of the lower level.
    n_hidden : int
        Hidden units of the 'mlp'.
    reg : float
        The lower level's ridge weight, >= 0; > 0 with the linear
        classifier, which it makes strongly convex.
    generator : torch.Generator
        Draws the starting images and the classifier's initial weights.
    """

    name = "dataset distillation"
    #: Hyper-cleaning's schedule: the lower-level Hessian moves with x (the
    #: images it is trained on) as hyper-cleaning's moves with its sample
    #: weights.
    subspace_schedule = (10, 1.3, 50)

    def __init__(self, train_features, train_labels, test_features,
                 test_labels, images_per_class=1, init="real", model="mlp",
                 n_hidden=300, reg=0.01, generator=None):
        check_int("images_per_class", images_per_class, 1)
        check_choice("init", init, INITIALISATIONS)
        check_at_least("reg", reg, 0.0)
        generator = (torch.Generator().manual_seed(0) if generator is None
                     else generator)
        self.train_features, self.train_labels = train_features, train_labels
        self.test_features, self.test_labels = test_features, test_labels
        self.reg = float(reg)
        self.n_pixels = train_features.shape[1] - 1
        self.network = make_classifier(model, train_features.shape[1],
                                       N_CLASSES, n_hidden)
        self.lower_level_convex = self.network.convex
        if self.lower_level_convex:
            # The linear classifier's loss is strongly convex through the
            # ridge alone.
            check_positive("reg", reg)
        self.distilled_labels = torch.arange(N_CLASSES).repeat_interleave(
            images_per_class)
        self.n_inner_samples = len(self.distilled_labels)
        self.n_outer_samples = len(train_labels)
        self.x0 = self._initial_images(init, images_per_class,
                                       generator).reshape(-1)
        self.y0 = self.network.initial_parameters(generator,
                                                  train_features.dtype)

    def _initial_images(self, init, images_per_class, generator):
        if init == "noise":
            return torch.randn(self.n_inner_samples, self.n_pixels,
                               generator=generator, dtype=torch.float64).to(
                                   self.train_features.dtype)
        chosen = []
        for label in range(N_CLASSES):
            (members,) = torch.nonzero(self.train_labels == label,
                                       as_tuple=True)
            if len(members) < images_per_class:
                raise ParameterError(
                    f"images_per_class must be at most {len(members)} with "
                    f"init='real' (the training images of class {label}), "
                    f"got {images_per_class}.")
            chosen.append(members[torch.randperm(
                len(members), generator=generator)[:images_per_class]])
        return self.train_features[torch.cat(chosen), :-1].clone()

    def inner_strong_convexity(self, x):
        """2 reg with the linear classifier (None for the network, whose
        training loss is not convex)."""
        return 2 * self.reg if self.lower_level_convex else None

    def distilled_features(self, x, batch):
        """The distilled images ``batch`` as features: their pixels and
        the constant 1."""
        pixels = select_samples(x.view(self.n_inner_samples, self.n_pixels),
                                batch)
        return torch.cat([pixels, pixels.new_ones(len(pixels), 1)], dim=1)

    def g(self, x, y, batch=None):
        logits = self.network.logits(y, self.distilled_features(x, batch))
        return F.cross_entropy(
            logits, select_samples(self.distilled_labels, batch)) + (
                self.reg * torch.dot(y, y))

    def f(self, x, y, batch=None):
        return F.cross_entropy(
            self.network.logits(y, select_samples(self.train_features,
                                                  batch)),
            select_samples(self.train_labels, batch))

    def test_metrics(self, x, y):
        """The classifier trained on the distilled images, on the test
        split."""
        logits = self.network.logits(y, self.test_features)
        return dict(
            test_accuracy=accuracy(logits, self.test_labels),
            test_loss=float(F.cross_entropy(logits, self.test_labels)))


def build_distillation_problem(train_pool, test_pool, normalisation,
                               n_train, seed, n_test=None,
                               pool_name="training images", **options):
    """Draw ``n_train`` real training images from ``train_pool`` (and
    ``n_test`` test images from it too, disjoint, when ``test_pool`` is
    None; else all of ``test_pool``) and build the problem; ``options`` are
    the :class:`DistillationProblem` parameters after the data;
    ``pool_name`` says what ``train_pool`` holds, for the message of splits
    larger than it."""
    images, labels = train_pool
    n_pool = len(labels)
    splits = dict(n_train=n_train)
    if test_pool is None:
        splits["n_test"] = n_test
    check_split_sizes(splits, n_pool, f"the {n_pool} {pool_name}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n_pool, generator=generator)
    train_idx = order[:n_train]
    if test_pool is None:
        test_pool = [part[order[n_train:n_train + n_test]]
                     for part in (images, labels)]
    return DistillationProblem(
        image_features(images[train_idx], *normalisation), labels[train_idx],
        image_features(test_pool[0], *normalisation), test_pool[1],
        generator=generator, **options)
