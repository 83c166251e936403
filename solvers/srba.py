from benchmark_utils.solver import BilevelSolver
from benchmark_utils.validation import check_int
from benchmark_utils.variance_reduction import (DirectionBatches,
                                                full_pass_period, recursive,
                                                soba_directions)


class Solver(BilevelSolver):
    """SRBA (Dagréou, Moreau, Vaiter and Ablin, Algorithm 1): SOBA's joint
    steps on y, v and x along SARAH estimates of its directions (D_y, D_v,
    D_x): every ``period`` outer iterations the exact directions from a
    full pass over the data; in between, the last directions plus their
    change between the previous and the current point, both evaluated on
    the same batches. With constant steps, it converges linearly on a
    strongly convex problem. ``period='auto'`` is (n_train + n_val) /
    (2 B), benchopt's benchmark_bilevel's choice (a full pass per half
    epoch of minibatch work); in full batch every iteration is a full pass
    and SRBA is SOBA. Per outer iteration: at a full pass 2 gradients, 1
    HVP and 1 cross product on all the samples; otherwise twice that on a
    batch (B / n of a full pass each)."""

    name = "SRBA"
    parameters = {
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
        "period": ["auto"],
        "batch_size": ["full"],
    }
    parameter_template = (
        "inner={step_size_inner},outer={step_size_outer},period={period},"
        "batch={batch_size}")
    references = [
        "M. Dagréou, T. Moreau, S. Vaiter and P. Ablin, 'A lower bound and "
        "a near-optimal algorithm for bilevel empirical risk minimization', "
        "AISTATS 2024",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        if self.period != "auto":
            check_int("period", self.period, 1)
        self.full_pass_every = full_pass_period(
            self.period, self.batch_size, self.oracles.problem)

    def init_state(self):
        self.previous = None

    def step(self, x, y, v):
        if self.n_outer % self.full_pass_every == 0:
            self.directions = soba_directions(
                self.oracles, x, y, v, DirectionBatches(None, None, []))
        else:
            batches = DirectionBatches(self.inner_batch(),
                                       self.outer_batch(), [])
            new = soba_directions(self.oracles, x, y, v, batches)
            old = soba_directions(self.oracles, *self.previous, batches)
            self.directions = [recursive(*estimates) for estimates in zip(
                new, old, self.directions)]
        self.previous = (x, y, v)
        d_y, d_v, d_x = self.directions
        return (x - self.outer_step * d_x, y - self.inner_step * d_y,
                v - self.inner_step * d_v)
