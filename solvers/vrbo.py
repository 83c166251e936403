from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_int
from benchmark_utils.variance_reduction import (DirectionBatches,
                                                full_pass_period,
                                                neumann_hypergradient,
                                                recursive)


class Solver(BilevelSolver):
    """VRBO (Yang, Ji and Liang, Algorithm 2): SPIDER estimates of d_y g and
    of stocBiO's hypergradient estimate d_x f - d2_xy g v (v a Neumann
    series of Q HVPs): every ``period`` outer iterations both from a full
    pass over the data; then one step on x, and T steps on y, after each of
    which both estimates move by their change between the last point and
    the new one, evaluated on the same batches. ``period='auto'`` is
    (n_train + n_val) / (2 B), SRBA's rule in benchopt's benchmark_bilevel
    (whose VRBO refreshes 256 times less often); T = Q = 10 as there. In
    full batch every outer iteration is a full pass. Per outer iteration:
    at a full pass 2 gradients, Q HVPs and 1 cross product on all the
    samples; and per inner step twice 2 gradients, Q HVPs and 1 cross
    product on batches (B / n of a full pass each)."""

    name = "VRBO"
    warm_starts_v = False
    parameters = {
        "n_inner_steps": [10],
        "n_neumann_steps": [10],
        "step_size_inner": ["auto"],
        "step_size_linsys": ["auto"],
        "step_size_outer": [1.0],
        "period": ["auto"],
        "batch_size": ["full"],
    }
    # What the tuning protocol searches besides the steps (docs/tuning.md):
    # (low, high), integers on a log scale.
    tuning_space = {
        "n_inner_steps": (1, 100),
        "n_neumann_steps": (1, 1000),
    }
    parameter_template = (
        "T={n_inner_steps},Q={n_neumann_steps},inner={step_size_inner},"
        "linsys={step_size_linsys},outer={step_size_outer},period={period},"
        "batch={batch_size}")
    references = [
        "J. Yang, K. Ji and Y. Liang, 'Provably faster algorithms for "
        "bilevel optimization', NeurIPS 2021",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        check_int("n_inner_steps", self.n_inner_steps, 1)
        check_int("n_neumann_steps", self.n_neumann_steps, 1)
        if self.period != "auto":
            check_int("period", self.period, 1)
        self.full_pass_every = full_pass_period(
            self.period, self.batch_size, self.oracles.problem)

    def estimates(self, x, y, batches):
        """(d_y g, the hypergradient estimate) at (x, y) on ``batches``."""
        return (self.oracles.grad_inner(x, y, batches.inner),
                neumann_hypergradient(self.oracles, x, y, batches,
                                      self.linsys_step,
                                      self.n_neumann_steps))

    def step(self, x, y, v):
        if self.n_outer % self.full_pass_every == 0:
            self.directions = self.estimates(x, y, DirectionBatches(
                None, None, [None] * self.n_neumann_steps))
        x_next = x - self.outer_step * self.directions[1]
        point = (x, y)
        for _ in range(self.n_inner_steps):
            y = y - self.inner_step * self.directions[0]
            batches = DirectionBatches(
                self.inner_batch(), self.outer_batch(),
                [self.second_order_batch()
                 for _ in range(self.n_neumann_steps)])
            new = self.estimates(x_next, y, batches)
            old = self.estimates(*point, batches)
            self.directions = [recursive(*estimates) for estimates in zip(
                new, old, self.directions)]
            point = (x_next, y)
        return x_next, y, None
