"""The neural-network problems (hyper-cleaning with a multilayer
perceptron, dataset distillation): their networks, oracles against finite
differences and against the other automatic mode, exact counts, their
deterministic start, minibatch means, and their datasets offline and
through the torchvision loaders."""
from fractions import Fraction

import pytest
import torch
from benchopt.utils.run_context import RunContext
from conftest import (assert_counts_per_iteration, get_dataset_class,
                      make_objective, run_solver)
from neural_problems import (RANDOM_PIXELS, random_images,
                             small_distillation_problem,
                             small_mlp_hypercleaning_problem)

from benchmark_utils.oracles import Oracles
from benchmark_utils.problems.distillation import build_distillation_problem
from benchmark_utils.problems.hypercleaning import build_hypercleaning_problem
from benchmark_utils.problems.mlp_hypercleaning import (
    build_mlp_hypercleaning_problem)
from benchmark_utils.problems.networks import MLPClassifier
from benchmark_utils.testing.idx_files import write_random_set

PROBLEMS = {
    "mlp_hypercleaning": small_mlp_hypercleaning_problem,
    "mlp_distillation": lambda: small_distillation_problem("mlp"),
    "linear_distillation": lambda: small_distillation_problem("linear"),
}


@pytest.fixture(scope="module", params=list(PROBLEMS))
def problem(request):
    return PROBLEMS[request.param]()


def point(problem, seed=0):
    """(x, y, v, u): x and y near the start, directions v (size of y) and
    u (size of x)."""
    generator = torch.Generator().manual_seed(seed)

    def noise(like):
        return torch.randn(like.shape, generator=generator)

    x = problem.x0 + 0.5 * noise(problem.x0)
    y = problem.y0 + 0.3 * noise(problem.y0)
    return x, y, noise(problem.y0), noise(problem.x0)


def central_difference(function, at, direction, eps=1e-6):
    return (function(at + eps * direction)
            - function(at - eps * direction)) / (2 * eps)


# -- the network ------------------------------------------------------------


def test_mlp_logits_are_those_of_the_torch_modules():
    network = MLPClassifier(n_features=8, n_classes=10, n_hidden=4)
    y = network.initial_parameters(torch.Generator().manual_seed(0),
                                   torch.float64)
    hidden_weights, output_weights, output_bias = network.weights(y)
    module = torch.nn.Sequential(
        torch.nn.Linear(8, 4, bias=False), torch.nn.Tanh(),
        torch.nn.Linear(4, 10)).double()
    with torch.no_grad():
        module[0].weight.copy_(hidden_weights)
        module[2].weight.copy_(output_weights)
        module[2].bias.copy_(output_bias + 0.1)
    features = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    y_shifted = y.clone()
    y_shifted[-10:] += 0.1
    torch.testing.assert_close(network.logits(y_shifted, features),
                               module(features), rtol=1e-14, atol=1e-14)
    assert network.n_parameters == 4 * 8 + 10 * 4 + 10


def test_mlp_starts_as_torch_linear_layers_do():
    network = MLPClassifier(n_features=785, n_classes=10, n_hidden=300)
    y = network.initial_parameters(torch.Generator().manual_seed(0),
                                   torch.float64)
    hidden_weights, output_weights, output_bias = network.weights(y)
    assert y.numel() == 238_510
    # Uniform in +-1/sqrt(fan-in): the bound, and the variance bound^2 / 3.
    for weights, fan_in in ((hidden_weights, 785), (output_weights, 300)):
        bound = fan_in ** -0.5
        assert float(weights.abs().max()) <= bound
        assert float(weights.var()) == pytest.approx(bound ** 2 / 3,
                                                     rel=0.02)
    assert torch.equal(output_bias, torch.zeros(10))


# -- oracles ---------------------------------------------------------------


