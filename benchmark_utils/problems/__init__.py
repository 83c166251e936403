"""Bilevel problems: the contract (``base``: ``f``, ``g``, the closed-form
products and, for a problem that is a mean over samples, its numbers of
samples and minibatches) and each problem (``quadratic``, ``synthetic``,
``hypercleaning``, ``regsel``, and ``quadratic_samples``, a quadratic that
is a mean over samples), with their closed-form products; ``glm`` and
``sparse`` are the cross-entropy and sparse-product pieces they share.
The problems whose lower level is a neural network, not convex
(``mlp_hypercleaning``, ``distillation``), differentiate the functional
classifiers of ``networks`` automatically. A new problem is a module here
and a file in ``datasets/``."""
