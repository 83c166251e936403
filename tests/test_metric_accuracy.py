"""The metrics solve y* and v* only as accurately as their digits need: along
real curves on every problem family, each metric is within 1e-6 of the
same metric from solves to a relative tolerance of 1e-12, and the cheaper
solves spend fewer HVPs. The problems' preconditioners of those solves are
symmetric positive definite and cut their conjugate-gradient steps."""
import math

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import (get_dataset_class, make_objective, run_solver,
                      small_regsel_problem)

from benchmark_utils.linalg.krylov import conjugate_gradient
from benchmark_utils.metrics import METRIC_RTOL, ReferenceMetrics
from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.quadratic_samples import SampleQuadraticProblem
from benchmark_utils.problems.synthetic import SyntheticProblem

#: The points of each curve that are compared: benchopt's first evaluation
#: points and a later one.
POINTS = (0, 1, 2, 4, 9, 20)
#: A metric below this is compared in absolute terms: the accuracy floor
#: of both references.
ABSOLUTE_FLOOR = 1e-9


def hyperclean_problem(n_train=100):
    dataset = get_dataset_class("hyperclean_mnist5k").get_instance(
        n_train=n_train, n_val=50, n_test=50)
    RunContext().set_run_context(None, dataset, None, repetition=0,
                                 base_seed=0)
    return dataset.get_data()["problem"]


PROBLEMS = {
    "quadratic": lambda: QuadraticProblem(dim_x=10, dim_y=30, kappa=100.0),
    "synthetic": lambda: SyntheticProblem(n=40, kappa=1000.0, seed=3),
    "hyperclean": hyperclean_problem,
    "regsel": lambda: small_regsel_problem(3, seed=2),
}


@pytest.mark.parametrize("name", list(PROBLEMS))
@pytest.mark.parametrize("solver", ["SOBA", "LancBiO"])
def test_metrics_are_within_their_accuracy_of_tight_solves(name, solver):
    problem = PROBLEMS[name]()
    objective = make_objective(problem, hvp_mode="closed_form")
    _, _, callback = run_solver(solver, problem, max(POINTS),
                                objective=objective, record=POINTS)
    points = callback.history
    certified = ReferenceMetrics(objective.problem)
    tight = ReferenceMetrics(objective.problem, rtol=None)
    assert certified.strong_convexity(problem.x0) is not None
    hvps = {"certified": 0, "tight": 0}
    for point in points:
        results = {}
        for label, reference in [("certified", certified),
                                 ("tight", tight)]:
            reference.oracles.reset()
            results[label] = reference.evaluate(point["x"], point["y"],
                                                point["v"])
            hvps[label] += reference.oracles.n_hvp
        for metric, exact in results["tight"].items():
            got = results["certified"][metric]
            if math.isnan(exact):
                assert math.isnan(got), metric
                continue
            assert abs(got - exact) <= METRIC_RTOL * max(
                abs(exact), ABSOLUTE_FLOOR), (metric, got, exact)
    assert hvps["certified"] < hvps["tight"]


def test_without_a_bound_the_solves_keep_the_fixed_tolerance(quadratic):
    reference = ReferenceMetrics(quadratic)
    reference.problem.inner_strong_convexity = lambda x: None
    x = quadratic.x0 + 1.0
    y_star = reference.inner_solution(x)
    exact = quadratic.inner_solution(x)
    assert float((y_star - exact).norm() / exact.norm()) < 1e-11


#: Problems with a preconditioner, and the most preconditioned CG steps to
#: a relative residual of 1e-9 from zero at a point near the start (plain
#: CG must take more than twice as many). Near the start: hyper-cleaning's
#: Kronecker factorisation holds while few training probabilities are
#: saturated (docs/performance.md, "Evaluation cost").
PRECONDITIONED = {
    "quadratic": (lambda: QuadraticProblem(dim_x=10, dim_y=60,
                                           kappa=1000.0), 1),
    "quadratic_samples": (lambda: SampleQuadraticProblem(
        dim_x=10, dim_y=60, n_train=200, n_val=50, kappa=1000.0), 1),
    "synthetic": (lambda: SyntheticProblem(n=300, kappa=1e5, seed=1), 6),
    "hyperclean": (lambda: hyperclean_problem(n_train=600), 30),
}


@pytest.mark.parametrize("name", list(PRECONDITIONED))
def test_preconditioner_is_spd_and_cuts_the_cg_steps(name):
    make_problem, max_steps = PRECONDITIONED[name]
    problem = make_problem()
    generator = torch.Generator().manual_seed(4)
    x = problem.x0 + 0.5 * torch.randn(problem.x0.shape, generator=generator)
    y = problem.y0 + 0.01 * torch.randn(problem.y0.shape,
                                        generator=generator)
    u, w = (torch.randn(problem.y0.shape, generator=generator)
            for _ in range(2))
    inverse = problem.hessian_preconditioner(x, y)
    # Symmetric and positive definite, as conjugate gradient needs.
    assert float(torch.dot(u, inverse(w))) == pytest.approx(
        float(torch.dot(w, inverse(u))), rel=1e-10)
    assert float(torch.dot(u, inverse(u))) > 0
    hessian = Oracles(problem, "closed_form").hessian_at(x, y)
    tol = 1e-9 * float(torch.linalg.vector_norm(u))
    _, n_plain = conjugate_gradient(hessian, u, tol=tol, max_iter=3000)
    solution, n_preconditioned = conjugate_gradient(
        hessian, u, tol=tol, max_iter=3000, preconditioner=inverse)
    # The tolerance holds for the system's own residual.
    assert float(torch.linalg.vector_norm(hessian(solution) - u)) <= (
        1.01 * tol)
    print(f"{name}: {n_plain} plain CG steps, {n_preconditioned} "
          "preconditioned")
    assert n_preconditioned <= max_steps
    assert 2 * n_preconditioned < n_plain