def test_gradients_match_finite_differences(problem):
    x, y, v, u = point(problem)
    oracles = Oracles(problem, "reverse")
    grad_x_g, grad_y_g = oracles.grad_inner_xy(x, y)
    grad_x_f, grad_y_f = oracles.grad_outer(x, y)
    checks = [
        (grad_y_g, lambda z: problem.g(x, z), y, v),
        (grad_x_g, lambda z: problem.g(z, y), x, u),
        (grad_y_f, lambda z: problem.f(x, z), y, v),
        (grad_x_f, lambda z: problem.f(z, y), x, u),
    ]
    for gradient, function, at, direction in checks:
        assert float(gradient @ direction) == pytest.approx(
            float(central_difference(function, at, direction)), rel=1e-6,
            abs=1e-9)
    torch.testing.assert_close(oracles.grad_inner(x, y), grad_y_g)
    torch.testing.assert_close(oracles.grad_inner_x(x, y), grad_x_g)


def test_second_order_products_match_finite_differences(problem):
    x, y, v, u = point(problem)
    oracles = Oracles(problem, "reverse")
    grad_x = Oracles(problem, "reverse").grad_inner_x
    grad_y = Oracles(problem, "reverse").grad_inner
    expected = {
        "hvp": central_difference(lambda z: grad_y(x, z), y, v),
        "cross": central_difference(lambda z: grad_x(x, z), y, v),
        "cross_transpose": central_difference(lambda z: grad_y(z, y), x, u),
    }
    got = {"hvp": oracles.hvp(x, y, v), "cross": oracles.cross(x, y, v),
           "cross_transpose": oracles.cross_transpose(x, y, u)}
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=1e-6, atol=1e-8,
                                   msg=name)
    hvp, cross = oracles.hvp_and_cross(x, y, v)
    torch.testing.assert_close(hvp, got["hvp"], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(cross, got["cross"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("on_batch", [False, True])
def test_forward_and_reverse_modes_agree(problem, on_batch):
    x, y, v, u = point(problem, seed=1)
    inner = outer = None
    if on_batch:
        generator = torch.Generator().manual_seed(2)
        inner = torch.randperm(problem.n_inner_samples,
                               generator=generator)[:3]
        outer = torch.randperm(problem.n_outer_samples,
                               generator=generator)[:7]
    reverse, forward = Oracles(problem, "reverse"), Oracles(problem,
                                                             "forward")
    calls = {
        "hvp": lambda o: o.hvp(x, y, v, inner),
        "hessian_at": lambda o: o.hessian_at(x, y, inner)(v),
        "cross": lambda o: o.cross(x, y, v, inner),
        "cross_transpose": lambda o: o.cross_transpose(x, y, u, inner),
        "hvp_and_cross": lambda o: torch.cat(o.hvp_and_cross(x, y, v,
                                                             inner)),
        "grad_outer": lambda o: torch.cat(o.grad_outer(x, y, outer)),
    }
    for name, call in calls.items():
        torch.testing.assert_close(call(forward), call(reverse), rtol=1e-10,
                                   atol=1e-13, msg=name)
    assert forward.counts() == reverse.counts()


def test_oracle_counts_are_exact_in_full_batch_passes(problem):
    x, y, v, _ = point(problem)
    oracles = Oracles(problem, "reverse")
    batch = torch.arange(2)
    oracles.grad_inner(x, y, batch)
    oracles.hvp(x, y, v, batch)
    oracles.hvp_and_cross(x, y, v)
    oracles.grad_outer(x, y, torch.arange(3))
    n, n_val = problem.n_inner_samples, problem.n_outer_samples
    assert oracles.counts() == dict(
        n_grad=2 / n + 3 / n_val, n_hvp=2 / n + 1, n_cross=1.0,
        n_epochs=4 / n + 1)


@pytest.mark.parametrize("name", ["mlp_hypercleaning", "mlp_distillation"])
def test_solver_counts_per_iteration_are_exact(name):
    # SOBA: 2 gradients and 1 fused HVP and cross product per iteration,
    # each on a batch of B of n samples counting B / n, exactly.
    problem = PROBLEMS[name]()
    assert_counts_per_iteration(
        problem, "SOBA", {}, dict(n_grad=2, n_hvp=1, n_cross=1, n_epochs=2),
        5)
    n, n_val = problem.n_inner_samples, problem.n_outer_samples
    solver, _, _ = run_solver("SOBA", problem, 5, batch_size=2)
    assert solver.get_result()["counts"] == {
        key: float(5 * value) for key, value in dict(
            n_grad=Fraction(2, n) + Fraction(2, n_val), n_hvp=Fraction(2, n),
            n_cross=Fraction(2, n), n_epochs=Fraction(4, n)).items()}


def test_minibatch_means_equal_the_full_functions(problem):
    x, y, v, _ = point(problem, seed=3)
    oracles = Oracles(problem, "reverse")
    for n_samples, function, gradient in (
            (problem.n_inner_samples, problem.g, oracles.grad_inner),
            (problem.n_outer_samples, problem.f,
             lambda x, y, batch: oracles.grad_outer(x, y, batch)[1])):
        # One epoch of batches of 3, the last one shorter, each weighted by
        # its size.
        batches = torch.randperm(
            n_samples, generator=torch.Generator().manual_seed(4)).split(3)
        weights = [len(batch) / n_samples for batch in batches]
        torch.testing.assert_close(
            sum(w * function(x, y, batch)
                for w, batch in zip(weights, batches)),
            function(x, y), rtol=1e-13, atol=0)
        torch.testing.assert_close(
            sum(w * gradient(x, y, batch)
                for w, batch in zip(weights, batches)),
            gradient(x, y, None), rtol=1e-12, atol=1e-15)
    batches = torch.arange(problem.n_inner_samples).split(4)
    torch.testing.assert_close(
        sum(len(batch) / problem.n_inner_samples * oracles.hvp(x, y, v,
                                                               batch)
            for batch in batches),
        oracles.hvp(x, y, v), rtol=1e-12, atol=1e-15)


# -- the start and the data ------------------------------------------------


def test_the_mlp_problem_has_the_linear_problems_sets():
    pool = random_images(80, 5)
    linear = build_hypercleaning_problem(pool, None, RANDOM_PIXELS, 40, 20,
                                         0.5, 0.01, seed=5, n_test=20)
    mlp = build_mlp_hypercleaning_problem(pool, None, RANDOM_PIXELS, 40, 20,
                                          0.5, 0.01, 5, seed=5, n_test=20)
    for key in ("train_features", "train_labels", "val_features",
                "val_labels", "test_features", "test_labels", "corrupted",
                "x0"):
        assert torch.equal(getattr(linear, key), getattr(mlp, key)), key
    assert not mlp.lower_level_convex and linear.lower_level_convex
    assert mlp.inner_strong_convexity(mlp.x0) is None
    assert not mlp.has_closed_form_derivatives


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_same_seed_same_start_other_seed_other_start(name):
    build = {
        "mlp_hypercleaning": small_mlp_hypercleaning_problem,
        "mlp_distillation": lambda seed: small_distillation_problem(
            "mlp", seed),
        "linear_distillation": lambda seed: small_distillation_problem(
            "linear", seed),
    }[name]
    first, again, other = build(seed=7), build(seed=7), build(seed=8)
    assert torch.equal(first.x0, again.x0)
    assert torch.equal(first.y0, again.y0)
    assert not torch.equal(first.x0, other.x0) or name == "mlp_hypercleaning"
    if name != "linear_distillation":   # the linear classifier starts at 0
        assert not torch.equal(first.y0, other.y0)
        assert float(first.y0.abs().min()) < float(first.y0.abs().max())


def test_distilled_images_start_from_training_images_of_their_class():
    problem = small_distillation_problem("mlp", images_per_class=2)
    images = problem.x0.view(20, -1)
    assert torch.equal(problem.distilled_labels,
                       torch.arange(10).repeat_interleave(2))
    for image, label in zip(images, problem.distilled_labels):
        matches = (problem.train_features[:, :-1] == image).all(dim=1)
        assert bool(matches.any())
        assert bool((problem.train_labels[matches] == label).all())


def test_distilled_images_from_noise_are_standard_normal():
    problem = small_distillation_problem("mlp", init="noise")
    assert problem.x0.shape == (10 * 36,)
    assert abs(float(problem.x0.mean())) < 0.2
    assert float(problem.x0.std()) == pytest.approx(1.0, abs=0.15)


def test_linear_distillation_is_strongly_convex_and_the_mlp_is_not():
    linear = small_distillation_problem("linear", reg=0.05)
    mlp = small_distillation_problem("mlp", reg=0.05)
    assert linear.lower_level_convex and not mlp.lower_level_convex
    assert linear.inner_strong_convexity(linear.x0) == pytest.approx(0.1)
    assert mlp.inner_strong_convexity(mlp.x0) is None
    # The linear g's Hessian is 2 reg I plus a positive semi-definite part.
    hessian = torch.func.hessian(lambda y: linear.g(linear.x0, y))(
        linear.y0 + 0.1)
    assert float(torch.linalg.eigvalsh(hessian)[0]) >= 0.1 - 1e-12


@pytest.mark.parametrize("options, message", [
    (dict(init="zeros"), "init must be one of 'real', 'noise'"),
    (dict(model="cnn"), "model must be one of 'linear', 'mlp'"),
    (dict(images_per_class=0), "images_per_class must be an integer >= 1"),
    (dict(images_per_class=7),
     "images_per_class must be at most 6 with init='real'"),
    (dict(n_hidden=0), "n_hidden must be an integer >= 1"),
    (dict(reg=-0.1), "reg must be a finite number >= 0"),
])
def test_bad_distillation_parameters_are_clear_errors(options, message):
    options = {"model": "mlp", **options}
    with pytest.raises(ValueError, match=message):
        build_distillation_problem(random_images(80, 0), None, RANDOM_PIXELS,
                                   n_train=60, seed=0, n_test=20,
                                   n_hidden=options.pop("n_hidden", 5),
                                   **options)


def build_dataset(name, **params):
    dataset = get_dataset_class(name).get_instance(**params)
    RunContext().set_run_context("objective", dataset, "solver",
                                 repetition=0, base_seed=0)
    data = dataset.get_data()
    assert "unusable" not in data, data.get("unusable")
    return data["problem"]


def test_offline_datasets_build_on_the_mnist5k_digits():
    mlp = build_dataset("hyperclean_mlp_mnist5k", n_train=200, n_val=100,
                        n_test=100, n_hidden=20)
    linear = build_dataset("hyperclean_mnist5k", n_train=200, n_val=100,
                           n_test=100)
    assert torch.equal(mlp.train_features, linear.train_features)
    assert torch.equal(mlp.corrupted, linear.corrupted)
    assert mlp.y0.shape == (20 * 785 + 10 * 20 + 10,)
    distillation = build_dataset("distill_mnist5k", n_train=300, n_test=100,
                                 n_hidden=20)
    assert distillation.x0.shape == (10 * 784,)
    assert distillation.train_features.shape == (300, 785)
    assert distillation.test_features.shape == (100, 785)
    assert not distillation.lower_level_convex


@pytest.mark.parametrize("short, torchvision_name", [
    ("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"),
    ("kmnist", "KMNIST")])
def test_torchvision_datasets_build_from_idx_files(tmp_path, monkeypatch,
                                                   short, torchvision_name):
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(tmp_path))
    written = write_random_set(tmp_path / "torchvision", torchvision_name,
                               n_train=60, n_test=12, seed=3)
    mlp = build_dataset(f"hyperclean_mlp_{short}", corruption_rate=0.5,
                        n_train=30, n_val=20, n_hidden=4)
    assert mlp.train_features.shape == (30, 785)
    assert torch.equal(mlp.test_labels, written[False][1].long())
    distillation = build_dataset(f"distill_{short}", n_train=60,
                                 init="noise", n_hidden=4)
    assert distillation.train_features.shape == (60, 785)
    assert torch.equal(distillation.test_labels, written[False][1].long())


def test_objective_runs_the_mlp_problem_in_float32():
    problem = small_mlp_hypercleaning_problem()
    objective = make_objective(problem, dtype="float32")
    assert objective.problem.y0.dtype == torch.float32
    assert objective.reference.problem.y0.dtype == torch.float64
    start = objective.evaluate_result(**objective.get_one_result())
    # In float64, at the solver's float32 start.
    rounded = problem.y0.float().double()
    assert not torch.equal(rounded, problem.y0)
    assert start["value_at_y"] == pytest.approx(
        float(problem.f(problem.x0, rounded)), rel=1e-13)
