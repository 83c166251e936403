"""Products with a constant sparse matrix that every torch.func mode supports.

PyTorch differentiates ``A @ W`` with a sparse COO ``A`` in reverse mode
only: forward-mode AD has no rule for sparse products (and a CSR ``A`` fails
in torch.func altogether, "Sparse CSR tensors do not have strides"). The
autograd Function below states the three rules itself, each as another
product with ``A`` or ``A^T`` through the same Function, so that its
derivatives are differentiable again: gradients, forward-over-reverse and
reverse-over-reverse Hessian-vector products all work on CPU and CUDA
without ever densifying ``A``.
"""
import torch


class SparseMatmul(torch.autograd.Function):
    """``A @ W`` for a constant sparse COO ``A`` (no derivative in ``A``) and
    a dense ``W``; ``A_t`` is ``A^T``, kept coalesced beside ``A`` so that
    the backward product is as fast as the forward one."""

    # torch.func.vmap batches the rules below as they are written.
    generate_vmap_rule = True

    @staticmethod
    def forward(matrix, matrix_t, dense):
        return torch.sparse.mm(matrix, dense)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.matrix, ctx.matrix_t, _ = inputs

    @staticmethod
    def backward(ctx, grad_output):
        # d<G, A W>/dW = A^T G, itself a product the Function differentiates.
        return None, None, SparseMatmul.apply(ctx.matrix_t, ctx.matrix,
                                              grad_output)

    @staticmethod
    def jvp(ctx, matrix_tangent, matrix_t_tangent, dense_tangent):
        return SparseMatmul.apply(ctx.matrix, ctx.matrix_t, dense_tangent)


class SparseFeatures:
    """A sparse COO design matrix ``A`` (n_samples x n_features) and its
    transpose, both coalesced; ``features @ W`` is the product above.

    It moves with its problem (:meth:`BilevelProblem.to` calls :meth:`to`)
    and is never densified: news20 as a dense float64 matrix would take
    8 GB."""

    def __init__(self, matrix):
        if matrix.layout != torch.sparse_coo:
            raise ValueError(
                f"features must be a sparse COO tensor, got {matrix.layout}.")
        self.matrix = matrix.coalesce()
        self.matrix_t = self.matrix.t().coalesce()

    @property
    def shape(self):
        return self.matrix.shape

    @property
    def T(self):
        """``A^T``, sharing both stored matrices."""
        transposed = SparseFeatures.__new__(SparseFeatures)
        transposed.matrix, transposed.matrix_t = self.matrix_t, self.matrix
        return transposed

    @property
    def nnz(self):
        return self.matrix._nnz()

    def __matmul__(self, dense):
        return SparseMatmul.apply(self.matrix, self.matrix_t, dense)

    def to(self, device, dtype):
        moved = SparseFeatures.__new__(SparseFeatures)
        moved.matrix = self.matrix.to(device=device, dtype=dtype)
        moved.matrix_t = self.matrix_t.to(device=device, dtype=dtype)
        return moved
