"""Lanczos, conjugate gradient and the tridiagonal solve on fixed matrices."""
import pytest
import torch
from conftest import spd_matrix
from torch.utils._python_dispatch import TorchDispatchMode

from benchmark_utils.linalg.krylov import (LanczosProcess, RestartedLanczos,
                                           conjugate_gradient,
                                           largest_eigenvalue,
                                           two_dimensional_galerkin)
from benchmark_utils.testing.host_reads import HostReads


def test_lanczos_iterates_equal_conjugate_gradient_iterates():
    n = 30
    matrix, b = spd_matrix(n, 10.0, seed=0)
    lanczos = LanczosProcess(b)
    for j in range(1, n + 1):
        lanczos.extend(lambda u: matrix @ u)
        cg_iterate, n_matvec = conjugate_gradient(lambda u: matrix @ u, b,
                                                  max_iter=j)
        assert n_matvec == j
        torch.testing.assert_close(lanczos.solution(), cg_iterate,
                                   rtol=0, atol=1e-8)


def test_lanczos_residual_falls_below_tolerance_within_n_steps():
    n = 20
    matrix, b = spd_matrix(n, 100.0, seed=1)
    lanczos = LanczosProcess(b)
    residuals = []
    for _ in range(n):
        if not lanczos.extend(lambda u: matrix @ u):
            break
        residuals.append(float(torch.linalg.vector_norm(
            matrix @ lanczos.solution() - b)))
    assert min(residuals) < 1e-10
    assert lanczos.dim <= n


def test_lanczos_basis_is_orthonormal_and_tridiagonalises():
    matrix, b = spd_matrix(25, 10.0, seed=2)
    lanczos = LanczosProcess(b)
    for _ in range(8):
        lanczos.extend(lambda u: matrix @ u)
    basis = lanczos.basis[:8].T
    torch.testing.assert_close(basis.T @ basis, torch.eye(8), atol=1e-10,
                               rtol=0)
    tridiagonal = (torch.diag(lanczos.alphas)
                   + torch.diag(lanczos.betas, 1)
                   + torch.diag(lanczos.betas, -1))
    torch.testing.assert_close(basis.T @ matrix @ basis, tridiagonal,
                               atol=1e-10, rtol=0)


def test_lanczos_from_a_zero_start_stops_at_its_first_step():
    # The zero norm is read with the first step's terms (no read at the
    # start): that step spends one matvec on the zero vector and stops,
    # and every later step spends nothing.
    lanczos = LanczosProcess(torch.zeros(5))
    calls = []
    assert lanczos.extend(lambda u: calls.append(u.clone()) or u)
    assert len(calls) == 1 and torch.equal(calls[0], torch.zeros(5))
    assert lanczos.exhausted and lanczos.dim == 0
    assert not lanczos.extend(lambda u: calls.append(u.clone()) or u)
    assert len(calls) == 1
    assert torch.equal(lanczos.solution(), torch.zeros(5))


def test_restarted_lanczos_at_a_solved_system_keeps_its_estimate():
    # b - A v = 0 exactly: every iteration restarts (A v_bar), finds the
    # zero start at its step (one more product) and returns v unchanged.
    matrix = torch.diag(torch.tensor([1.0, 2.0, 4.0]))
    v = torch.tensor([1.0, -1.0, 0.5])
    b = matrix @ v
    products = []

    def matvec(u):
        products.append(1)
        return matrix @ u
    restarted = RestartedLanczos(b, 2)
    for _ in range(3):
        assert torch.equal(restarted.step(matvec, b, v, 2), v)
        assert restarted.process.exhausted
    assert len(products) == 6


def test_lanczos_stops_growing_on_an_invariant_subspace():
    # b lies in a 3-dimensional eigenspace: after 3 steps beta vanishes.
    matrix = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    b = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    lanczos = LanczosProcess(b)
    steps = [lanczos.extend(lambda u: matrix @ u) for _ in range(5)]
    assert steps == [True, True, True, False, False]
    torch.testing.assert_close(lanczos.solution(),
                               torch.linalg.solve(matrix, b), atol=1e-12,
                               rtol=0)


@pytest.mark.parametrize("k", [1, 2, 7])
def test_solve_in_the_basis_matches_a_dense_solve(k):
    matrix, b = spd_matrix(12, 20.0, seed=k)
    lanczos = LanczosProcess(b, max_dim=7)
    for _ in range(k):
        lanczos.extend(lambda u: matrix @ u)
    rhs = torch.randn(k, generator=torch.Generator().manual_seed(k))
    basis = lanczos.basis[:k].T
    expected = basis @ torch.linalg.solve(basis.T @ matrix @ basis, rhs)
    torch.testing.assert_close(lanczos.solve(rhs), expected, atol=1e-12,
                               rtol=0)
    torch.testing.assert_close(lanczos.project(b), basis.T @ b, atol=1e-12,
                               rtol=0)


