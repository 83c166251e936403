from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import (check_at_least, check_int,
                                        check_momentum)
from benchmark_utils.variance_reduction import MomentumHypergradient


class Solver(BilevelSolver):
    """MRBO (Yang, Ji and Liang, Algorithm 1): one step on y and one on x
    per iteration, along STORM estimates (momentum-based variance
    reduction) of d_y g and of stocBiO's hypergradient estimate
    d_x f - d2_xy g v, v a Neumann series of Q HVPs for A^-1 d_y f:

        d_k = e(x_k, y_k) + momentum_k (d_{k-1} - e(x_{k-1}, y_{k-1})),

    both estimates e of a pair on the same batches. The paper's schedule
    (its Theorem 1): steps decaying as (k + 1)^(-1/3) and a momentum
    1 - eta_k with eta_k decaying as (k + 1)^(-2/3), so that the weight
    of the past tends to 1; eta_0 = 1 - momentum = 0.5 and Q = 10 as in
    benchopt's benchmark_bilevel. Decays of 0 give constant steps. In full
    batch it is stocBiO with one inner step. Per outer iteration: 2 gradients,
    Q HVPs, 1 cross product at each of the two points (at the first
    iteration, one point; each on a batch, B / n of a full pass)."""

    name = "MRBO"
    warm_starts_v = False
    parameters = {
        "n_neumann_steps": [10],
        "step_size_inner": ["auto"],
        "step_size_linsys": ["auto"],
        "step_size_outer": [1.0],
        "momentum": [0.5],
        "batch_size": ["full"],
        "decay_inner, decay_outer, decay_momentum": [(1 / 3, 1 / 3, 2 / 3)],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high), integers on a log scale.
    tuning_space = {
        "n_neumann_steps": (1, 1000),
    }
    parameter_template = (
        "Q={n_neumann_steps},inner={step_size_inner},"
        "linsys={step_size_linsys},outer={step_size_outer},"
        "momentum={momentum},batch={batch_size},"
        "decay={decay_inner:.2g}/{decay_outer:.2g}/{decay_momentum:.2g}")
    references = [
        "J. Yang, K. Ji and Y. Liang, 'Provably faster algorithms for "
        "bilevel optimization', NeurIPS 2021",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_neumann_steps", self.n_neumann_steps, 1)
        check_momentum("momentum", self.momentum)
        for name in ("decay_inner", "decay_outer", "decay_momentum"):
            check_at_least(name, getattr(self, name), 0.0)

    def init_state(self):
        self.estimator = MomentumHypergradient(self)

    def step(self, x, y, v):
        d_y, d_x = self.estimator.directions_at(
            x, y, self.n_neumann_steps,
            self.decayed_momentum(self.momentum, self.decay_momentum))
        return (x - self.decayed(self.outer_step, self.decay_outer) * d_x,
                y - self.decayed(self.inner_step, self.decay_inner) * d_y,
                None)
