"""Every solver on the neural-network problems, and what the implicit
methods do when d2_yy g is indefinite (docs/solvers.md, "An indefinite
lower-level Hessian"): no NaN and no blow-up may escape the divergence
rule unmarked."""
import math

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import (BENCHMARK, get_solver_class, make_objective,
                      run_solver)
from neural_problems import (small_distillation_problem,
                             small_mlp_hypercleaning_problem)

from benchmark_utils.linalg.krylov import (LanczosProcess, RestartedLanczos,
                                           conjugate_gradient,
                                           two_dimensional_galerkin)
from benchmark_utils.linalg.neumann import neumann_series
from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.validation import ParameterError

#: Shorter inner loops and Neumann series than the defaults for the
#: methods whose iterations cost most (VRBO's defaults take some 230 HVPs
#: per iteration): what is checked here does not depend on their lengths.
SHORTER = {
    "VRBO": {"n_inner_steps": 2, "n_neumann_steps": 3},
    "ITD": {"n_inner_steps": 5},
    "STABLE": {"n_neumann_steps": 5},
    "MRBO": {"n_neumann_steps": 5},
    "stocBiO": {"n_neumann_steps": 5},
}
#: Every solver curve: AmIGO with each linear solver.
CURVES = [(solver.name, SHORTER.get(solver.name, {}))
          for solver in BENCHMARK.get_solvers() if solver.name != "AmIGO"] + [
    ("AmIGO", {"inner_solver": "gd"}), ("AmIGO", {"inner_solver": "cg"})]
#: The metrics every point of a curve on a non-convex lower level reports
#: (with the problem's test metrics) until the curve is marked diverged.
ALWAYS_REPORTED = ("value_at_y", "inner_grad_norm", "test_accuracy",
                   "test_loss")
TASKS = {
    "hypercleaning": small_mlp_hypercleaning_problem,
    "distillation": lambda: small_distillation_problem("mlp"),
}


def curve_id(curve):
    name, params = curve
    return name + "".join(f"-{value}" for value in params.values()
                          if name == "AmIGO")


def run_curve(name, params, objective, n_iter):
    """The points of a curve of at most ``n_iter`` iterations, evaluated
    at each iteration and ended at its first diverged point, as a run ends
    it: [(result, metrics)]."""
    solver = get_solver_class(name).get_instance(**params)
    RunContext().set_run_context(objective, "dataset", solver, repetition=0,
                                 base_seed=0)
    solver.set_objective(**objective.get_objective())
    points = []

    def callback():
        result = {key: value.clone() if torch.is_tensor(value) else value
                  for key, value in solver.get_result().items()}
        points.append((result, objective.evaluate_result(**result)))
        return len(points) <= n_iter and not points[-1][1]["diverged"]

    solver.run(callback)
    return points


@pytest.fixture(scope="module", params=list(TASKS))
def task(request):
    """(problem, objective) of a tiny neural task; the local reference off
    (test_local_metrics.py checks it): each point is judged by what is
    always reported."""
    problem = TASKS[request.param]()
    return problem, make_objective(problem, second_order_metrics=False)


@pytest.mark.parametrize("curve", CURVES, ids=curve_id)
def test_every_solver_runs_20_iterations_without_an_unmarked_nan(task,
                                                                 curve):
    problem, objective = task
    name, params = curve
    solver = get_solver_class(name).get_instance(**params)
    if name == "AID-exact":
        skipped, reason = solver.skip(**objective.get_objective())
        assert skipped and "needs a convex lower level" in reason
        assert problem.name in reason
        return
    points = run_curve(name, params, objective, 20)
    for result, metrics in points:
        if metrics["diverged"]:
            break
        for key in ALWAYS_REPORTED:
            assert math.isfinite(metrics[key]), (key, result["n_outer"])
    else:
        assert points[-1][0]["n_outer"] == 20


def test_auto_steps_take_the_largest_curvature_in_magnitude():
    # The largest eigenvalue in magnitude is the negative one, -8: 'auto'
    # is 1 / (1.1 * 8), the step that gradient descent on a function whose
    # gradient is 8-Lipschitz takes.
    problem = IndefiniteQuadratic(curvatures=(-8.0, 1.0, 2.0))
    solver, _, _ = run_solver("SOBA", problem, 1)
    assert solver.inner_lipschitz() == pytest.approx(8.0, rel=1e-6)
    assert solver.inner_step == pytest.approx(1 / 8.8, rel=1e-6)
    flat = IndefiniteQuadratic(curvatures=(0.0, 0.0))
    with pytest.raises(ParameterError,
                       match="step_size_inner='auto' is 1 / .1.1 L. with L"):
        run_solver("SOBA", flat, 1)


