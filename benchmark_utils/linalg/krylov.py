"""Krylov subspace methods for  A v = b  with A symmetric positive definite.

The Lanczos recurrence lives here once: LancBiO extends it by one vector per
outer iteration with the current Hessian, and the reference metrics use
conjugate gradient, which is the same method written with short recurrences.
"""
import torch


def conjugate_gradient(matvec, b, x0=None, tol=None, max_iter=None,
                       preconditioner=None):
    """Conjugate gradient on  A x = b  (Hestenes and Stiefel, 1952), with an
    optional preconditioner (Golub and Van Loan, *Matrix Computations*,
    Algorithm 11.5.1).

    Parameters
    ----------
    matvec : callable
        ``v -> A v``.
    b : tensor
        Right-hand side.
    x0 : tensor or None
        Starting point (zero if None; a non-zero start costs one more matvec).
    tol : float or None
        Stop once the recursive residual norm ``||b - A x||`` is <= ``tol``
        (the residual of the system itself, preconditioned or not). None
        runs exactly ``max_iter`` steps without reading any scalar back from
        the device.
    max_iter : int or None
        Maximum number of steps (default: the dimension of ``b``).
    preconditioner : callable or None
        ``r -> M^-1 r`` for a symmetric positive definite ``M`` close to
        ``A`` whose inverse is cheap; None: plain CG, whose steps are
        exactly the ones of the unpreconditioned recurrence.

    Returns
    -------
    x : tensor
        The last iterate.
    n_matvec : int
        Matrix-vector products spent.
    """
    max_iter = b.numel() if max_iter is None else max_iter
    n_matvec = 0
    if x0 is None:
        x = torch.zeros_like(b)
        residual = b.clone()
    else:
        x = x0.clone()
        residual = b - matvec(x)
        n_matvec += 1
    rr = torch.dot(residual, residual)
    # z = M^-1 r and <r, z>; without a preconditioner, r and <r, r>.
    preconditioned, rz = residual, rr
    if preconditioner is not None:
        preconditioned = preconditioner(residual)
        rz = torch.dot(residual, preconditioned)
    direction = preconditioned.clone()
    for _ in range(max_iter):
        if tol is not None and float(rr) ** 0.5 <= tol:
            break
        a_direction = matvec(direction)
        n_matvec += 1
        # An exactly solved system (zero residual) gives 0 / 0: the guards
        # turn it into a zero step without reading anything back.
        curvature = torch.dot(direction, a_direction)
        step = torch.where(curvature != 0, rz / curvature, 0.0)
        # addcmul fuses each update into one pass over the vectors (the
        # scalars stay on the device): with cheap products, these passes
        # are most of CG's own time.
        x = torch.addcmul(x, step, direction)
        residual = torch.addcmul(residual, step, a_direction, value=-1)
        rr = torch.dot(residual, residual)
        preconditioned, rz_next = residual, rr
        if preconditioner is not None:
            preconditioned = preconditioner(residual)
            rz_next = torch.dot(residual, preconditioned)
        direction = torch.addcmul(
            preconditioned, torch.where(rz != 0, rz_next / rz, 0.0),
            direction)
        rz = rz_next
    return x, n_matvec


def solve_tridiagonal(diagonal, off_diagonal, rhs):
    """Solve  T z = rhs  for a symmetric tridiagonal T in O(k) operations.

    Thomas algorithm (Gaussian elimination without pivoting), stable for the
    positive definite T that the Lanczos process gives for an SPD matrix.
    The entries stay on the device: nothing is read back to the host.

    Parameters
    ----------
    diagonal : sequence of k scalar tensors
    off_diagonal : sequence of k - 1 scalar tensors
    rhs : sequence of k scalar tensors
    """
    k = len(diagonal)
    upper = [None] * k      # modified super-diagonal
    forward = [None] * k    # modified right-hand side
    pivot = diagonal[0]
    forward[0] = rhs[0] / pivot
    for i in range(1, k):
        upper[i - 1] = off_diagonal[i - 1] / pivot
        pivot = diagonal[i] - off_diagonal[i - 1] * upper[i - 1]
        forward[i] = (rhs[i] - off_diagonal[i - 1] * forward[i - 1]) / pivot
    solution = [None] * k
    solution[k - 1] = forward[k - 1]
    for i in range(k - 2, -1, -1):
        solution[i] = forward[i] - upper[i] * solution[i + 1]
    return torch.stack(solution)


