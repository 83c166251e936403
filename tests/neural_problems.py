"""Tiny instances of the neural-network problems for the tests: random
6 x 6 images, a hidden layer of 5 units (245 lower-level parameters)."""
import torch

from benchmark_utils.problems.distillation import build_distillation_problem
from benchmark_utils.problems.mlp_hypercleaning import (
    build_mlp_hypercleaning_problem)

#: Pixel statistics of the random images (uniform in [0, 255]).
RANDOM_PIXELS = (0.5, 0.29)


def random_images(n_images, seed):
    """``n_images`` random 6 x 6 images, every class among the labels
    (class ``i % 10`` for image i, then shuffled)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n_images, 6, 6), generator=generator)
    labels = torch.arange(n_images)[torch.randperm(
        n_images, generator=generator)] % 10
    return images, labels


def small_mlp_hypercleaning_problem(seed=0, reg=0.01):
    """Hyper-cleaning of a 36-5-10 perceptron on 80 random images: 40
    training (half of the labels corrupted), 20 validation, 20 test."""
    return build_mlp_hypercleaning_problem(
        random_images(80, seed), None, RANDOM_PIXELS, n_train=40, n_val=20,
        corruption_rate=0.5, reg=reg, n_hidden=5, seed=seed, n_test=20)


def small_distillation_problem(model="mlp", seed=0, reg=0.01, **options):
    """Distillation of 60 random training images (20 test images) into one
    image per class, for a 36-5-10 perceptron or the linear softmax."""
    return build_distillation_problem(
        random_images(80, seed), None, RANDOM_PIXELS, n_train=60, seed=seed,
        n_test=20, model=model, n_hidden=5, reg=reg, **options)
