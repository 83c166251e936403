"""Krylov subspace methods for  A v = b  with A symmetric positive definite.

The Lanczos recurrence lives here once: LancBiO extends it by one vector per
outer iteration with the current Hessian, and the reference metrics use
conjugate gradient, which is the same method written with short recurrences.
"""
import torch


def conjugate_gradient(matvec, b, x0=None, tol=None, max_iter=None,
                       preconditioner=None, rtol=None):
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
    rtol : float or None
        Instead of ``tol``: stop once ``||b - A x|| <= rtol ||b||``. ``||b||``
        is read back with the first residual norm, in one host read: the
        same stopping test as ``tol=rtol * float(||b||)``, one read fewer.

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
    b_norm = None if rtol is None else torch.linalg.vector_norm(b)
    for _ in range(max_iter):
        if b_norm is not None:
            # Each read of a device value waits for the device: the
            # tolerance's scale comes back with the first residual.
            rr_value, b_norm_value = torch.stack([rr, b_norm]).tolist()
            tol, b_norm = rtol * b_norm_value, None
            if rr_value ** 0.5 <= tol:
                break
        elif tol is not None and float(rr) ** 0.5 <= tol:
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

    **Cost that does not grow with j.** The basis lives in one tensor of
    ``max_dim + 1`` rows allocated once (:meth:`restart` starts again in
    the same storage), and T_j in its factorisation T_j = L D L^T (L unit
    lower bidiagonal, D the pivots), with the inverse of L kept in a dense
    ``max_dim x max_dim`` tensor: the new row of L^-1 is the previous one
    times the new multiplier, one vector operation per step, all written
    on the device. So projecting a vector on the basis, recombining
    ``Q_j z``, the orthogonality check and ``T_j^-1 r = L^-T D^-1 L^-1 r``
    are one matrix-vector product each. That is the Thomas algorithm (the
    same factorisation, the same multipliers and pivots) with each of its
    O(j) dependent scalar steps, each a kernel launch on a GPU, replaced by
    a product of O(j^2) operations, which at the j of a few tens costs less
    than one product with the problem's data; a dense ``solve_ex`` or
    ``cholesky_ex`` of T_j would refactorise it at every call, in more
    kernels, and a triangular solve costs LAPACK's call overhead on the
    CPU. So a step costs a fixed number of tensor operations, whatever j.

    **Host synchronisations**: each :meth:`extend` reads beta_{j+1}, the
    pivot (and the overlap) back together, once, to decide whether the
    process stops; the first step after a (re)start reads the norm of the
    start vector in the same read, so a restart reads nothing. In LancBiO
    that is one read per outer iteration, restart or not, and nothing else
    is read back. The price: a zero start vector (the system is already
    solved) is only found after its first matvec, which is then spent on
    a zero vector.

    Parameters
    ----------
    start : tensor
        Starting vector, usually a residual ``r_0 = b - A v_0``.
    max_dim : int or None
        The largest dimension the subspace may reach (its basis is
        allocated for it); None: the size of ``start``.
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

    def __init__(self, start, max_dim=None, breakdown_tol=1e-14,
                 orthogonality_tol=None):
        self.max_dim = start.numel() if max_dim is None else max_dim
        self.breakdown_tol = breakdown_tol
        self.orthogonality_tol = orthogonality_tol
        # Row i holds q_{i+1}; only the first n_vectors rows are in use.
        self._basis = start.new_empty(self.max_dim + 1, start.numel())
        # Row j - 1: alpha_j, beta_{j+1}, the pivot d_j of T_j = L D L^T,
        # then what the step that wrote it read back with them: the norm
        # of the start (first row only) and the overlap.
        self._terms = start.new_empty(self.max_dim, 5)
        # L^-1: each step writes the strictly lower part of its row from
        # zeros, so the unit diagonal and the zeros above it serve every
        # restart.
        self._lower_inverse = torch.eye(self.max_dim, dtype=start.dtype,
                                        device=start.device)
        self._zeros = start.new_zeros(self.max_dim)
        self._tiny = torch.finfo(start.dtype).tiny
        self.restart(start)

    def restart(self, start):
        """Start the process again from ``start`` (of the same size), in
        the storage it already has. Nothing is read back: the first
        :meth:`extend` reads ``||start||`` with its own terms."""
        self.start_norm = torch.linalg.vector_norm(start)
        self.exhausted = False
        self.lost_orthogonality = self.lost_definiteness = False
        # beta_{j+1}, which couples q_j to the newest vector, and the last
        # pivot d_j.
        self._beta = self._pivot = None
        self.dim, self.n_vectors = 0, 1
        # q_1 = start / ||start||. The norm is floored at the smallest
        # normal number so that a zero start gives q_1 = 0 instead of NaN:
        # the first step then finds the zero norm and stops.
        torch.div(start, self.start_norm.clamp_min(self._tiny),
                  out=self._basis[0])
        self._breakdown_level = None

    @property
    def basis(self):
        """The vectors held, q_1, q_2, ..., as the rows of a tensor (one
        more than ``dim`` while the process grows)."""
        return self._basis[:self.n_vectors]

    @property
    def alphas(self):
        """The diagonal alpha_1..alpha_j of T_j."""
        return self._terms[:self.dim, 0]

    @property
    def betas(self):
        """The off-diagonal beta_2..beta_j of T_j."""
        return self._terms[:max(self.dim - 1, 0), 1]

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
        The first step after a zero start spends its matvec on the zero
        vector, finds the zero norm and stops, the subspace still {0}.
        """
        if self.stopped:
            return False
        j = self.dim
        if j == self.max_dim:
            raise ValueError(
                f"The Lanczos basis is full ({self.max_dim} vectors): "
                "restart the process, or give it a larger max_dim.")
        q = self._basis[j]
        w = matvec(q)
        if j > 0:
            w = torch.addcmul(w, self._beta, self._basis[j - 1], value=-1)
        alpha = torch.dot(q, w)
        w = torch.addcmul(w, alpha, q, value=-1)
        beta = torch.linalg.vector_norm(w)
        if j == 0:
            pivot = alpha
        else:
            # The multiplier l_j = beta_j / d_{j-1} of L, and
            # d_j = alpha_j - beta_j l_j.
            multiplier = self._beta / self._pivot
            pivot = torch.addcmul(alpha, self._beta, multiplier, value=-1)
        terms = [alpha, beta, pivot]
        if j == 0:
            terms.append(self.start_norm)
        if self.orthogonality_tol is not None:
            # max_i |q_i^T w|, compared with tol * beta on the host.
            terms.append(torch.linalg.vector_norm(
                self._basis[:j + 1] @ w, ord=float("inf")))
        # Written in place as row j of the terms (kept only if the step is
        # taken), then read back: the one host synchronisation per step.
        # A vanishing beta means Q_j spans an invariant subspace and the
        # next vector would be noise divided by round-off.
        row = torch.stack(terms, out=self._terms[j, :len(terms)])
        _, beta_value, pivot_value, *rest = row.tolist()
        if j == 0:
            start_norm, *rest = rest
            if start_norm < self._tiny:
                # A zero start: the system is already solved, the subspace
                # is {0} and the process never grows.
                self.exhausted = True
                return True
            self._breakdown_level = self.breakdown_tol * start_norm
        overlap = rest
        if not pivot_value > 0:
            self.lost_definiteness = True
            return True
        if j > 0:
            # Row j of L^-1: minus l_j times row j - 1, before the diagonal.
            torch.addcmul(self._zeros[:j], self._lower_inverse[j - 1, :j],
                          multiplier, value=-1,
                          out=self._lower_inverse[j, :j])
        self._pivot = pivot
        self.dim = j + 1
        if beta_value <= self._breakdown_level:
            self.exhausted = True
        elif overlap and overlap[0] > self.orthogonality_tol * beta_value:
            self.lost_orthogonality = True
        else:
            self._beta = beta
            torch.div(w, beta, out=self._basis[j + 1])
            self.n_vectors = j + 2
        return True

    def ritz_values(self):
        """The eigenvalues of T_j, ascending: Rayleigh quotients of the
        operator on the basis, so with one operator the smallest is an
        upper bound on its smallest eigenvalue (Cauchy's interlacing), and
        the Lanczos estimate of it (Golub and Van Loan, *Matrix
        Computations*, Section 10.1). After a step refused because it
        made T_j indefinite (``lost_definiteness``), those of the
        T_{j+1} that step found, whose smallest is <= 0: the operator is
        not positive definite."""
        n = self.dim + int(self.lost_definiteness)
        off_diagonal = self._terms[:n - 1, 1]
        tridiagonal = (torch.diag(self._terms[:n, 0])
                       + torch.diag(off_diagonal, 1)
                       + torch.diag(off_diagonal, -1))
        return torch.linalg.eigvalsh(tridiagonal)

    def project(self, vector):
        """Coordinates ``Q_j^T vector`` of a vector in the current basis."""
        return self._basis[:self.dim] @ vector

    def solve(self, rhs, add_to=None):
        """Return ``Q_j T_j^{-1} rhs`` for ``rhs`` given in the basis
        coordinates (a tensor of j entries), plus ``add_to`` if given (in
        the same product); zero (or ``add_to``) when j = 0."""
        j = self.dim
        if j == 0:
            return torch.zeros_like(self._basis[0]) if add_to is None else (
                add_to)
        # T_j^-1 rhs = L^-T D^-1 L^-1 rhs.
        lower_inverse = self._lower_inverse[:j, :j]
        coefficients = lower_inverse.T @ (
            (lower_inverse @ rhs) / self._terms[:j, 2])
        if add_to is None:
            return self._basis[:j].T @ coefficients
        return torch.addmv(add_to, self._basis[:j].T, coefficients)

    def solution(self):
        """``Q_j T_j^{-1} (||start|| e_1)``: the Galerkin solution of
        ``A d = start`` in the current subspace."""
        rhs = torch.zeros(self.dim, dtype=self._basis.dtype,
                          device=self._basis.device)
        if self.dim:
            rhs[0] = self.start_norm
        return self.solve(rhs)


class RestartedLanczos:
    """LancBiO's estimate of the solution of A_k v = b_k (Yang, Gao and
    Yuan, *LancBiO*, ICLR 2025, Algorithm 2): one dynamic Lanczos step per
    outer iteration, with that iteration's Hessian A_k, from a process
    restarted from the residual of the current estimate v_bar once its
    basis has m vectors (or has stopped), and the residual correction

        v_k = v_bar + Q_j T_j^{-1} Q_j^T (b_k - A v_bar),

    with the current b_k and the product A v_bar kept from the restart.
    One :class:`LanczosProcess`, allocated here for ``max_dim`` vectors
    (the largest m of the run) of the size, dtype and device of ``like``,
    serves every restart; ``orthogonality_tol`` is passed to it.

    ``residual_correction=False`` restarts from b_k itself (v_bar = 0, no
    product at a restart), so that v_k = Q_j T_j^{-1} Q_j^T b_k: LancBiO in
    the stochastic setting, where a product A v_bar on one minibatch would
    be a stale, noisy residual for the batches that follow (the LancBiO
    authors' stochastic code drops the correction too).
    """

    def __init__(self, like, max_dim, orthogonality_tol=None,
                 residual_correction=True):
        self.residual_correction = residual_correction
        # Allocated from a zero start, which the first step replaces.
        self.process = LanczosProcess(
            torch.zeros_like(like), max_dim=max_dim,
            orthogonality_tol=orthogonality_tol)
        self.started = False
        self.v_bar = self.a_v_bar = None
        self.steps_since_restart = 0

    def step(self, hessian, b, v, m, restart=None):
        """One outer iteration: ``v_k`` from ``v_{k-1} = v``, the current
        ``hessian`` (a matvec) and ``b``, with at most ``m`` vectors
        (``m <= max_dim``).

        ``restart``: None restarts once the basis holds m vectors (the
        LancBiO paper's Algorithm 2); a bool restarts on a calendar of the
        caller's (the authors' code), which must keep the basis within
        ``max_dim``. Either way, the first step and a stopped process
        restart."""
        if restart is None:
            restart = self.process.dim >= m
        restart = restart or not self.started or self.process.stopped
        self.started = True
        if restart and self.residual_correction:
            self.v_bar, self.a_v_bar = v, hessian(v)
        residual = b if self.a_v_bar is None else b - self.a_v_bar
        if restart:
            self.process.restart(residual)
            self.steps_since_restart = 0
        self.process.extend(hessian)
        self.steps_since_restart += 1
        return self.process.solve(self.process.project(residual),
                                  add_to=self.v_bar)


def two_dimensional_galerkin(b, a_b, u, a_u):
    """The minimiser of  1/2 v^T A v - b^T v  over span{b, u}, given the
    products ``a_b = A b`` and ``a_u = A u`` (no product with A here).

    The subspace gets the orthonormal basis W = [w1, w2] (Gram-Schmidt of b
    and u), whose products A W follow from the given ones by linearity;
    the projected 2x2 system (W^T A W) s = W^T b is solved by Cramer's
    rule, a few scalar operations on the device, nothing read back. A
    degenerate subspace keeps the one-dimensional Galerkin solution along
    b, as a pseudo-inverse would: u parallel to b (as at the start, where
    v = 0 gives u = 0), whose component off b is then round-off noise, is
    dropped (w2 = 0) below the rank tolerance of a pseudo-inverse of
    [b, u] (the size of b times eps, relative); a 2x2 system that is not
    positive definite to working precision gives that solution too (zero
    if b^T A b <= 0). b = 0 gives 0. This is the v-update of SubBiO (Yang,
    Gao and Yuan, *LancBiO*, ICLR 2025, Algorithm 1).

    No autograd goes through it: each ``torch.where`` takes its branch
    without guarding the other one's division by zero.
    """
    eps = torch.finfo(b.dtype).eps
    norm_b = torch.linalg.vector_norm(b).clamp_min(torch.finfo(b.dtype).tiny)
    w1, a_w1 = b / norm_b, a_b / norm_b
    along = torch.dot(w1, u)
    r = torch.addcmul(u, along, w1, value=-1)
    a_r = torch.addcmul(a_u, along, a_w1, value=-1)
    # With u parallel to b, r is the round-off of u - <w1, u> w1: at most
    # about the size of b times eps ||u||, and ||u|| = |<w1, u>|.
    norm_r = torch.linalg.vector_norm(r)
    independent = norm_r > (b.numel() * eps) * along.abs()
    norm_r = torch.where(independent, norm_r, torch.inf)
    w2, a_w2 = r / norm_r, a_r / norm_r
    # [[p, q], [q, t]] s = [c1, c2]
    p, t = torch.dot(w1, a_w1), torch.dot(w2, a_w2)
    q = 0.5 * (torch.dot(w1, a_w2) + torch.dot(w2, a_w1))
    c1, c2 = torch.dot(w1, b), torch.dot(w2, b)
    # Singular below a ratio of its eigenvalues of about 2 eps (the
    # determinant to the squared trace), where a pseudo-inverse with its
    # default tolerance would drop the smaller one.
    determinant = p * t - q * q
    regular = determinant > 2 * eps * (p + t) ** 2
    s1 = torch.where(regular, (t * c1 - q * c2) / determinant,
                     torch.where(p > 0, c1 / p, 0.0))
    s2 = torch.where(regular, (p * c2 - q * c1) / determinant, 0.0)
    return torch.addcmul(s1 * w1, s2, w2)


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
