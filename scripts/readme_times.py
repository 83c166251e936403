"""Time the README's two commands (the quickstart run, and the lint and
tests) as whole processes, in a fresh clone of this repository's committed
state, and print the figures with the machine they were taken on.

Two ways to run them (the output says which):

- ``--venv own`` (default): the commands as the README writes them, each
  creating and filling its own virtual environment in the clone with
  ``pip`` (the package registry must be reachable), so the times include
  the install, as the README's first figure does;
- ``--venv current``: the commands without their virtual-environment and
  ``pip install`` steps, run with this Python's environment (the
  browser assets of ``.cache/browser-assets`` are linked into the clone
  when they exist), so the times are those of the run and the tests
  alone.

Take the times on an idle machine: every other process slows both.
``--keep-outputs DIR`` copies what the commands wrote in the clone's
``outputs/`` (the quickstart's results and report) to DIR before the
clone is removed.

Usage (from the benchmark folder; about 20 minutes on 2 CPU cores):
    python scripts/readme_times.py [--venv own|current] [--only run|tests]
        [--keep-outputs DIR]
"""
import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The steps of a README command that set up its virtual environment.
SETUP_STEP = re.compile(r"python3 -m venv |\. \.venv/bin/activate$|"
                        r"pip install ")


def readme_commands(readme=README):
    """{'run': the first bash command of the README (the quickstart),
    'tests': the one after its ``<!-- test-command -->`` marker}."""
    text = readme.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    tests = re.search(r"<!-- test-command -->\s*```bash\n(.*?)```", text,
                      re.S)
    if not blocks or tests is None:
        sys.exit("readme_times.py: the README lost its commands")
    return {"run": blocks[0].strip(), "tests": tests.group(1).strip()}


def without_setup(command):
    """``command`` without its virtual-environment and install steps."""
    steps = [step.strip() for step in command.split("&&")]
    return " && ".join(step for step in steps
                       if not SETUP_STEP.search(step))


def time_command(command, folder, env=None):
    """(wall-clock seconds, exit status) of ``bash -c command`` in
    ``folder``, its output shown as it runs."""
    start = time.perf_counter()
    completed = subprocess.run(["bash", "-c", command], cwd=folder, env=env)
    return time.perf_counter() - start, completed.returncode


def machine():
    """The CPU model, its number of cores and the load average."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.*)", cpuinfo.read_text())
        model = found.group(1) if found else model
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{model}, {os.cpu_count()} cores, load average {load:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", choices=["own", "current"], default="own")
    parser.add_argument("--only", choices=["run", "tests"])
    parser.add_argument("--keep-outputs", type=Path, metavar="DIR",
                        help="copy the clone's outputs/ folder here")
    args = parser.parse_args(argv)
    commands = readme_commands()
    if args.only:
        commands = {args.only: commands[args.only]}
    env = None
    if args.venv == "current":
        commands = {name: without_setup(command)
                    for name, command in commands.items()}
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}"
               f"{os.pathsep}{os.environ['PATH']}"}
    print(f"Machine: {machine()}")
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        clone = Path(folder) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)],
                       check=True)
        assets = ROOT / ".cache" / "browser-assets"
        if args.venv == "current" and assets.is_dir():
            (clone / ".cache").mkdir()
            (clone / ".cache" / "browser-assets").symlink_to(assets)
        for name, command in commands.items():
            print(f"\n$ {command}", flush=True)
            times[name] = time_command(command, clone, env)
        if args.keep_outputs and (clone / "outputs").is_dir():
            shutil.copytree(clone / "outputs", args.keep_outputs,
                            dirs_exist_ok=True)
    print(f"\nREADME commands, fresh clone of {ROOT.name}, "
          f"{'their own' if args.venv == 'own' else 'the current'} "
          f"virtual environment; {machine()}:")
    for name, (seconds, status) in times.items():
        outcome = "" if status == 0 else f" (exit status {status})"
        print(f"  {name}: {seconds / 60:.1f} min{outcome}")
    return max(status for _, status in times.values())


if __name__ == "__main__":
    sys.exit(main())
