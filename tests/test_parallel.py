"""Runs beyond one process: configs/parallel/dask.yml against a local dask
cluster bound to 127.0.0.1 gives the sequential run's results, and the
SLURM configuration only uses keys that submitit knows."""
import numpy as np
import pandas as pd
import pytest
import submitit
import yaml
from distributed import LocalCluster

from conftest import ROOT
from test_benchopt import SMALL_QUADRATIC, benchopt

PARALLEL_CONFIGS = ROOT / "configs" / "parallel"
# Deterministic solvers: the same seed gives the same curve.
SOLVERS = ["LancBiO", "SOBA", "AmIGO[inner_solver=gd]"]
# Measured per run (timings): they differ between any two runs.
TIMED_COLUMNS = ["time", "objective_r_hvp", "objective_r_cross"]


def run(output, *options):
    benchopt("run", ".", "-d", SMALL_QUADRATIC,
             *[arg for solver in SOLVERS for arg in ("-s", solver)],
             "--max-runs", "6", "--timeout", "60", "--seed", "0",
             "--no-plot", "--no-cache", "--output", str(output), *options)
    df = pd.read_parquet(output)
    metrics = [column for column in df.columns
               if column.startswith("objective_")
               and column not in ["objective_name", *TIMED_COLUMNS]]
    keys = ["solver_name", "idx_rep", "stop_val"]
    return df[keys + metrics].sort_values(keys).reset_index(drop=True)


@pytest.mark.long
def test_dask_run_gives_the_sequential_results(tmp_path):
    sequential = run(tmp_path / "sequential.parquet")
    config = yaml.safe_load((PARALLEL_CONFIGS / "dask.yml").read_text())
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        config["dask_address"] = cluster.scheduler_address
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        parallel_config = tmp_path / "dask.yml"
        parallel_config.write_text(yaml.safe_dump(config))
        distributed = run(tmp_path / "dask.parquet",
                          "--parallel-config", str(parallel_config))
    # Every solver ran, on more than its starting point.
    assert (sequential.groupby("solver_name")["stop_val"].max() >= 6).all()
    assert sequential["solver_name"].nunique() == len(SOLVERS)
    pd.testing.assert_frame_equal(distributed[sequential.columns[:3]],
                                  sequential[sequential.columns[:3]])
    np.testing.assert_allclose(
        distributed.iloc[:, 3:].to_numpy(dtype=float),
        sequential.iloc[:, 3:].to_numpy(dtype=float), rtol=1e-12, atol=0)


def test_slurm_config_is_one_gpu_per_job_with_keys_submitit_knows(tmp_path):
    config = yaml.safe_load((PARALLEL_CONFIGS / "slurm_gpu.yml").read_text())
    assert config.pop("backend") == "submitit"
    assert config["slurm_gres"] == "gpu:1"
    assert config["slurm_time"] == "02:00:00"   # a string, not seconds
    # What benchopt's submitit backend does with the remaining keys; an
    # unknown slurm_ key raises here.
    executor = submitit.AutoExecutor(tmp_path, cluster="local")
    executor.update_parameters(**config)
