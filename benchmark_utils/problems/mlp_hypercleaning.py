"""Data hyper-cleaning with a multilayer perceptron as the lower level.

The data, splits, corruption and per-sample weights sigma(x_i) of the
linear problem (:mod:`benchmark_utils.problems.hypercleaning`, the same
sets for the same seed), with the linear classifier replaced by the
one-hidden-layer network of :class:`benchmark_utils.problems.networks.
MLPClassifier` (784-300-10 by default, the setting of the hyper-cleaning
experiments of Shen and Chen's PBGD, ICML 2023):

    g(x, y) = 1/n_tr sum_i sigma(x_i) CE(net(y, a_i), label~_i)
              + reg ||y||^2
    f(x, y) = 1/n_val sum_j CE(net(y, a_j), label_j)

``y`` holds every weight and bias of the network, all of them in the
ridge (as the linear problem's bias column is). g is not convex in y: the
problem says so (``lower_level_convex = False``, no strong-convexity
bound), and its metrics are the local ones of
:mod:`benchmark_utils.local_metrics`. Its derivatives are taken by
automatic differentiation through the network's functional form.
"""
import torch

from benchmark_utils.problems.hypercleaning import (N_CLASSES,
                                                    SampleWeightedCleaning,
                                                    draw_cleaning_data)
from benchmark_utils.problems.networks import MLPClassifier

#: Hidden units of the default network (784-300-10).
DEFAULT_HIDDEN = 300


class MLPHyperCleaningProblem(SampleWeightedCleaning):
    """The parameters of :class:`SampleWeightedCleaning`, and

    Parameters
    ----------
    n_hidden : int
        Units of the hidden layer.
    generator : torch.Generator
        Draws the network's initial weights ``y0``: the dataset's seeded
        generator, after the split, so that every solver starts from the
        same network for a given seed.
    """

    name = "hyper-cleaning (MLP)"
    lower_level_convex = False

    def __init__(self, train_features, train_labels, val_features, val_labels,
                 test_features, test_labels, corrupted, reg=0.01,
                 n_hidden=DEFAULT_HIDDEN, generator=None):
        super().__init__(train_features, train_labels, val_features,
                         val_labels, test_features, test_labels, corrupted,
                         reg)
        self.network = MLPClassifier(self.n_features, N_CLASSES, n_hidden)
        self.y0 = self.network.initial_parameters(
            torch.Generator().manual_seed(0) if generator is None
            else generator, train_features.dtype)

    def logits(self, y, features):
        return self.network.logits(y, features)


def build_mlp_hypercleaning_problem(train_pool, test_pool, normalisation,
                                    n_train, n_val, corruption_rate, reg,
                                    n_hidden, seed, n_test=None,
                                    pool_name="training images"):
    """The MLP problem on the sets that the linear problem of the same
    ``seed`` draws (``build_hypercleaning_problem``), its initial weights
    drawn next from the same generator."""
    generator = torch.Generator().manual_seed(seed)
    data = draw_cleaning_data(train_pool, test_pool, normalisation, n_train,
                              n_val, corruption_rate, generator, n_test,
                              pool_name)
    return MLPHyperCleaningProblem(*data, reg=reg, n_hidden=n_hidden,
                                   generator=generator)
