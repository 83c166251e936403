"""The computations behind the benchmark's report plots in ``plots/``:
curves against time, HVPs and gradient-equivalent work, budget tables,
labels and colours (``budget``), and performance profiles across datasets
(``profile``)."""