class LanczosProcess:
    """Symmetric Lanczos process started from a vector ``start``.

    After ``j`` calls to :meth:`extend` it holds the orthonormal basis
    ``Q_j = [q_1, ..., q_j]`` of the Krylov subspace and the tridiagonal
    ``T_j = Q_j^T A Q_j`` (diagonal ``alphas``, off-diagonal ``betas``), with
    the three-term recurrence

        beta_{j+1} q_{j+1} = A q_j - alpha_j q_j - beta_j q_{j-1}.

    Each :meth:`extend` takes its own ``matvec``: LancBiO extends the basis
    with the Hessian of the current outer iterate (LancBiO paper, Section
    3.2, the *dynamic* Lanczos process); with a fixed matrix this is the
    classical process, and :meth:`solution` then equals the CG iterate.

    Parameters
    ----------
    start : tensor
        Starting vector, usually a residual ``r_0 = b - A v_0``.
    breakdown_tol : float
        Relative size of ``beta_{j+1}`` (to ``||start||``) under which the
        subspace is taken as invariant and the process stops growing.
    orthogonality_tol : float or None
        Largest ``|q_i^T q_{j+1}|`` (i <= j) accepted for a new vector: past
        it, the vector is not added and the process stops growing
        (``lost_orthogonality``). With one matrix, round-off alone loses
        orthogonality slowly; with a matrix that changes at every step (the
        dynamic process) the three-term recurrence no longer orthogonalises
        a new vector against the older ones, and once they overlap T_j
        stops describing the current matrix. None: no check (the classical
        process, as CG).

    Whatever the tolerances, a step whose alpha_j would make T_j
    indefinite (a pivot of its LDL^T factorisation at or below 0) is not
    taken and the process stops growing (``lost_definiteness``): with one
    SPD matrix T_j is SPD, but a basis built with different matrices (the
    dynamic process, and more so with a different minibatch at each step)
    can give an indefinite T_j, whose Galerkin solution is meaningless and
    can be arbitrarily large.
    """

    def __init__(self, start, breakdown_tol=1e-14, orthogonality_tol=None):
        self.start_norm = torch.linalg.vector_norm(start)
        self.orthogonality_tol = orthogonality_tol
        self.lost_orthogonality = False
        self.lost_definiteness = False
        # The last pivot d_j = alpha_j - beta_j^2 / d_{j-1} of T_j = L D L^T.
        self._pivot = None
        self.alphas = []
        self.betas = []   # betas[i] = beta_{i+2} couples q_{i+1} and q_{i+2}
        self._zero = torch.zeros_like(start)
        # A zero start vector means the system is already solved: the
        # subspace is {0}, and the process never grows.
        start_norm = float(self.start_norm)
        self.exhausted = start_norm == 0.0
        self.basis = [] if self.exhausted else [start / self.start_norm]
        # Read back once here, so that each step reads only beta.
        self._breakdown_level = breakdown_tol * start_norm

    @property
    def dim(self):
        """Dimension j of the current subspace (number of extend steps)."""
        return len(self.alphas)

    @property
    def stopped(self):
        """The subspace no longer grows: found invariant, its next vector
        lost orthogonality to the basis, or its next step would have made
        T_j indefinite."""
        return (self.exhausted or self.lost_orthogonality
                or self.lost_definiteness)

    def extend(self, matvec):
        """One Lanczos step: one matvec with the given operator.

        Returns False (and spends no matvec) when the process has stopped.
        """
        if self.stopped:
            return False
        q = self.basis[-1]
        w = matvec(q)
        if self.betas:
            w = w - self.betas[-1] * self.basis[-2]
        alpha = torch.dot(q, w)
        w = w - alpha * q
        beta = torch.linalg.vector_norm(w)
        pivot = alpha if self._pivot is None else (
            alpha - self.betas[-1] ** 2 / self._pivot)
        # Reading beta, the pivot (and the overlap) back is the one host
        # synchronisation per step: a vanishing beta means Q_j spans an
        # invariant subspace and the next vector would be noise divided by
        # round-off.
        if self.orthogonality_tol is None:
            beta_value, pivot_value = torch.stack([beta, pivot]).tolist()
        else:
            overlap = torch.linalg.vector_norm(
                torch.stack(self.basis) @ w, ord=float("inf")) / beta
            beta_value, pivot_value, overlap = torch.stack(
                [beta, pivot, overlap]).tolist()
        if not pivot_value > 0:
            self.lost_definiteness = True
            return True
        self.alphas.append(alpha)
        self._pivot = pivot
        if beta_value <= self._breakdown_level:
            self.exhausted = True
        elif (self.orthogonality_tol is not None
              and overlap > self.orthogonality_tol):
            self.lost_orthogonality = True
        else:
            self.betas.append(beta)
            self.basis.append(w / beta)
        return True

    def project(self, vector):
        """Coordinates ``Q_j^T vector`` of a vector in the current basis."""
        return [torch.dot(q, vector) for q in self.basis[:self.dim]]

    def solve(self, rhs):
        """Return ``Q_j T_j^{-1} rhs`` for ``rhs`` given in the basis
        coordinates (a length-j sequence of scalars); zero when j = 0."""
        j = self.dim
        if j == 0:
            return self._zero.clone()
        coefficients = solve_tridiagonal(self.alphas, self.betas[:j - 1], rhs)
        return sum(c * q for c, q in zip(coefficients, self.basis[:j]))

    def solution(self):
        """``Q_j T_j^{-1} (||start|| e_1)``: the Galerkin solution of
        ``A d = start`` in the current subspace."""
        rhs = [self.start_norm] + [torch.zeros_like(self.start_norm)] * (
            self.dim - 1)
        return self.solve(rhs)


