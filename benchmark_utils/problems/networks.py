"""Classifiers as pure functions of a flat parameter vector, for the
lower levels of the neural-network problems (hyper-cleaning with a
multilayer perceptron, dataset distillation).

A classifier here is its functional form: ``logits(y, features)`` reads its
weights out of the 1-D tensor ``y`` (views, no copy) and maps the features
(one row per sample, the last column the constant 1 of
:func:`benchmark_utils.problems.hypercleaning.image_features`, which is the
first layer's bias) to one logit per class. ``torch.func`` then
differentiates ``f`` and ``g`` through it in reverse and in forward mode,
as for every other problem.
"""
import math

import torch

from benchmark_utils.validation import check_choice, check_int

#: The classifiers of the ``model`` parameter of the neural datasets.
MODELS = ("linear", "mlp")


class LinearClassifier:
    """``logits = W a``: one row of W per class (the lower level of the
    linear hyper-cleaning problem, here for dataset distillation). With a
    cross-entropy and a ridge its training loss is strongly convex."""

    convex = True

    def __init__(self, n_features, n_classes):
        self.n_features, self.n_classes = n_features, n_classes
        self.n_parameters = n_classes * n_features

    def logits(self, y, features):
        return features @ y.view(self.n_classes, self.n_features).T

    def initial_parameters(self, generator, dtype):
        """Zeros, as the linear hyper-cleaning problem starts: the
        training loss is convex, so the start decides nothing."""
        return torch.zeros(self.n_parameters, dtype=dtype)


class MLPClassifier:
    """One hidden layer with a smooth activation,

        logits = W2 tanh(W1 a) + b2,

    W1 (n_hidden x n_features, its last column the bias of the hidden
    layer, as the features end with a constant 1), W2 (n_classes x
    n_hidden) and b2 stacked in that order in ``y``. tanh rather than a
    ReLU: its curvature is what the HVPs see (a ReLU network's Hessian
    has no activation term, and none at all across a kink), and its
    second derivative takes both signs, so the training loss is not
    convex: at W1 = W2 = 0, for one, the products W2 tanh(W1 a) make a
    saddle."""

    convex = False

    def __init__(self, n_features, n_classes, n_hidden):
        check_int("n_hidden", n_hidden, 1)
        self.n_features, self.n_classes = n_features, n_classes
        self.n_hidden = n_hidden
        self.shapes = ((n_hidden, n_features), (n_classes, n_hidden),
                       (n_classes,))
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.n_parameters = sum(self.sizes)

    def weights(self, y):
        """(W1, W2, b2): views of ``y``."""
        return [part.view(shape) for part, shape in zip(
            torch.split(y, self.sizes), self.shapes)]

    def logits(self, y, features):
        hidden_weights, output_weights, output_bias = self.weights(y)
        hidden = torch.tanh(features @ hidden_weights.T)
        return torch.addmm(output_bias, hidden, output_weights.T)

    def initial_parameters(self, generator, dtype):
        """PyTorch's default for a linear layer (uniform in +-1 /
        sqrt(fan-in), fan-in counting the bias column of W1), and b2 = 0,
        drawn from ``generator``: the same start for every solver of a
        dataset and seed."""
        hidden_bound = 1 / math.sqrt(self.n_features)
        output_bound = 1 / math.sqrt(self.n_hidden)
        hidden_weights, output_weights = (
            (2 * torch.rand(size, generator=generator, dtype=torch.float64)
             - 1) * bound
            for size, bound in zip(self.sizes[:2],
                                   (hidden_bound, output_bound)))
        return torch.cat([hidden_weights, output_weights,
                          torch.zeros(self.sizes[2], dtype=torch.float64)
                          ]).to(dtype)


def make_classifier(model, n_features, n_classes, n_hidden):
    """The classifier named ``model`` (one of :data:`MODELS`); ``n_hidden``
    is read by the MLP only."""
    check_choice("model", model, MODELS)
    if model == "linear":
        return LinearClassifier(n_features, n_classes)
    return MLPClassifier(n_features, n_classes, n_hidden)
