"""LancBiO, SubBiO and SOBA written by hand: the floor the solvers are timed
against (``scripts/handwritten_speed.py``, ``scripts/small_problem_cost.py``).

Each method is one outer iteration in plain tensor operations, with the
derivatives of the problem written out by hand (no oracle layer, no
counters, no solver base class) and the same algorithm, parameters and
step sizes as the benchmark's solver in full batch; :func:`handwritten`
builds one from a solver that ``set_objective`` has set up, so that both
start from the same point and take the same steps, and their iterates
agree to round-off (``tests/test_speed_scripts.py``).

Derivatives are written for two problems:

- the LancBiO paper's synthetic problem (Yang, Gao and Yuan, *LancBiO*,
  ICLR 2025, Section 4.1), :class:`SyntheticDerivatives`;
- the quickstart's quadratic, :class:`QuadraticDerivatives`.

The Lanczos part of LancBiO keeps its basis in one tensor allocated once,
and solves the tridiagonal system through the conjugate directions of the
basis (Saad, *Iterative Methods for Sparse Linear Systems*, 2nd ed., 2003,
Section 6.7.1, D-Lanczos): with ``T_j = L D L^T``, the rows of
``P_j = D^{-1/2} L^{-1} Q_j^T`` follow from one another by one vector
update, and ``Q_j T_j^{-1} Q_j^T r = P_j^T (P_j r)`` takes two
matrix-vector products with a ``j x n`` matrix, whatever ``j``.
"""
import math

import torch

from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem

#: Relative size of beta_{j+1} (to the norm of the start vector) under which
#: the Krylov subspace is taken as invariant: the benchmark's
#: ``LanczosProcess`` default.
BREAKDOWN_TOL = 1e-14


class SyntheticDerivatives:
    """Derivatives of the LancBiO paper's synthetic problem (Section 4.1)

        f(x, y) = c1 cos(x^T D1 y) + 1/2 ||D2 x - y||^2
        g(x, y) = c2 sum sin(x + y) + logsumexp(x * y) + 1/2 y^T (D3 + G) y

    written out by hand. With p = softmax(x * y), whose Hessian in z = x * y
    is diag(p) - p p^T, and s = sin(x + y):

        d_y g        = c2 cos(x + y) + x p + D3 y + G y
        d_x f, d_y f = a D1 y + D2 r,  a D1 x - r
                       (a = -c1 sin(x^T D1 y), r = D2 x - y)
        d2_yy g v    = (D3 - c2 s) v + x p (x v - <p, x v>) + G v
        d2_xy g v    = (p - c2 s) v + y p (x v - <p, x v>)

    Each gradient of g and each HVP takes one product with G; f and the
    cross product take none.
    """

    def __init__(self, problem):
        self.c1, self.c2 = problem.c1, problem.c2
        self.d1, self.d2, self.d3 = problem.d1, problem.d2, problem.d3
        self.gram = problem.gram

    def grad_inner(self, x, y):
        softmax = torch.softmax(x * y, dim=0)
        gradient = torch.cos(x + y).mul_(self.c2)
        gradient.addcmul_(x, softmax).addcmul_(self.d3, y)
        return torch.addmv(gradient, self.gram, y)

    def grad_outer(self, x, y):
        d1_y = self.d1 * y
        a = torch.sin(torch.dot(x, d1_y)).mul_(-self.c1)
        minus_r = torch.addcmul(y, self.d2, x, value=-1)
        return (torch.addcmul(a * d1_y, self.d2, minus_r, value=-1),
                torch.addcmul(minus_r, a * self.d1, x))

    def _centred(self, x, y, v):
        """sin(x + y), softmax(x * y) and x v - <p, x v>."""
        softmax = torch.softmax(x * y, dim=0)
        x_v = x * v
        return (torch.sin(x + y), softmax,
                x_v.sub_(torch.dot(softmax, x_v)))

    def _hvp(self, x, v, sine, softmax, centred):
        product = torch.add(self.d3, sine, alpha=-self.c2).mul_(v)
        product.addcmul_(x * softmax, centred)
        return torch.addmv(product, self.gram, v)

    def _cross(self, y, v, sine, softmax, centred):
        product = torch.add(softmax, sine, alpha=-self.c2).mul_(v)
        return product.addcmul_(y * softmax, centred)

    def hvp(self, x, y, v):
        return self._hvp(x, v, *self._centred(x, y, v))

    def cross(self, x, y, v):
        return self._cross(y, v, *self._centred(x, y, v))

    def hvp_and_cross(self, x, y, v):
        terms = self._centred(x, y, v)
        return self._hvp(x, v, *terms), self._cross(y, v, *terms)