class IndefiniteQuadratic(BilevelProblem):
    """g(x, y) = 1/2 y^T H y - y^T B x with a fixed H of the given
    eigenvalues, the first negative (g is unbounded below in y along it),
    and f(x, y) = 1/2 ||y - t||^2."""

    name = "indefinite quadratic"
    lower_level_convex = False

    def __init__(self, curvatures=(-0.5, 1.0, 2.0, 3.0), dim_x=2, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.hessian = torch.diag(torch.tensor(curvatures))
        dim_y = len(curvatures)
        self.coupling = torch.randn(dim_y, dim_x, generator=generator)
        self.target = torch.randn(dim_y, generator=generator)
        self.x0 = torch.zeros(dim_x)
        self.y0 = 0.1 * torch.randn(dim_y, generator=generator)

    def g(self, x, y):
        return 0.5 * y @ self.hessian @ y - y @ self.coupling @ x

    def f(self, x, y):
        return 0.5 * torch.sum((y - self.target) ** 2)


@pytest.mark.parametrize("curve", CURVES, ids=curve_id)
def test_no_blow_up_escapes_the_divergence_rule(curve):
    # Gradient steps on y move it away from the saddle along the negative
    # curvature, by 1 + eta |lambda| per step: every method that steps y
    # runs away, and its curve must be marked diverged before any iterate
    # is 1e6 times the start's size or turns non-finite.
    name, params = curve
    problem = IndefiniteQuadratic()
    objective = make_objective(problem, second_order_metrics=False)
    if name == "AID-exact":
        return   # skipped: test_every_solver_runs_20_iterations...
    scale = float(torch.linalg.vector_norm(problem.y0))
    for result, metrics in run_curve(name, params, objective, 60):
        if metrics["diverged"]:
            return
        sizes = [float(torch.linalg.vector_norm(result[key]))
                 for key in ("x", "y", "v") if result[key] is not None]
        assert all(math.isfinite(size) and size < 1e6 * scale
                   for size in sizes), (result["n_outer"], sizes)


# -- the implicit methods' linear algebra on an indefinite A ------------------


def indefinite_system(seed=0):
    """A = Q diag(-0.4, 1, 2, 3, 4) Q^T, b, Q."""
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=generator))
    eigenvalues = torch.tensor([-0.4, 1.0, 2.0, 3.0, 4.0])
    return (q * eigenvalues) @ q.T, torch.randn(5, generator=generator), q


def test_conjugate_gradient_heads_for_the_saddle_of_the_model():
    # AmIGO-CG: CG has no negative-curvature test; without a breakdown it
    # reaches A^-1 b in n steps, the stationary point of the quadratic
    # model 1/2 v^T A v - b^T v, a saddle here, not its minimum (none).
    matrix, b, _ = indefinite_system()
    v, _ = conjugate_gradient(lambda u: matrix @ u, b, max_iter=5)
    torch.testing.assert_close(v, torch.linalg.solve(matrix, b), rtol=1e-8,
                               atol=1e-10)


def test_neumann_series_amplifies_negative_curvature_geometrically():
    # stocBiO, BSA, TTSA, STABLE: the truncated series is
    # (I - (I - eta A)^(Q+1)) A^-1 b; along an eigenvalue -mu < 0 that is
    # ((1 + eta mu)^(Q+1) - 1) / mu times b's component: finite for a
    # fixed Q, and growing with it.
    matrix, b, q = indefinite_system()
    eta, n_steps = 0.2, 10
    v = neumann_series(lambda u: matrix @ u, b, eta, n_steps)
    component = float(q[:, 0] @ b)
    expected = ((1 + eta * 0.4) ** (n_steps + 1) - 1) / 0.4 * component
    assert float(q[:, 0] @ v) == pytest.approx(expected, rel=1e-10)


def test_soba_recursion_on_v_grows_without_bound():
    # SOBA (and its variance-reduced kin): v <- v - eta (A v - b) is
    # gradient descent on the model, which along -mu grows as
    # (1 + eta mu)^k: only the divergence rule stops it.
    matrix, b, q = indefinite_system()
    eta, v = 0.2, torch.zeros(5)
    components = []
    for _ in range(200):
        v = v - eta * (matrix @ v - b)
        components.append(abs(float(q[:, 0] @ v)))
    assert components[-1] > 1e5
    assert components[-1] / components[-2] == pytest.approx(1 + eta * 0.4,
                                                           rel=1e-6)


def test_subbio_falls_back_to_the_direction_of_b():
    # SubBiO: where the 2 x 2 Galerkin system is not positive definite it
    # keeps the one-dimensional solution along b (0 if b^T A b <= 0).
    matrix, _, q = indefinite_system()
    b = q[:, 0] + 0.1 * q[:, 1]
    u = q[:, 0] - q[:, 1]
    v = two_dimensional_galerkin(b, matrix @ b, u, matrix @ u)
    # b^T A b = -0.4 + 0.01 < 0: no step at all.
    assert torch.equal(v, torch.zeros(5))
    b = 0.1 * q[:, 0] + q[:, 1]
    v = two_dimensional_galerkin(b, matrix @ b, u, matrix @ u)
    expected = float(b @ b) / float(b @ matrix @ b) * b
    torch.testing.assert_close(v, expected, rtol=1e-12, atol=1e-14)


def test_lancbio_refuses_the_step_that_makes_t_indefinite():
    # LancBiO: the process stops before T_j turns indefinite; its estimate
    # is the Galerkin solution on the positive definite part of the basis,
    # finite, and the next outer iteration restarts it.
    matrix, b, _ = indefinite_system(seed=3)
    linear_system = RestartedLanczos(b, max_dim=5)
    v = torch.zeros(5)
    for _ in range(5):
        v = linear_system.step(lambda u: matrix @ u, b, v, m=5)
        assert torch.isfinite(v).all()
    process = LanczosProcess(b, max_dim=5)
    while process.extend(lambda u: matrix @ u):
        pass
    assert process.lost_definiteness and process.dim < 5
    assert float(torch.linalg.eigvalsh(torch.diag(process.alphas)
                                       + torch.diag(process.betas, 1)
                                       + torch.diag(process.betas, -1))[0]
                 ) > 0
