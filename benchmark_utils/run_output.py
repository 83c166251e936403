"""What a run keeps in its output folder besides benchopt's results file,
so that an interrupted run or two runs at once lose nothing.

benchopt writes its results file (``outputs/<name>.parquet``) once, at the
end of a run: a run stopped by Ctrl-C writes none, and with ``--no-cache``
the finished curves are then gone. It also gives each curve a folder of its
own, ``outputs/<name>/<dataset>/<objective>/<solver>/rep_<k>/``, where this
benchmark writes:

- ``curve.parquet``: the curve's rows, as benchopt would write them, as
  soon as the curve ends (:func:`write_curve`);
  ``scripts/collect_curves.py outputs/<name>`` merges them into one
  results file;
- ``failure.txt``: the traceback of a solver that raised
  (:mod:`benchmark_utils.curve_status`).

Two runs with the same output name would write the same folders, and
whichever ends last would take the results file's name. The first
``benchopt run`` process to set up an objective therefore holds
``outputs/<name>.lock`` until it exits (:func:`claim_output`); a second run
while it lives is refused, with a message that says to give it its own
``--output``.
"""
import atexit
import multiprocessing
import os
import sys
from pathlib import Path

import pandas as pd

from benchmark_utils.validation import ParameterError

#: The file of a finished curve in its output folder.
CURVE_FILE = "curve.parquet"


class OutputInUseError(ParameterError):
    """Another live ``benchopt run`` writes to the same output name."""


def run_output_folder(component):
    """The folder benchopt gives the curve of ``component`` (a solver or an
    objective) for its files, or None where there is none (outside
    ``benchopt run``)."""
    context = getattr(component, "_run_context", None)
    if context is None or context.run_output_base is None:
        return None
    try:
        return context.get_run_output_path()
    except (RuntimeError, TypeError, OSError):
        return None


def write_curve(component, rows):
    """Write the rows of a finished curve to :data:`CURVE_FILE` in the
    output folder of ``component``'s curve, where there is one."""
    folder = run_output_folder(component)
    if folder is None or not rows:
        return None
    path = Path(folder) / CURVE_FILE
    partial = path.with_name(path.name + ".part")
    pd.DataFrame(rows).to_parquet(partial)
    # A file that exists is complete: an interrupt leaves a .part file.
    os.replace(partial, path)
    return path


def collect_curves(folder):
    """The rows of every finished curve under ``folder`` (an
    ``outputs/<name>`` folder), in one table."""
    paths = sorted(Path(folder).rglob(CURVE_FILE))
    if not paths:
        raise FileNotFoundError(
            f"No finished curve ({CURVE_FILE}) under {folder}.")
    return pd.concat([pd.read_parquet(path) for path in paths],
                     ignore_index=True)


def interrupt_message(component):
    """What to say when a run is interrupted: where its finished curves
    are."""
    folder = run_output_folder(component)
    where = ("" if folder is None else
             " Each finished curve is also in its folder under "
             f"{Path(folder).parents[3]}/ ({CURVE_FILE}): `python "
             f"scripts/collect_curves.py {Path(folder).parents[3]}` merges "
             "them into one results file.")
    return ("\nInterrupted: the curves that finished are kept in benchopt's "
            "cache (unless --no-cache): the same command run again reads "
            f"them back without running them.{where}")


def claim_output(component):
    """Hold ``outputs/<name>.lock`` for this ``benchopt run`` process, or
    raise :class:`OutputInUseError` when another live process holds it.
    Nothing outside the main process of ``benchopt run`` (a parallel
    backend's worker, a test, a script)."""
    context = getattr(component, "_run_context", None)
    base = getattr(context, "run_output_base", None)
    if base is None or not in_benchopt_run_process():
        return
    lock = Path(f"{base}.lock")
    holder = _holder(lock)
    if holder == os.getpid():
        return
    if holder is not None:
        raise OutputInUseError(
            f"Another benchopt run (process {holder}) is writing its results "
            f"under the same output name ({base}.parquet and {base}/): give "
            "this run its own name with --output, or wait for that run to "
            f"end (a lock file {lock} left by a run that no longer exists "
            "is taken over).")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(str(os.getpid()))
    atexit.register(_release, lock)


def _holder(lock):
    """The process that holds ``lock`` if it is alive, else None."""
    try:
        pid = int(lock.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid   # alive, another user's
    return pid


def _release(lock):
    if _holder(lock) == os.getpid():
        lock.unlink(missing_ok=True)


def in_benchopt_run_process():
    """True in the main process of a ``benchopt run`` command (not in a
    parallel worker, a test session or a script that runs solvers)."""
    return (multiprocessing.current_process().name == "MainProcess"
            and len(sys.argv) > 1 and sys.argv[1] == "run"
            and Path(sys.argv[0]).name in ("benchopt", "__main__.py"))