class QuadraticDerivatives:
    """Derivatives of the quadratic problem

        g(x, y) = 1/2 y^T H y + y^T B x + c^T y
        f(x, y) = 1/2 ||y - t||^2 + rho/2 ||x||^2

    by hand: d_y g = H y + B x + c, d_x f = rho x, d_y f = y - t,
    d2_yy g v = H v, d2_xy g v = B^T v."""

    def __init__(self, problem):
        self.hessian, self.coupling = problem.hessian, problem.coupling
        self.coupling_t = problem.coupling.T.contiguous()
        self.shift, self.target = problem.shift, problem.target
        self.rho = problem.rho

    def grad_inner(self, x, y):
        return torch.addmv(torch.addmv(self.shift, self.hessian, y),
                           self.coupling, x)

    def grad_outer(self, x, y):
        return self.rho * x, y - self.target

    def hvp(self, x, y, v):
        return torch.mv(self.hessian, v)

    def cross(self, x, y, v):
        return torch.mv(self.coupling_t, v)

    def hvp_and_cross(self, x, y, v):
        return self.hvp(x, y, v), self.cross(x, y, v)


DERIVATIVES = {SyntheticProblem: SyntheticDerivatives,
               QuadraticProblem: QuadraticDerivatives}


def inner_steps(derivatives, x, y, n_steps, step_size):
    """``n_steps`` gradient steps y <- y - step_size d_y g(x, y)."""
    for _ in range(n_steps):
        y = torch.add(y, derivatives.grad_inner(x, y), alpha=-step_size)
    return y


class HandwrittenMethod:
    """An outer iteration is :meth:`step`, which moves ``x``, ``y`` and
    ``v``."""

    def run(self, n_iterations):
        for _ in range(n_iterations):
            self.step()


class HandwrittenSOBA(HandwrittenMethod):
    """SOBA (Dagréou, Ablin, Vaiter and Moreau, NeurIPS 2022, Algorithm 1)
    in full batch with constant steps: y, v and x move at once along
    D_y = d_y g, D_v = A v - d_y f and D_x = d_x f - d2_xy g v, all at
    (x_k, y_k, v_k)."""

    def __init__(self, derivatives, x, y, inner_step, outer_step):
        self.derivatives = derivatives
        self.x, self.y, self.v = x.clone(), y.clone(), torch.zeros_like(y)
        self.inner_step, self.outer_step = inner_step, outer_step

    def step(self):
        d, x, y, v = self.derivatives, self.x, self.y, self.v
        grad_y_g = d.grad_inner(x, y)
        grad_x_f, grad_y_f = d.grad_outer(x, y)
        hvp, cross = d.hvp_and_cross(x, y, v)
        self.x = torch.add(x, grad_x_f.sub_(cross), alpha=-self.outer_step)
        self.y = torch.add(y, grad_y_g, alpha=-self.inner_step)
        self.v = torch.add(v, hvp.sub_(grad_y_f), alpha=-self.inner_step)


class HandwrittenSubBiO(HandwrittenMethod):
    """SubBiO (Yang, Gao and Yuan, *LancBiO*, ICLR 2025, Algorithm 1) in
    full batch: T inner steps, then v_k minimises 1/2 v^T A v - b^T v over
    span{b, (I - eta A) v_{k-1}} (three HVPs: A b, A v, A A v), then the
    x-step with the cross product."""

    def __init__(self, derivatives, x, y, n_inner_steps, inner_step,
                 linsys_step, outer_step):
        self.derivatives = derivatives
        self.x, self.y, self.v = x.clone(), y.clone(), torch.zeros_like(y)
        self.n_inner_steps, self.inner_step = n_inner_steps, inner_step
        self.linsys_step, self.outer_step = linsys_step, outer_step

    def step(self):
        d, x = self.derivatives, self.x
        y = inner_steps(d, x, self.y, self.n_inner_steps, self.inner_step)
        grad_x_f, b = d.grad_outer(x, y)
        a_b, a_v = d.hvp(x, y, b), d.hvp(x, y, self.v)
        a_a_v = d.hvp(x, y, a_v)
        u = torch.add(self.v, a_v, alpha=-self.linsys_step)
        a_u = torch.add(a_v, a_a_v, alpha=-self.linsys_step)
        v = galerkin_on_two_vectors(b, a_b, u, a_u)
        self.x = torch.add(x, grad_x_f.sub_(d.cross(x, y, v)),
                           alpha=-self.outer_step)
        self.y, self.v = y, v


