"""Time and peak memory of one oracle call on a news20-shaped sparse problem.

The lower level of ``regsel_news20`` at its full size: 16,000 documents,
62,061 features with 0.1% non-zeros (random word counts, each document
scaled to unit norm), 20 classes. For the gradient of g and for the HVP in
each mode (reverse-over-reverse, forward-over-reverse, closed form), it
prints the median time over repeated calls and the peak memory one call
adds.

On the CPU (Linux), the peak of a call is the process's peak resident size
during the call (reset before it through /proc/self/clear_refs) minus its
resident size just before. The script runs itself with glibc's mmap
threshold fixed at 64 KiB, so that every freed tensor goes back to the
system and the resident size follows the live tensors. On CUDA, it is
``torch.cuda.max_memory_allocated`` over the call.

    python scripts/sparse_hvp.py [--repeat 10] [--device cpu|cuda]
        [--dtype float64|float32] [--n-samples 16000] [--json]
"""
import argparse
import json
import os
import re
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmark_utils.device import DTYPES, resolve_device  # noqa: E402
from benchmark_utils.oracles import HVP_MODES, Oracles  # noqa: E402
from benchmark_utils.problems.regsel import build_regsel_problem  # noqa: E402
from benchmark_utils.testing.libsvm_files import random_documents  # noqa: E402

N_FEATURES, N_CLASSES, WORDS_PER_SAMPLE = 62_061, 20, 70
N_HELD_OUT = 1_000     # validation and test documents (not timed)
# glibc returns a freed block to the system only above this size.
MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES = "MALLOC_MMAP_THRESHOLD_", 65_536
MEASUREMENTS = [("gradient", "reverse")] + [("hvp", mode)
                                            for mode in HVP_MODES]


def news20_shaped_problem(n_samples, n_features=N_FEATURES, seed=0):
    """A regularization-selection problem with ``n_samples`` training
    documents of news20's shape (and two small held-out splits)."""
    n_held_out = min(N_HELD_OUT, n_samples)
    counts, classes = random_documents(n_samples + 2 * n_held_out,
                                       n_features, N_CLASSES,
                                       WORDS_PER_SAMPLE, seed)
    return build_regsel_problem(
        [(counts, classes.astype(float), "news20-shaped")], n_samples,
        n_held_out, n_held_out, seed, normalize_rows=True)


def memory_status_kib(field):
    """``VmRSS`` (resident size) or ``VmHWM`` (its peak) of this process,
    in KiB (Linux)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1))


def reset_peak_resident():
    Path("/proc/self/clear_refs").write_text("5")


def oracle_calls(problem):
    """{(oracle, mode): a call without arguments} at a fixed random point."""
    generator = torch.Generator().manual_seed(1)
    to_problem = dict(device=problem.device, dtype=problem.dtype)
    x = problem.x0
    y, v = (scale * torch.randn(problem.y0.shape, generator=generator,
                                dtype=torch.float64).to(**to_problem)
            for scale in (0.1, 1.0))
    calls = {}
    for oracle, mode in MEASUREMENTS:
        oracles = Oracles(problem, mode)
        calls[oracle, mode] = (partial(oracles.hvp, x, y, v)
                               if oracle == "hvp"
                               else partial(oracles.grad_inner, x, y))
    return calls


def measure(problem, repeat):
    """For each oracle of MEASUREMENTS: the peak memory (MiB) its first call
    adds and the median time (ms) over ``repeat`` more calls (None if 0)."""
    device = problem.device

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # The very first calls set up thread pools and kernels (about 160 MiB
    # on the CPU): they run on a tiny problem first.
    for call in oracle_calls(news20_shaped_problem(
            10, n_features=100).to(device, problem.dtype)).values():
        call()
    results = []
    for (oracle, mode), call in oracle_calls(problem).items():
        synchronize()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            call()
            synchronize()
            peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20
        else:
            reset_peak_resident()
            before = memory_status_kib("VmRSS")
            call()
            peak = (memory_status_kib("VmHWM") - before) / 1024
        times = []
        for _ in range(repeat):
            synchronize()
            start = time.perf_counter()
            call()
            synchronize()
            times.append(1e3 * (time.perf_counter() - start))
        results.append(dict(
            oracle=oracle, mode=mode, peak_mib=max(peak, 0.0),
            median_ms=statistics.median(times) if times else None))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10,
                        help="timed calls per oracle (0: memory only)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=list(DTYPES))
    parser.add_argument("--n-samples", type=int, default=16_000)
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON line")
    args = parser.parse_args()
    if os.environ.get(MMAP_THRESHOLD) != str(MMAP_THRESHOLD_BYTES):
        os.execve(sys.executable, [sys.executable, *sys.argv],
                  {**os.environ, MMAP_THRESHOLD: str(MMAP_THRESHOLD_BYTES)})
    problem = news20_shaped_problem(args.n_samples).to(
        resolve_device(args.device), DTYPES[args.dtype])
    nnz = problem.train_features.nnz
    results = measure(problem, args.repeat)
    if args.json:
        print(json.dumps(dict(nnz=nnz, results=results)))
        return
    print(f"{args.n_samples} x {N_FEATURES}, {nnz} non-zeros "
          f"({nnz / args.n_samples / N_FEATURES:.2%}), {N_CLASSES} classes, "
          f"{args.dtype} on {args.device}"
          + (f"; median of {args.repeat} calls" if args.repeat else ""))
    print(f"{'oracle':<10}{'mode':<10}{'time (ms)':>12}{'peak (MiB)':>12}")
    for result in results:
        median = result["median_ms"]
        print(f"{result['oracle']:<10}{result['mode']:<10}"
              f"{'-' if median is None else f'{median:.1f}':>12}"
              f"{result['peak_mib']:>12.1f}")


if __name__ == "__main__":
    main()
