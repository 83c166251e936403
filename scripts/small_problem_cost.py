"""Small problems time the math, not Python: microseconds per iteration.

On the quickstart's ``quadratic`` problem (dim_x 50, dim_y 100, kappa 100,
float64), SOBA and LancBiO at m = 80, each in up to three ways, taking
turns in one process:

(a) the benchmark's solver through its run loop, as benchopt runs it
    (``solver.run(callback)`` with a cheap callback; the objective's
    ``hvp_mode='closed_form'``);
(b) the eager floor: the same iteration in plain tensor operations on the
    quadratic's H, B, c and t (``benchmark_utils/testing/handwritten.py``);
(c) SOBA as a JAX-jit loop (``jax.lax.fori_loop`` of the same iteration).
    JAX is an optional extra of this script only (``pip install jax``):
    without it, (c) is skipped with a line that says so.

LancBiO first runs untimed to its steady state (m = 80 by the problem's
``subspace_schedule``, its basis filled once at it:
``steady_state_warmup`` in ``solver_overhead.py``), and every way runs as
many warm-up iterations; then ``--rounds`` times, ``--iterations``
iterations of each way are timed, the device synchronised before each
timing point. The table gives the median over rounds, and how far each
way's final x is from the benchmark's (all have run the same number of
iterations from the same start). Targets: SOBA (a) at most 60 µs per
iteration on 2 CPU cores; LancBiO at m = 80 (a) at most twice SOBA (a).

Then the fixed cost of one oracle call on the same problem in each way
the benchmark could take its derivatives: ``torch.func`` transforms (the
oracles' automatic-differentiation modes), ``torch.autograd.grad`` (with
``create_graph`` for the HVP), the problem's closed forms, and the
benchmark's counting oracles around the closed forms.

Usage (from the benchmark folder):
    python scripts/small_problem_cost.py [--device cpu|cuda] [--rounds 7]
        [--iterations 200]
"""
import argparse
import statistics
import sys
from pathlib import Path

import numpy
import torch
from benchopt.benchmark import Benchmark
from torch.func import grad, vjp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handwritten_speed import Interleaved  # noqa: E402
from oracle_cost import load_dataset  # noqa: E402
from solver_overhead import set_up, steady_state_warmup  # noqa: E402

TARGET_SOBA_US = 60
TARGET_LANCBIO_OVER_SOBA = 2


class JaxSOBA:
    """SOBA on the quadratic as a jitted ``lax.fori_loop``: the iteration of
    ``HandwrittenSOBA`` in JAX, float64, from the solver's start and steps.
    ``run(n)`` runs n iterations and waits for them."""

    def __init__(self, jax, problem, solver, device):
        jnp = jax.numpy

        def array(tensor):
            return jax.device_put(jnp.asarray(tensor.cpu().numpy()), device)

        hessian, coupling = array(problem.hessian), array(problem.coupling)
        shift, target = array(problem.shift), array(problem.target)
        rho, inner, outer = problem.rho, solver.inner_step, solver.outer_step

        def step(_, state):
            x, y, v = state
            grad_y_g = hessian @ y + coupling @ x + shift
            grad_x_f, grad_y_f = rho * x, y - target
            hvp, cross = hessian @ v, coupling.T @ v
            return (x - outer * (grad_x_f - cross), y - inner * grad_y_g,
                    v - inner * (hvp - grad_y_f))

        self.jax = jax
        self.loop = jax.jit(
            lambda state, n: jax.lax.fori_loop(0, n, step, state))
        y0 = array(solver.y0)
        self.state = (array(solver.x0), y0, jnp.zeros_like(y0))

    def run(self, n_iterations):
        self.state = self.jax.block_until_ready(
            self.loop(self.state, n_iterations))

    @property
    def x(self):
        return torch.from_numpy(numpy.array(self.state[0]))


def jax_soba(problem, solver, device):
    """A :class:`JaxSOBA` on the JAX device matching ``device``, or the
    reason why there is none."""
    try:
        import jax
    except ImportError:
        return None, "JAX is not installed (pip install jax)"
    jax.config.update("jax_enable_x64", True)
    try:
        jax_device = jax.devices("gpu" if device.type == "cuda" else "cpu")[0]
    except RuntimeError:
        return None, f"JAX has no {device.type} device here"
    return JaxSOBA(jax, problem, solver, jax_device), None


def relative_difference(x, reference):
    x = x.to(reference.device, reference.dtype)
    return float(torch.linalg.vector_norm(x - reference)
                 / torch.linalg.vector_norm(reference))


def time_ways(solver, others, warmup, iterations, rounds):
    """{way: (median µs per iteration, relative difference of its final x
    from the benchmark's, None for the benchmark)}, the benchmark's solver
    timed through its run loop in turns with the ``others``."""
    callback = Interleaved(others, solver.oracles.device, warmup, iterations,
                           rounds)
    solver.run(callback)
    reference = solver.get_result()["x"]
    return {name: (1e6 * statistics.median(times), None if name not in others
                   else relative_difference(others[name].x, reference))
            for name, times in callback.times.items()}