def galerkin_on_two_vectors(b, a_b, u, a_u):
    """argmin of 1/2 v^T A v - b^T v over span{b, u}, from A b and A u.

    In the orthonormal basis w1 = b / ||b||, w2 = r / ||r|| with
    r = u - <w1, u> w1, the right-hand side is (||b||, 0), so the solution
    of the 2 x 2 system [[p, q], [q, t]] s = (||b||, 0) is
    s = ||b|| (t, -q) / (p t - q^2). When u adds no direction (v = 0 at the
    start, u parallel to b: r is then round-off, at most about the size of
    b times eps |<w1, u>|), w2 is dropped, the determinant vanishes and the
    one-dimensional solution ||b|| / p along w1 is kept; nothing is read
    back to the host.
    """
    eps = torch.finfo(b.dtype).eps
    norm_b = torch.linalg.vector_norm(b).clamp_min(torch.finfo(b.dtype).tiny)
    w1, a_w1 = b / norm_b, a_b / norm_b
    along = torch.dot(w1, u)
    r = torch.addcmul(u, along, w1, value=-1)
    norm_r = torch.linalg.vector_norm(r)
    norm_r = torch.where(norm_r > (b.numel() * eps) * along.abs(), norm_r,
                         torch.inf)
    w2 = r.div_(norm_r)
    a_w2 = torch.addcmul(a_u, along, a_w1, value=-1).div_(norm_r)
    p, q, t = torch.dot(w1, a_w1), torch.dot(w1, a_w2), torch.dot(w2, a_w2)
    determinant = p * t - q * q
    regular = determinant > 2 * torch.finfo(b.dtype).eps * (p + t) ** 2
    safe_determinant = torch.where(regular, determinant, 1.0)
    safe_p = torch.where(p > 0, p, 1.0)
    s1 = torch.where(regular, norm_b * t / safe_determinant,
                     torch.where(p > 0, norm_b / safe_p, 0.0))
    s2 = torch.where(regular, -norm_b * q / safe_determinant, 0.0)
    return torch.addcmul(s1 * w1, s2, w2)


