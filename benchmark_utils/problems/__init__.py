"""Bilevel problems: the contract (``base``) and each problem (``quadratic``,
``synthetic``, ``hypercleaning``, ``regsel``), with their closed-form
products; ``glm`` and ``sparse`` are the cross-entropy and sparse-product
pieces they share. A new problem is a module here and a file in
``datasets/``."""
