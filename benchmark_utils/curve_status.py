"""How a curve ended, as benchopt's console prints it, and what a failure
leaves behind: the console line, the traceback file and the run's exit
status.

benchopt ends a curve with a status that its console prints next to the
curve's name ('done', 'done (timeout)'...). Its own statuses 'diverged' and
'error' make it drop every point of the curve. This benchmark keeps them:

- a curve that the objective marked as diverged (``objective_diverged``)
  ends with :data:`DIVERGED`;
- a curve whose solver raised, or whose untimed evaluation ran past its
  time limit, ends with :data:`FAILED`, on a last point marked in
  ``objective_failed``.

Both are added to benchopt's table of console statuses (its
``terminal_output.STATUS``) when this module is imported, so that the
console says 'diverged' or 'failed' where it would say 'done', and benchopt
still writes the curve.

**Exit status.** ``benchopt run`` exits with 0 whenever it wrote a results
file and gives a benchmark no hook at the end of the run. A failure in the
process of ``benchopt run`` itself (the default, sequential run) therefore
registers an exit handler that prints which curves failed and ends the
process with status 1, after running every other exit handler. A curve run
by a parallel backend's worker, or served from benchopt's cache, is marked
in the console and in the results but does not change the exit status.
"""
import atexit
import os
import sys
import traceback
from pathlib import Path

from benchopt.utils import terminal_output

from benchmark_utils.run_output import in_benchopt_run_process

#: The statuses of a curve that ended diverged or failed, its points kept.
DIVERGED = "diverged"
FAILED = "failed"
#: benchopt's statuses that drop a curve: a kept curve must not use them.
_DROPPED_BY_BENCHOPT = ("diverged", "error", "interrupted")
#: The keys under which the two statuses are registered with benchopt (its
#: key 'diverged' is one that drops the curve), and what the console says.
STATUS_KEYS = {DIVERGED: "diverged (points kept)",
               FAILED: "failed (points kept)"}
for _label in STATUS_KEYS.values():
    assert _label not in _DROPPED_BY_BENCHOPT
    terminal_output.STATUS.setdefault(_label, (_label, terminal_output.RED))

#: The file, in the curve's output folder, that holds a failure's traceback.
TRACEBACK_FILE = "failure.txt"

#: The curves that failed in this process: (curve, message).
FAILED_CURVES = []


def failure_message(error):
    """One line naming an exception: its type and its message."""
    return f"{type(error).__name__}: {error}".strip().rstrip(":")


def report_failure(curve, message, where, details=None, output_folder=None):
    """Say on the console that ``curve`` failed ``where`` with ``message``,
    write ``details`` (a traceback) to :data:`TRACEBACK_FILE` in
    ``output_folder`` (or print them when there is none) and count the
    failure for the run's exit status."""
    line = (f"\n    {curve} failed {where}: {message}\n"
            "    Its points up to there are kept; the last one is marked in "
            "objective_failed.")
    if details and output_folder is not None:
        path = Path(output_folder) / TRACEBACK_FILE
        path.write_text(details)
        line += f"\n    Traceback: {path}"
    print(line, flush=True)
    if details and output_folder is None:
        print(details, file=sys.stderr, flush=True)
    FAILED_CURVES.append((str(curve), message))
    if len(FAILED_CURVES) == 1 and in_benchopt_run_process():
        # Registered now, after every library's handler: it runs first,
        # then runs the others itself before setting the status.
        atexit.register(_exit_with_failure_status)


def traceback_text(error):
    return "".join(traceback.format_exception(error))


def _exit_with_failure_status():
    atexit.unregister(_exit_with_failure_status)
    print(f"\n{len(FAILED_CURVES)} curve(s) failed; their points are kept "
          "and the last one of each is marked in objective_failed:")
    for curve, message in FAILED_CURVES:
        print(f"  - {curve}: {message}")
    # os._exit skips the exit handlers that have not run yet: run them
    # first (the interpreter would have run them after this one).
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)
