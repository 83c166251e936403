from benchmark_utils.sampling import FULL_BATCH, MinibatchStreams
from benchmark_utils.solver import BilevelSolver
from benchmark_utils.allocation import check_memory_fits
from benchmark_utils.variance_reduction import SagaMemory, memory_bytes


class Solver(BilevelSolver):
    """SABA (Dagréou, Ablin, Vaiter and Moreau, Algorithm 2): SOBA's joint
    steps on y, v and x, each of the five stochastic pieces of its
    directions (d_y g, A v and d2_xy g v on a training batch; d_y f and
    d_x f on a validation batch) replaced by its SAGA estimate: the batch's
    new value, minus the one stored for that batch, plus the mean of the
    stored values. The samples are cut into batches once (fixed batches,
    visited in a new order at each epoch) and the memory starts at zero, as
    in benchopt's benchmark_bilevel. With constant steps, it converges
    linearly on a strongly convex problem, where SOBA levels off at its
    noise. Its memory holds, per training batch, two vectors of the size of
    y and one of the size of x, and per validation batch one of each; a
    memory that would not fit on the device stops the run before it starts.
    In full batch it is SOBA. Per outer iteration: 2 gradients, 1 HVP, 1
    cross product (each on a batch, B / n of a full pass)."""

    name = "SABA"
    fixed_batches = True
    parameters = {
        "step_size_inner": ["auto"],
        "step_size_outer": [1.0],
        "batch_size": ["full"],
    }
    parameter_template = (
        "inner={step_size_inner},outer={step_size_outer},batch={batch_size}")
    references = [
        "M. Dagréou, P. Ablin, S. Vaiter and T. Moreau, 'A framework for "
        "bilevel optimization that enables stochastic and global variance "
        "reduction algorithms', NeurIPS 2022",
    ]
    test_config = {"step_size_outer": 0.5}

    def check_parameters(self):
        # The streams name a bad batch size; their batches size the
        # memory (the seed does not change how many there are).
        streams = MinibatchStreams(self.oracles.problem, self.batch_size,
                                   seed=0, fixed_batches=True)
        if self.batch_size == FULL_BATCH:
            return   # one batch
        rows = [streams.inner.n_batches, streams.outer.n_batches]
        check_memory_fits(memory_bytes(
            [(rows[0], self.y0), (rows[0], self.y0), (rows[0], self.x0),
             (rows[1], self.y0), (rows[1], self.x0)]),
            self.oracles.device,
            f"SABA's memory of {rows[0]} training and {rows[1]} validation "
            f"batches of {self.batch_size} samples",
            "use a larger batch_size (fewer batches to remember) or a device "
            "with more memory")

    def init_state(self):
        training, validation = (
            [self.oracles.problem.n_inner_samples or 1] if stream.batches
            is None else [len(batch) for batch in stream.batches]
            for stream in (self.batches.inner, self.batches.outer))
        self.memory = dict(
            grad_y_g=SagaMemory(training, self.y0),
            hvp=SagaMemory(training, self.y0),
            cross=SagaMemory(training, self.x0),
            grad_y_f=SagaMemory(validation, self.y0),
            grad_x_f=SagaMemory(validation, self.x0))

    def step(self, x, y, v):
        inner = self.inner_batch()
        i = self.batches.inner.batch_index
        outer = self.outer_batch()
        j = self.batches.outer.batch_index
        grad_y_g = self.oracles.grad_inner(x, y, inner)
        hvp, cross = self.oracles.hvp_and_cross(x, y, v, inner)
        grad_x_f, grad_y_f = self.oracles.grad_outer(x, y, outer)
        memory = self.memory
        d_y = memory["grad_y_g"].update(i, grad_y_g)
        d_v = (memory["hvp"].update(i, hvp)
               - memory["grad_y_f"].update(j, grad_y_f))
        d_x = (memory["grad_x_f"].update(j, grad_x_f)
               - memory["cross"].update(i, cross))
        return (x - self.outer_step * d_x, y - self.inner_step * d_y,
                v - self.inner_step * d_v)