def test_a_full_basis_must_be_restarted():
    matrix, b = spd_matrix(12, 20.0, seed=0)
    lanczos = LanczosProcess(b, max_dim=3)
    for _ in range(3):
        lanczos.extend(lambda u: matrix @ u)
    with pytest.raises(ValueError, match="basis is full.*restart"):
        lanczos.extend(lambda u: matrix @ u)


def assert_relatively_close(got, expected, rtol):
    error = float(torch.linalg.vector_norm(got - expected))
    assert error <= rtol * float(torch.linalg.vector_norm(expected)), error


@pytest.mark.parametrize("orthogonality_tol", [None, 1e-2])
def test_lanczos_equals_conjugate_gradient_at_m_80_and_after_a_restart(
        orthogonality_tol):
    # A fixed SPD matrix whose CG is still far from converged after 80
    # steps: the restarted process with the residual correction is CG
    # restarted from v_bar = its last iterate, so after m + i steps it
    # equals i CG steps from the iterate of m steps.
    n, m = 300, 80
    matrix, b = spd_matrix(n, 1e4, seed=8)
    matvec = lambda u: matrix @ u  # noqa: E731
    restarted = RestartedLanczos(b, m, orthogonality_tol=orthogonality_tol)
    v = torch.zeros(n)
    for _ in range(m):
        v = restarted.step(matvec, b, v, m)
    at_m, _ = conjugate_gradient(matvec, b, max_iter=m)
    assert restarted.process.dim == m
    assert float(torch.linalg.vector_norm(matvec(at_m) - b)) > 1e-6 * float(
        torch.linalg.vector_norm(b))
    assert_relatively_close(v, at_m, 1e-8)
    for i in range(1, 6):
        v = restarted.step(matvec, b, v, m)
        expected, _ = conjugate_gradient(matvec, b, x0=at_m, max_iter=i)
        assert restarted.steps_since_restart == i
        assert_relatively_close(v, expected, 1e-8)


def test_restarted_lanczos_without_residual_correction_restarts_from_b():
    # v_k = Q_j T_j^{-1} Q_j^T b_k: with one matrix and one b, j CG steps
    # from zero, whatever the estimate before the restart.
    n, m = 40, 5
    matrix, b = spd_matrix(n, 50.0, seed=10)
    matvec = lambda u: matrix @ u  # noqa: E731
    restarted = RestartedLanczos(b, m, residual_correction=False)
    v = torch.zeros(n)
    for k in range(2 * m):
        v = restarted.step(matvec, b, v, m)
        expected, _ = conjugate_gradient(matvec, b, max_iter=k % m + 1)
        assert restarted.steps_since_restart == k % m + 1
        assert_relatively_close(v, expected, 1e-10)


def test_a_restart_in_the_same_storage_equals_a_new_process():
    matrix, b = spd_matrix(30, 20.0, seed=11)
    other = spd_matrix(30, 5.0, seed=12)[0]
    reused = LanczosProcess(b, max_dim=10, orthogonality_tol=1e-2)
    for _ in range(7):
        reused.extend(lambda u: other @ u)
    start = b.flip(0)
    reused.restart(start)
    fresh = LanczosProcess(start, max_dim=10, orthogonality_tol=1e-2)
    assert reused.dim == 0 and not reused.stopped
    for _ in range(4):
        for process in (reused, fresh):
            process.extend(lambda u: matrix @ u)
        assert torch.equal(reused.solution(), fresh.solution())
    assert torch.equal(reused.basis, fresh.basis)
    reused.restart(torch.zeros(30))
    reused.extend(lambda u: matrix @ u)
    assert reused.exhausted and reused.dim == 0


