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
    8 GB. ``features[rows]`` selects samples (a minibatch) as a dense
    tensor's rows are selected, still sparse."""

    def __init__(self, matrix):
        if matrix.layout != torch.sparse_coo:
            raise ValueError(
                f"features must be a sparse COO tensor, got {matrix.layout}.")
        self.matrix = matrix.coalesce()
        self.matrix_t = self.matrix.t().coalesce()
        self.row_starts = row_starts(self.matrix)

    @property
    def shape(self):
        return self.matrix.shape

    @property
    def T(self):
        """``A^T``, sharing both stored matrices (for its products only:
        it has no ``row_starts`` to select rows with)."""
        transposed = SparseFeatures.__new__(SparseFeatures)
        transposed.matrix, transposed.matrix_t = self.matrix_t, self.matrix
        transposed.row_starts = None
        return transposed

    @property
    def nnz(self):
        return self.matrix._nnz()

    def __matmul__(self, dense):
        return SparseMatmul.apply(self.matrix, self.matrix_t, dense)

    def __getitem__(self, rows):
        """The rows ``rows`` (a 1-D int64 tensor on the matrix's device), in
        that order, as sparse features: their stored entries are gathered,
        in time proportional to their number (``index_select`` on a sparse
        tensor visits every entry: four times slower on a news20-shaped
        matrix for a batch of 64 documents, its coalescing included)."""
        starts = self.row_starts[rows]
        lengths = self.row_starts[rows + 1] - starts
        n_entries = int(lengths.sum())
        selected_starts = torch.cumsum(lengths, 0) - lengths
        # Entry k of the selection is entry k - selected_starts[r] + starts[r]
        # of the matrix, r being the selected row it falls in.
        entries = torch.repeat_interleave(
            starts - selected_starts, lengths, output_size=n_entries
        ) + torch.arange(n_entries, device=rows.device)
        new_rows = torch.repeat_interleave(
            torch.arange(len(rows), device=rows.device), lengths,
            output_size=n_entries)
        # Rows in order, columns sorted within each: valid and coalesced by
        # construction, so the invariant checks (a pass over the entries)
        # are skipped.
        matrix = torch.sparse_coo_tensor(
            torch.stack([new_rows, self.matrix.indices()[1][entries]]),
            self.matrix.values()[entries],
            (len(rows), self.matrix.shape[1]), device=rows.device,
            is_coalesced=True, check_invariants=False)
        selected = SparseFeatures.__new__(SparseFeatures)
        selected.matrix = matrix
        selected.matrix_t = matrix.t().coalesce()
        selected.row_starts = torch.cat(
            [selected_starts, selected_starts.new_tensor([n_entries])])
        return selected

    def to(self, device, dtype):
        moved = SparseFeatures.__new__(SparseFeatures)
        moved.matrix = self.matrix.to(device=device, dtype=dtype)
        moved.matrix_t = self.matrix_t.to(device=device, dtype=dtype)
        moved.row_starts = (None if self.row_starts is None
                            else self.row_starts.to(device=device))
        return moved


def row_starts(matrix):
    """Position of each row's first entry among the stored entries of a
    coalesced COO matrix (sorted by row), and the number of entries last:
    row i's entries are ``row_starts[i]:row_starts[i + 1]``."""
    counts = torch.bincount(matrix.indices()[0], minlength=matrix.shape[0])
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
