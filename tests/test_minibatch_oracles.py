"""Minibatch oracles: one epoch of batches, weighted by their sizes, gives
the full-batch oracle on every problem with samples and in every HVP mode;
the counts in full-batch passes are exact; a batch on a problem without
samples is a clear error; and the sample-based quadratic's closed forms
against independent computations."""
import pytest
import torch
from conftest import (get_dataset_class, make_objective, point_near_start,
                      small_hypercleaning_problem, small_regsel_problem)
from benchopt.utils.run_context import RunContext
from torch.func import hessian, jacrev

from benchmark_utils.oracles import HVP_MODES, Oracles, check_closed_form
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.quadratic_samples import SampleQuadraticProblem
from benchmark_utils.problems.sparse import SparseFeatures
from benchmark_utils.problems.synthetic import SyntheticProblem
from benchmark_utils.sampling import EpochSampler

#: Each problem's numbers of training and validation samples are not
#: multiples of it: every epoch ends with a smaller batch.
BATCH_SIZE = 7

PROBLEMS = {
    "hypercleaning": small_hypercleaning_problem,   # 40 / 20 samples
    "regsel-sparse": lambda: small_regsel_problem(3),   # 30 / 15
    "regsel-dense": lambda: small_regsel_problem(3, dense=True),
    "regsel-binary-sparse": lambda: small_regsel_problem(2),
    "quadratic-samples": lambda: SampleQuadraticProblem(
        dim_x=6, dim_y=9, n_train=23, n_val=13, kappa=10.0, seed=1),
}

#: The oracles of g (on training samples) and of f (validation samples),
#: each as a function of (oracles, x, y, v, batch) returning one tensor.
INNER_ORACLES = {
    "g": lambda o, x, y, v, b: o.value_inner(x, y, b),
    "grad_inner": lambda o, x, y, v, b: o.grad_inner(x, y, b),
    "grad_inner_x": lambda o, x, y, v, b: o.grad_inner_x(x, y, b),
    "grad_inner_xy": lambda o, x, y, v, b: torch.cat(
        o.grad_inner_xy(x, y, b)),
    "hvp": lambda o, x, y, v, b: o.hvp(x, y, v, b),
    "hessian_at": lambda o, x, y, v, b: o.hessian_at(x, y, b)(v),
    "cross": lambda o, x, y, v, b: o.cross(x, y, v, b),
    # Along x itself: a direction of the size of x.
    "cross_transpose": lambda o, x, y, v, b: o.cross_transpose(x, y, x, b),
    "hvp_and_cross": lambda o, x, y, v, b: torch.cat(
        o.hvp_and_cross(x, y, v, b)),
}
OUTER_ORACLES = {
    "f": lambda o, x, y, v, b: o.value_outer(x, y, b),
    "grad_outer": lambda o, x, y, v, b: torch.cat(o.grad_outer(x, y, b)),
}

#: The regularization-selection oracles that only its penalty gives.
PENALTY_ONLY = ("grad_inner_x", "cross", "cross_transpose")