class OperationCounter(TorchDispatchMode):
    """The number of aten operations run while it is active, views (which
    launch nothing, and which a slice of the whole tensor skips) aside."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += not func.is_view
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("orthogonality_tol", [None, 1e-2])
def test_a_lanczos_step_costs_the_same_operations_at_every_dimension(
        orthogonality_tol):
    # Each outer iteration of RestartedLanczos at a fixed m: the same
    # number of tensor operations at j = 2 as at j = 80. A restart adds the
    # product A v_bar, its subtraction and the norm of the new start, and
    # its first step skips as many terms of the recurrence.
    n, m = 120, 80
    matrix, b = spd_matrix(n, 100.0, seed=13)
    matvec = lambda u: matrix @ u  # noqa: E731
    restarted = RestartedLanczos(b, m, orthogonality_tol=orthogonality_tol)
    v, counts = torch.zeros(n), []
    for _ in range(m + 2):
        with OperationCounter() as counter:
            v = restarted.step(matvec, b, v, m)
        counts.append(counter.count)
    assert restarted.steps_since_restart == 2
    assert len(set(counts[1:m])) == 1, counts
    assert max(counts[0], counts[m]) <= counts[1], counts


def test_one_host_read_per_step_restart_or_not():
    # Each read of a device value is a host synchronisation on a GPU: one
    # per outer iteration (beta, the pivot and the overlap together, and
    # after a restart the norm of the start with them).
    n, m = 50, 4
    matrix, b = spd_matrix(n, 20.0, seed=14)
    restarted = RestartedLanczos(b, m, orthogonality_tol=1e-2)
    v, per_step = torch.zeros(n), []
    for _ in range(2 * m):
        with HostReads() as counter:
            v = restarted.step(lambda u: matrix @ u, b, v, m)
        per_step.append(counter.total)
    assert per_step == [1] * (2 * m)
    assert restarted.steps_since_restart == m


def test_a_relative_tolerance_stops_where_its_absolute_value_does():
    # rtol reads ||b|| with the first residual: the same steps, the same
    # iterate, one host read fewer than reading ||b|| apart.
    matrix, b = spd_matrix(40, 1e3, seed=15)
    x0 = torch.ones(40)
    with HostReads() as apart:
        tol = 1e-6 * float(torch.linalg.vector_norm(b))
        expected, n_expected = conjugate_gradient(lambda u: matrix @ u, b,
                                                  x0=x0, tol=tol)
    with HostReads() as together:
        got, n_got = conjugate_gradient(lambda u: matrix @ u, b, x0=x0,
                                        rtol=1e-6)
    assert n_got == n_expected < 40 and torch.equal(got, expected)
    # A test before each product of the loop and one after the last (the
    # first product is the start's residual).
    assert together.total == apart.total - 1 == n_got


@pytest.mark.parametrize("seed", [0, 1, 9])
def test_two_dimensional_galerkin_equals_the_pseudo_inverse_solution(seed):
    # u parallel to b: its component off b is round-off noise (not exactly
    # zero), which must not be taken as a second direction.
    matrix, b = spd_matrix(10, 30.0, seed=seed)
    u = torch.randn(10, generator=torch.Generator().manual_seed(seed))
    for direction in (u, 3.0 * b, -0.7 * b, 1e-3 * b, 1.1 * b,
                      torch.zeros(10)):
        # The reference: W^T A W s = W^T b by the pseudo-inverse, on the
        # orthonormal basis of span{b, direction}.
        basis, _ = torch.linalg.qr(torch.stack([b, direction], dim=1))
        rank = 1 if float(torch.linalg.vector_norm(
            direction - torch.dot(direction, b) / torch.dot(b, b) * b)) < (
                1e-12) else 2
        basis = basis[:, :rank]
        expected = basis @ torch.linalg.pinv(basis.T @ matrix @ basis) @ (
            basis.T @ b)
        torch.testing.assert_close(
            two_dimensional_galerkin(b, matrix @ b, direction,
                                     matrix @ direction),
            expected, rtol=1e-12, atol=1e-14)
    zero = torch.zeros(10)
    assert torch.equal(two_dimensional_galerkin(zero, zero, u, matrix @ u),
                       zero)


def test_conjugate_gradient_reaches_tolerance_and_warm_starts():
    matrix, b = spd_matrix(50, 1e3, seed=3)
    solution = torch.linalg.solve(matrix, b)
    x, n_cold = conjugate_gradient(lambda u: matrix @ u, b, tol=1e-10,
                                   max_iter=500)
    assert torch.linalg.vector_norm(matrix @ x - b) < 1e-9
    torch.testing.assert_close(x, solution, atol=1e-8, rtol=0)
    _, n_warm = conjugate_gradient(lambda u: matrix @ u, b, x0=x, tol=1e-10)
    assert n_warm < n_cold


def test_power_iteration_estimates_largest_eigenvalue():
    matrix, _ = spd_matrix(20, 30.0, seed=4)
    estimate = largest_eigenvalue(lambda u: matrix @ u, torch.ones(20),
                                  n_iter=200)
    assert estimate == pytest.approx(30.0, rel=1e-3)


def test_conjugate_gradient_from_the_exact_solution_stays_there():
    # Fixed-step CG (tol=None) must not turn a zero residual into 0 / 0.
    matrix, b = spd_matrix(10, 5.0, seed=5)
    solution = torch.linalg.solve(matrix, b)
    x, n_matvec = conjugate_gradient(lambda u: matrix @ u, matrix @ solution,
                                     x0=solution, max_iter=3)
    assert n_matvec == 4
    torch.testing.assert_close(x, solution, atol=1e-12, rtol=0)
    zero, _ = conjugate_gradient(lambda u: matrix @ u, torch.zeros(10),
                                 max_iter=3)
    assert torch.equal(zero, torch.zeros(10))


def test_orthogonality_check_leaves_the_classical_process_unchanged():
    # With one matrix, round-off loses orthogonality far below 1e-2: the
    # checked process keeps every vector and still equals CG.
    n = 30
    matrix, b = spd_matrix(n, 10.0, seed=0)
    checked = LanczosProcess(b, orthogonality_tol=1e-2)
    for j in range(1, n):
        checked.extend(lambda u: matrix @ u)
        cg_iterate, _ = conjugate_gradient(lambda u: matrix @ u, b,
                                           max_iter=j)
        torch.testing.assert_close(checked.solution(), cg_iterate,
                                   rtol=1e-8, atol=1e-10)
    assert not checked.lost_orthogonality and len(checked.basis) == n


def test_dynamic_process_stops_when_a_new_vector_overlaps_the_basis():
    # A different matrix at every step: the three-term recurrence no longer
    # orthogonalises against the older vectors. Unchecked, the basis drifts
    # far from orthonormal; checked, it stops growing at the first vector
    # that overlaps by more than the tolerance, and what it kept is
    # orthonormal to that tolerance.
    n, tol = 40, 1e-2
    matrices = [spd_matrix(n, 50.0, seed=s)[0] for s in range(n)]
    b = spd_matrix(n, 50.0, seed=100)[1]
    processes = [LanczosProcess(b), LanczosProcess(b, orthogonality_tol=tol)]
    for matrix in matrices[:25]:
        for process in processes:
            process.extend(lambda u: matrix @ u)
    unchecked, checked = (p.basis for p in processes)

    def orthogonality_loss(basis):
        gram = basis @ basis.T
        return float((gram - torch.eye(len(basis))).abs().max())

    assert orthogonality_loss(unchecked) > 0.1
    assert processes[1].lost_orthogonality and processes[1].stopped
    assert len(checked) < 25
    assert orthogonality_loss(checked) <= tol
    # A stopped process spends no more products.
    assert not processes[1].extend(lambda u: 1 / 0)


def test_preconditioned_cg_solves_to_the_residual_of_the_system():
    # A badly scaled SPD matrix: D^1/2 S D^1/2 with S well conditioned and
    # D spread over four decades, which the diagonal preconditioner undoes.
    well_conditioned, b = spd_matrix(40, 3.0, seed=5)
    well_conditioned = well_conditioned.double()
    b = b.double()
    scales = torch.logspace(0, 4, 40, dtype=torch.float64).sqrt()
    matrix = scales[:, None] * well_conditioned * scales[None, :]
    tol = 1e-8 * float(torch.linalg.vector_norm(b))
    plain, n_plain = conjugate_gradient(lambda u: matrix @ u, b, tol=tol,
                                        max_iter=1000)
    diagonal = torch.diagonal(matrix)
    jacobi, n_jacobi = conjugate_gradient(
        lambda u: matrix @ u, b, tol=tol, max_iter=1000,
        preconditioner=lambda r: r / diagonal)
    # The tolerance is on ||b - A x||, not on the preconditioned residual.
    assert float(torch.linalg.vector_norm(matrix @ jacobi - b)) <= 1.01 * tol
    assert float(torch.linalg.vector_norm(matrix @ plain - b)) <= 1.01 * tol
    assert n_jacobi < n_plain / 3


def test_cg_with_the_exact_inverse_as_preconditioner_takes_one_step():
    matrix, b = spd_matrix(15, 50.0, seed=6)
    matrix, b = matrix.double(), b.double()
    inverse = torch.linalg.inv(matrix)
    x, n_matvec = conjugate_gradient(lambda u: matrix @ u, b, tol=1e-10,
                                     preconditioner=lambda r: inverse @ r)
    assert n_matvec == 1
    torch.testing.assert_close(x, torch.linalg.solve(matrix, b), rtol=0,
                               atol=1e-10)


def test_a_step_that_would_make_t_indefinite_is_not_taken():
    # Two SPD matrices in a dynamic process: A1 gives alpha_1 = 1 and
    # beta_2 = 2; A2 = I gives alpha_2 = 1, so T_2 = [[1, 2], [2, 1]] would
    # have the eigenvalue -1 (pivot 1 - 4 / 1 = -3).
    first = torch.tensor([[1.0, 2.0], [2.0, 5.0]], dtype=torch.float64)
    lanczos = LanczosProcess(torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert lanczos.extend(lambda u: first @ u)
    calls = []
    assert lanczos.extend(lambda u: calls.append(u) or u)   # spends it
    assert len(calls) == 1
    assert lanczos.lost_definiteness and lanczos.stopped
    assert lanczos.dim == 1
    # The solution stays the one of T_1, and the process grows no more.
    torch.testing.assert_close(lanczos.solution(),
                               torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert not lanczos.extend(lambda u: u)