class RestartedLanczos:
    """LancBiO's estimate of the solution of A_k v = b_k (Yang, Gao and
    Yuan, *LancBiO*, ICLR 2025, Algorithm 2): one dynamic Lanczos step per
    outer iteration, with that iteration's Hessian A_k, from a process
    restarted from the residual of the current estimate v_bar once its
    basis has m vectors (or has stopped), and the residual correction

        v_k = v_bar + Q_j T_j^{-1} Q_j^T (b_k - A v_bar),

    with the current b_k and the product A v_bar kept from the restart.
    ``orthogonality_tol`` is passed to each :class:`LanczosProcess`.

    ``residual_correction=False`` restarts from b_k itself (v_bar = 0, no
    product at a restart), so that v_k = Q_j T_j^{-1} Q_j^T b_k: LancBiO in
    the stochastic setting, where a product A v_bar on one minibatch would
    be a stale, noisy residual for the batches that follow (the LancBiO
    authors' stochastic code drops the correction too).
    """

    def __init__(self, orthogonality_tol=None, residual_correction=True):
        self.orthogonality_tol = orthogonality_tol
        self.residual_correction = residual_correction
        self.process = None

    def step(self, hessian, b, v, m):
        """One outer iteration: ``v_k`` from ``v_{k-1} = v``, the current
        ``hessian`` (a matvec) and ``b``, with at most ``m`` vectors."""
        if (self.process is None or self.process.dim >= m
                or self.process.stopped):
            if self.residual_correction:
                self.v_bar, self.a_v_bar = v, hessian(v)
            else:
                self.v_bar = self.a_v_bar = torch.zeros_like(b)
            self.process = LanczosProcess(
                b - self.a_v_bar, orthogonality_tol=self.orthogonality_tol)
            self.steps_since_restart = 0
        self.process.extend(hessian)
        self.steps_since_restart += 1
        return self.v_bar + self.process.solve(
            self.process.project(b - self.a_v_bar))


def two_dimensional_galerkin(b, a_b, u, a_u):
    """The minimiser of  1/2 v^T A v - b^T v  over span{b, u}, given the
    products ``a_b = A b`` and ``a_u = A u`` (no product with A here).

    The subspace gets the orthonormal basis W = [w1, w2] (Gram-Schmidt of b
    and u), whose products A W follow from the given ones by linearity;
    the projected 2x2 system (W^T A W) s = W^T b is solved with a
    pseudo-inverse, which keeps a degenerate subspace (u parallel to b)
    well defined. This is the v-update of SubBiO (Yang, Gao and Yuan,
    *LancBiO*, ICLR 2025, Algorithm 1).
    """
    tiny = torch.finfo(b.dtype).tiny
    norm_b = torch.linalg.vector_norm(b).clamp_min(tiny)
    w1, a_w1 = b / norm_b, a_b / norm_b
    along = torch.dot(w1, u)
    r, a_r = u - along * w1, a_u - along * a_w1
    norm_r = torch.linalg.vector_norm(r).clamp_min(tiny)
    w2, a_w2 = r / norm_r, a_r / norm_r
    off = 0.5 * (torch.dot(w1, a_w2) + torch.dot(w2, a_w1))
    projected = torch.stack([
        torch.stack([torch.dot(w1, a_w1), off]),
        torch.stack([off, torch.dot(w2, a_w2)]),
    ])
    s = torch.linalg.pinv(projected, hermitian=True) @ torch.stack(
        [torch.dot(w1, b), torch.dot(w2, b)])
    return s[0] * w1 + s[1] * w2


def largest_eigenvalue(matvec, start, n_iter=30):
    """Power-iteration estimate of the largest eigenvalue of an SPD operator
    (the Rayleigh quotient of the last iterate, a lower bound)."""
    vector = start / torch.linalg.vector_norm(start)
    estimate = torch.zeros((), dtype=start.dtype, device=start.device)
    for _ in range(n_iter):
        image = matvec(vector)
        estimate = torch.dot(vector, image)
        vector = image / torch.linalg.vector_norm(image)
    return float(estimate)