def one_epoch(n_samples, seed=0):
    sampler = EpochSampler(n_samples, BATCH_SIZE, seed, torch.device("cpu"))
    return [sampler.next_batch()
            for _ in range(-(-n_samples // BATCH_SIZE))]


def relative_error(value, expected):
    return float(torch.linalg.vector_norm(value - expected)
                 / torch.linalg.vector_norm(expected))


@pytest.mark.parametrize("mode", HVP_MODES)
@pytest.mark.parametrize("name", PROBLEMS)
def test_size_weighted_epoch_mean_is_the_full_batch_oracle(name, mode):
    problem = PROBLEMS[name]()
    oracles = Oracles(problem, mode)
    x, y, v = point_near_start(problem, 1)
    for n_samples, calls in [(problem.n_inner_samples, INNER_ORACLES),
                             (problem.n_outer_samples, OUTER_ORACLES)]:
        batches = one_epoch(n_samples)
        assert len(batches[-1]) == n_samples % BATCH_SIZE
        for oracle, call in calls.items():
            full = call(oracles, x, y, v, None)
            on_batches = [call(oracles, x, y, v, batch) for batch in batches]
            mean = sum(len(batch) / n_samples * value
                       for batch, value in zip(batches, on_batches))
            assert relative_error(mean, full) < 1e-12, oracle
            assert float(torch.linalg.vector_norm(full)) > 1e-3, oracle
            # A batch is not the full data: its value differs, but for the
            # regularization-selection derivatives in x, which only the
            # penalty (the same on every batch) gives.
            if name.startswith("regsel") and oracle in PENALTY_ONLY:
                assert relative_error(on_batches[0], full) < 1e-15
            else:
                assert relative_error(on_batches[0], full) > 1e-4, oracle


@pytest.mark.parametrize("name", PROBLEMS)
def test_batch_products_in_closed_form_equal_automatic_differentiation(
        name):
    problem = PROBLEMS[name]()
    x, y, v = point_near_start(problem, 2)
    batch = one_epoch(problem.n_inner_samples)[0]
    closed_form = Oracles(problem, "closed_form")
    autodiff = Oracles(problem, "reverse")
    for oracle in ("hvp", "cross", "hvp_and_cross", "hessian_at"):
        call = INNER_ORACLES[oracle]
        assert relative_error(call(closed_form, x, y, v, batch),
                              call(autodiff, x, y, v, batch)) < 1e-12


def test_sparse_rows_are_the_dense_rows_still_sparse():
    generator = torch.Generator().manual_seed(9)
    dense = torch.randn(12, 7, generator=generator) * (
        torch.rand(12, 7, generator=generator) < 0.3)
    dense[3] = 0.0   # a sample without features
    features = SparseFeatures(dense.to_sparse())
    rows = torch.tensor([3, 0, 11, 0, 5])   # out of order, one twice
    selected = features[rows]
    assert selected.matrix.is_sparse and selected.matrix.is_coalesced()
    assert torch.equal(selected.matrix.to_dense(), dense[rows])
    assert torch.equal(selected.matrix_t.to_dense(), dense[rows].T)
    # The selection selects again, as a dense tensor's rows do.
    assert torch.equal(selected[torch.tensor([4, 1])].matrix.to_dense(),
                       dense[rows][[4, 1]])


class BatchBlindQuadratic(SampleQuadraticProblem):
    """Its closed-form HVP ignores the batch: right on the full data
    only."""

    def closed_form_hvp(self, x, y, v, batch=None):
        return super().closed_form_hvp(x, y, v)


def test_check_closed_form_catches_a_product_wrong_on_batches_only():
    params = dict(dim_x=4, dim_y=6, n_train=20, n_val=10)
    check_closed_form(SampleQuadraticProblem(**params))
    with pytest.raises(ValueError, match="quadratic-samples problem's "
                       "closed_form_hvp disagrees with automatic "
                       "differentiation on a minibatch"):
        check_closed_form(BatchBlindQuadratic(**params))


def test_counts_are_exact_fractions_of_full_passes():
    problem = SampleQuadraticProblem(dim_x=3, dim_y=4, n_train=5000,
                                     n_val=250, kappa=5.0)
    oracles = Oracles(problem, "closed_form")
    x, y, v = point_near_start(problem, 3)
    batch_64, batch_50, batch_100 = (torch.arange(size)
                                     for size in (64, 50, 100))
    for _ in range(100):
        oracles.grad_inner(x, y, batch_64)
        oracles.hvp(x, y, v, batch_64)
    for _ in range(3):
        oracles.grad_inner_x(x, y)          # full batch: 1 each
    for _ in range(7):
        oracles.grad_outer(x, y, batch_50)  # 50 of the 250 validation
    product = oracles.hessian_at(x, y, batch_64)
    for _ in range(10):
        product(v)
    for _ in range(5):
        oracles.hvp_and_cross(x, y, v, batch_100)
    for _ in range(2):
        oracles.cross(x, y, v)
    oracles.value_inner(x, y, batch_64)     # values are not counted
    oracles.value_outer(x, y, batch_50)
    # n_grad = 6400/5000 + 3 + 350/250, n_hvp = (6400 + 640 + 500)/5000,
    # n_cross = 500/5000 + 2, n_epochs = (6400 + 6400 + 15000 + 640 + 500
    # + 10000)/5000, each rounded once: a float sum of 64/5000 per call
    # would miss 1.28 after 100 calls.
    assert sum([64 / 5000] * 100) != 1.28
    assert oracles.counts() == dict(n_grad=5.68, n_hvp=1.508, n_cross=2.1,
                                    n_epochs=7.788)
    oracles.reset()
    assert oracles.counts() == dict(n_grad=0, n_hvp=0, n_cross=0,
                                    n_epochs=0)


def test_one_epoch_of_batches_counts_one_pass():
    problem = PROBLEMS["hypercleaning"]()
    oracles = Oracles(problem, "closed_form")
    x, y, v = point_near_start(problem, 4)
    for batch in one_epoch(problem.n_inner_samples):   # 5 x 7 + 5 of 40
        oracles.grad_inner(x, y, batch)
        oracles.hvp_and_cross(x, y, v, batch)
    for batch in one_epoch(problem.n_outer_samples):   # 2 x 7 + 6 of 20
        oracles.grad_outer(x, y, batch)
    assert oracles.counts() == dict(n_grad=2.0, n_hvp=1.0, n_cross=1.0,
                                    n_epochs=2.0)


@pytest.mark.parametrize("problem", [
    SyntheticProblem(n=8, kappa=10.0), QuadraticProblem(dim_x=3, dim_y=4)],
    ids=lambda problem: problem.name)
def test_a_batch_on_a_problem_without_samples_is_a_clear_error(problem):
    assert problem.n_inner_samples is None
    oracles = Oracles(problem, "reverse")
    x, y, v = point_near_start(problem, 5)
    batch = torch.arange(2)
    for oracle, call in {**INNER_ORACLES, **OUTER_ORACLES}.items():
        with pytest.raises(ValueError, match=f"The {problem.name} problem "
                           "has no samples"):
            call(oracles, x, y, v, batch)
    # No failed call was counted; the full batch still works.
    assert oracles.counts() == dict(n_grad=0, n_hvp=0, n_cross=0,
                                    n_epochs=0)
    oracles.grad_inner(x, y)
    assert oracles.counts() == dict(n_grad=1, n_hvp=0, n_cross=0,
                                    n_epochs=1)


@pytest.mark.parametrize("batch", [
    torch.tensor([0.0, 1.0]), torch.zeros(2, 2, dtype=torch.int64),
    torch.zeros(0, dtype=torch.int64), [0, 1]])
def test_a_malformed_batch_is_a_clear_error(batch):
    problem = PROBLEMS["quadratic-samples"]()
    oracles = Oracles(problem)
    x, y, _ = point_near_start(problem, 6)
    with pytest.raises(ValueError, match="batch must be None or a "
                       "non-empty 1-D int64 tensor"):
        oracles.grad_inner(x, y, batch)


# -- the sample-based quadratic -----------------------------------------------

@pytest.fixture(scope="module")
def sample_quadratic():
    return SampleQuadraticProblem(dim_x=5, dim_y=8, n_train=30, n_val=12,
                                  kappa=20.0, rho=0.2, seed=2)


def dense_derivatives(problem, x):
    """d2_yy g, d2_xy g (dim_y x dim_x) and d_y g(x, 0) of g by automatic
    differentiation of the per-sample g: none of the problem's means."""
    y = torch.zeros_like(problem.y0)
    hessian_yy = hessian(problem.g, argnums=1)(x, y)
    cross_yx = jacrev(jacrev(problem.g, argnums=1), argnums=0)(x, y)
    return hessian_yy, cross_yx, jacrev(problem.g, argnums=1)(x, y)


def test_sample_quadratic_closed_forms_equal_dense_solves(sample_quadratic):
    q = sample_quadratic
    x = q.x0 + torch.randn(q.x0.shape,
                           generator=torch.Generator().manual_seed(7))
    hessian_yy, cross_yx, grad_at_zero = dense_derivatives(q, x)
    y_star = -torch.linalg.solve(hessian_yy, grad_at_zero)
    grad_x_f, grad_y_f = jacrev(q.f, argnums=(0, 1))(x, y_star)
    v_star = torch.linalg.solve(hessian_yy, grad_y_f)
    hypergradient = grad_x_f - cross_yx.T @ v_star
    close = dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(q.inner_solution(x), y_star, **close)
    torch.testing.assert_close(q.adjoint_solution(x), v_star, **close)
    torch.testing.assert_close(q.hypergradient(x), hypergradient, **close)
    torch.testing.assert_close(q.value(x), q.f(x, y_star), **close)
    # The hypergradient is the derivative of phi: central differences are
    # exact on a quadratic, up to round-off.
    direction = torch.randn(x.shape,
                            generator=torch.Generator().manual_seed(8))
    eps = 1e-4
    difference = (q.value(x + eps * direction)
                  - q.value(x - eps * direction)) / (2 * eps)
    torch.testing.assert_close(difference,
                               torch.dot(hypergradient, direction),
                               rtol=1e-8, atol=1e-10)


def test_sample_quadratic_spectrum_and_outer_step(sample_quadratic):
    q = sample_quadratic
    hessian_yy, cross_yx, _ = dense_derivatives(q, q.x0)
    eigenvalues = torch.linalg.eigvalsh(hessian_yy)
    torch.testing.assert_close(eigenvalues[[0, -1]],
                               torch.tensor([1.0, 20.0]), rtol=1e-10,
                               atol=0)
    assert q.inner_strong_convexity(q.x0) <= float(eigenvalues[0])
    # phi's Hessian J^T J + rho I, J = dy*/dx = -H^-1 B, tops at 1: the
    # default outer step 1 (outer_step_unit 1) is stable.
    jacobian = torch.linalg.solve(hessian_yy, cross_yx)
    phi_hessian = jacobian.T @ jacobian + q.rho * torch.eye(5)
    top = torch.linalg.eigvalsh(phi_hessian)[-1]
    assert q.outer_step_unit == 1.0
    torch.testing.assert_close(top, torch.tensor(1.0), rtol=1e-10, atol=0)


def test_sample_quadratic_batch_hessian_is_its_samples_mean(
        sample_quadratic):
    """On the batch {3, 17}, d2_yy g is I + 1/2 (A_3^T A_3 + A_17^T A_17):
    one sample's terms, the identity once."""
    q = sample_quadratic
    batch = torch.tensor([3, 17])
    vectors = q.sample_vectors[batch].reshape(-1, 8)
    expected = torch.eye(8) + vectors.T @ vectors / 2
    got = hessian(q.g, argnums=1)(q.x0, q.y0, batch)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    product = Oracles(q, "closed_form").hessian_at(q.x0, q.y0, batch)
    unit = torch.zeros(8)
    unit[2] = 1.0
    torch.testing.assert_close(product(unit), expected[:, 2], rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("params, message", [
    (dict(dim_y=9, n_train=4), "n_train must be at least dim_y / 2 = 5"),
    (dict(rho=1.0), r"rho must be a number in \(0, 1\)"),
    (dict(kappa=0.5), "kappa must be a finite number >= 1.0"),
    (dict(n_val=0), "n_val must be an integer >= 1"),
])
def test_sample_quadratic_bad_parameters_are_clear_errors(params, message):
    with pytest.raises(ValueError, match=message):
        SampleQuadraticProblem(**params)


def test_dataset_is_seeded_and_runs_through_the_objective():
    def problem(repetition):
        dataset = get_dataset_class("quadratic_samples").get_instance(
            dim_x=10, dim_y=20, n_train=50, n_val=30, kappa=10.0)
        RunContext().set_run_context(None, dataset, None,
                                     repetition=repetition, base_seed=0)
        return dataset.get_data()["problem"]

    first, again, other = problem(0), problem(0), problem(1)
    assert torch.equal(first.sample_vectors, again.sample_vectors)
    assert not torch.allclose(first.sample_vectors, other.sample_vectors)
    assert (first.n_inner_samples, first.n_outer_samples) == (50, 30)
    objective = make_objective(first, hvp_mode="closed_form")
    metrics = objective.evaluate_result(**objective.get_one_result())
    expected = float(torch.linalg.vector_norm(first.hypergradient(first.x0)))
    assert metrics["hypergrad_norm"] == pytest.approx(expected, rel=1e-6)
    assert metrics["value"] == pytest.approx(float(first.value(first.x0)),
                                             rel=1e-6)
