"""The computations behind the benchmark's custom plots in ``plots/``:
curves against HVPs and gradient-equivalent work, and budget tables."""