class HandwrittenLancBiO(HandwrittenMethod):
    """LancBiO (Yang, Gao and Yuan, *LancBiO*, ICLR 2025, Algorithm 2) in
    full batch, with the benchmark solver's safeguards.

    Per outer iteration: m grows by the schedule; T inner steps; b_k and
    d_x f; every m steps (or once the process stopped) a restart from the
    residual of v_bar = v_{k-1} (one extra HVP A v_bar); one dynamic
    Lanczos step with A_k = d2_yy g(x_k, y_{k+1}); the residual correction
    v_k = v_bar + Q_j T_j^{-1} Q_j^T (b_k - A v_bar); the x-step with the
    cross product. The process stops growing (and restarts at the next
    iteration) when beta_{j+1} vanishes, when a new vector overlaps the
    basis by more than ``orthogonality_tol`` (max_i |q_i^T w| >
    tol beta_{j+1}, w = beta_{j+1} q_{j+1}), or when alpha_j would make
    T_j indefinite, as the benchmark's ``LanczosProcess``.
    """

    def __init__(self, derivatives, x, y, n_inner_steps, inner_step,
                 outer_step, subspace_dim, schedule, orthogonality_tol,
                 n_warmup_steps=0):
        self.derivatives = derivatives
        self.x, self.y, self.v = x.clone(), y.clone(), torch.zeros_like(y)
        self.n_inner_steps, self.inner_step = n_inner_steps, inner_step
        self.outer_step, self.n_warmup_steps = outer_step, n_warmup_steps
        self.m, self.schedule = subspace_dim, schedule
        self.orthogonality_tol = orthogonality_tol
        self.n_outer = 0
        max_dim = schedule[0]
        # Row i: the Lanczos vector q_{i+1}, and the conjugate direction
        # p_{i+1} (module docstring).
        self.basis = y.new_empty(max_dim + 1, y.numel())
        self.directions = y.new_empty(max_dim, y.numel())
        self.tiny = torch.finfo(y.dtype).tiny
        self.dim, self.stopped = 0, True

    def restart(self, hessian, b):
        """Lanczos from r_0 = b - A v_bar, v_bar = v_{k-1}."""
        self.v_bar, self.a_v_bar = self.v, hessian(self.v)
        start = b - self.a_v_bar
        # Read back with the first step's terms; a zero start gives
        # q_1 = 0, which that step finds.
        self.start_norm = torch.linalg.vector_norm(start)
        torch.div(start, self.start_norm.clamp_min(self.tiny),
                  out=self.basis[0])
        self.dim, self.stopped = 0, False
        self.steps_since_restart = 0

    def extend(self, hessian):
        """beta_{j+1} q_{j+1} = A q_j - alpha_j q_j - beta_j q_{j-1}, and
        the new conjugate direction p_j = (q_j - (beta_j / sqrt(d_{j-1}))
        p_{j-1}) / sqrt(d_j), d_j = alpha_j - (beta_j / sqrt(d_{j-1}))^2
        the pivot of T_j = L D L^T; one host synchronisation."""
        j, q = self.dim, self.basis[self.dim]
        w = hessian(q)
        if j > 0:
            w.addcmul_(self.beta, self.basis[j - 1], value=-1)
        alpha = torch.dot(q, w)
        w.addcmul_(alpha, q, value=-1)
        beta = torch.linalg.vector_norm(w)
        if j == 0:
            coupling, pivot = None, alpha
        else:
            coupling = self.beta / self.root_pivot
            pivot = torch.addcmul(alpha, coupling, coupling, value=-1)
        terms = [beta, pivot]
        if j == 0:
            terms.append(self.start_norm)
        if self.orthogonality_tol is not None:
            terms.append(torch.linalg.vector_norm(
                self.basis[:j + 1] @ w, ord=math.inf))
        beta_value, pivot_value, *overlap = torch.stack(terms).tolist()
        if j == 0:
            start_norm, *overlap = overlap
            if start_norm < self.tiny:
                self.stopped = True
                return
            self.breakdown_level = BREAKDOWN_TOL * start_norm
        if not pivot_value > 0:
            self.stopped = True
            return
        self.root_pivot = torch.sqrt(pivot)
        if j == 0:
            torch.div(q, self.root_pivot, out=self.directions[0])
        else:
            torch.div(torch.addcmul(q, coupling, self.directions[j - 1],
                                    value=-1),
                      self.root_pivot, out=self.directions[j])
        self.dim = j + 1
        if (beta_value <= self.breakdown_level
                or (overlap
                    and overlap[0] > self.orthogonality_tol * beta_value)):
            self.stopped = True
        else:
            self.beta = beta
            torch.div(w, beta, out=self.basis[j + 1])

    def step(self):
        d, x = self.derivatives, self.x
        max_dim, growth, every = self.schedule
        if self.n_outer > 0 and self.n_outer % every == 0:
            self.m = min(math.ceil(growth * self.m), max_dim)
        y = inner_steps(d, x, self.y, self.n_inner_steps, self.inner_step)
        grad_x_f, b = d.grad_outer(x, y)

        def hessian(u):
            return d.hvp(x, y, u)
        if self.stopped or self.dim >= self.m:
            self.restart(hessian, b)
        if not self.stopped:
            self.extend(hessian)
        self.steps_since_restart += 1
        if self.dim:
            directions = self.directions[:self.dim]
            self.v = torch.addmv(self.v_bar, directions.T,
                                 directions @ (b - self.a_v_bar))
        else:
            self.v = self.v_bar
        if self.steps_since_restart > self.n_warmup_steps:
            self.x = torch.add(x, grad_x_f.sub_(d.cross(x, y, self.v)),
                               alpha=-self.outer_step)
        self.y = y
        self.n_outer += 1


def handwritten(solver):
    """The hand-written twin of a LancBiO, SubBiO or SOBA solver set up by
    ``set_objective`` (full batch, constant steps), on the synthetic or the
    quadratic problem, from the solver's start and resolved steps."""
    problem = solver.oracles.problem
    derivatives = DERIVATIVES[type(problem)](problem)
    if solver.batch_size != "full":
        raise ValueError("The hand-written methods are full batch.")
    start = (derivatives, solver.x0, solver.y0)
    if solver.name == "SOBA":
        if solver.decay_inner or solver.decay_outer:
            raise ValueError("The hand-written SOBA has constant steps.")
        return HandwrittenSOBA(*start, solver.inner_step, solver.outer_step)
    if solver.name == "SubBiO":
        return HandwrittenSubBiO(*start, solver.n_inner_steps,
                                 solver.inner_step, solver.linsys_step,
                                 solver.outer_step)
    if solver.name == "LancBiO":
        return HandwrittenLancBiO(
            *start, solver.n_inner_steps, solver.inner_step,
            solver.outer_step, solver.subspace_dim, solver.schedule,
            solver.orthogonality_tol, solver.n_warmup_steps)
    raise ValueError(f"No hand-written {solver.name}.")