def oracle_call_costs(problem, device):
    """{way: (µs per gradient d_y g, µs per HVP)} on ``problem`` at its
    start, the calls taking turns (``median_call_times``)."""
    from benchmark_utils.oracle_cost import median_call_times
    from benchmark_utils.oracles import Oracles
    x, y = problem.x0, problem.y0
    v = torch.ones_like(y)
    grad_g_y = grad(problem.g, argnums=1)

    def func_hvp():
        _, pullback = vjp(lambda y_: grad_g_y(x, y_), y)
        return pullback(v)[0]

    def autograd_grad(create_graph=False):
        y_ = y.detach().requires_grad_(True)
        return y_, torch.autograd.grad(problem.g(x, y_), y_,
                                       create_graph=create_graph)[0]

    def autograd_hvp():
        y_, gradient = autograd_grad(create_graph=True)
        return torch.autograd.grad(gradient, y_, grad_outputs=v)[0]

    oracles = Oracles(problem, "closed_form")
    ways = {
        "torch.func (grad; vjp of grad)": (
            lambda: grad_g_y(x, y), func_hvp),
        "torch.autograd.grad (create_graph for the HVP)": (
            autograd_grad, autograd_hvp),
        "closed form (the problem's formulas)": (
            lambda: problem.closed_form_grad_inner(x, y),
            lambda: problem.closed_form_hvp(x, y, v)),
        "benchmark oracles, closed form (counted)": (
            lambda: oracles.grad_inner(x, y), lambda: oracles.hvp(x, y, v)),
    }
    calls = {(way, kind): call for way, pair in ways.items()
             for kind, call in zip(("gradient", "hvp"), pair)}
    medians = median_call_times(calls, device, n_samples=7,
                                min_sample_time=0.01)
    return {way: (1e6 * medians[way, "gradient"], 1e6 * medians[way, "hvp"])
            for way in ways}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--rounds", type=int, default=7,
                        help="timed turns of each way")
    parser.add_argument("--iterations", type=int, default=200,
                        help="iterations per turn")
    args = parser.parse_args()
    from benchmark_utils.testing.handwritten import handwritten
    benchmark = Benchmark(Path(__file__).resolve().parents[1])
    _, problem = load_dataset(benchmark, "quadratic", {})
    objective = benchmark.get_benchmark_objective().get_instance(
        device=args.device, hvp_mode="closed_form")
    objective.set_data(problem)
    problem = objective.problem
    solvers = {s.name: s for s in benchmark.get_solvers()}
    results, skipped = {}, []
    for name in ("SOBA", "LancBiO"):
        solver = set_up(solvers[name].get_instance(), objective)
        others = {"(b) eager floor": handwritten(solver)}
        if name == "SOBA":
            jax_way, reason = jax_soba(problem, solver, problem.device)
            if jax_way is None:
                skipped.append(f"(c) JAX-jit loop skipped: {reason}.")
            else:
                others["(c) JAX-jit loop"] = jax_way
        results[name] = time_ways(solver, others, steady_state_warmup(solver),
                                  args.iterations, args.rounds)
    print(f"quadratic (dim_x 50, dim_y 100), float64, {args.device}: µs per "
          f"iteration, medians of {args.rounds} rounds of {args.iterations} "
          "iterations; in parentheses, the relative difference of the final "
          "x from the benchmark's.\n")
    print("| way | SOBA | LancBiO (m = 80) | LancBiO / SOBA |")
    print("|---|---|---|---|")
    labels = {"benchmark": "(a) benchmark run loop"}

    def cell(name, way):
        if way not in results[name]:
            return "-"
        micros, difference = results[name][way]
        return f"{micros:.1f}" + ("" if difference is None
                                  else f" ({difference:.0e})")

    for way in dict.fromkeys([*results["SOBA"], *results["LancBiO"]]):
        cells = [cell(name, way) for name in ("SOBA", "LancBiO")]
        ratio = (f"{results['LancBiO'][way][0] / results['SOBA'][way][0]:.2f}"
                 if all(way in results[name] for name in results) else "-")
        print(f"| {labels.get(way, way)} | {cells[0]} | {cells[1]} | "
              f"{ratio} |")
    for line in skipped:
        print(f"\n{line}")
    soba, lancbio = (results[name]["benchmark"][0] for name in results)
    print(f"\nTargets: SOBA (a) <= {TARGET_SOBA_US} µs: {soba:.1f}; "
          f"LancBiO (a) <= {TARGET_LANCBIO_OVER_SOBA} x SOBA (a): "
          f"{lancbio / soba:.2f} x.")
    print("\nFixed cost of one oracle call on the quadratic (µs, medians of "
          "7 samples, the calls taking turns).\n")
    print("| way | gradient d_y g | HVP |")
    print("|---|---|---|")
    for way, (gradient, hvp) in oracle_call_costs(
            problem, problem.device).items():
        print(f"| {way} | {gradient:.1f} | {hvp:.1f} |")


if __name__ == "__main__":
    main()
