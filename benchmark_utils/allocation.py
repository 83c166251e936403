"""Memory that a run cannot have: checks before a large allocation, and
allocation failures told apart from other errors.

A dataset, an objective set-up or a solver's state whose size is known
beforehand (the synthetic problem's dense matrices, SABA's tables) is
checked against the device's free memory before it is allocated
(:func:`check_memory_fits`), so that the message can name the parameter to
lower. Anything else that runs out of memory (:func:`is_allocation_failure`)
is reported with the size PyTorch asked for.
"""
import re

import torch


class InsufficientMemoryError(MemoryError):
    """What :func:`check_memory_fits` raises: its message says what needed
    how much, what is free and what to lower."""


def check_memory_fits(n_bytes, device, what, advice):
    """A clear :class:`InsufficientMemoryError`, before anything is
    allocated, when
    ``n_bytes`` would not fit in the free memory of ``device`` (CUDA's free
    memory, or the CPU's available memory as /proc/meminfo reports it,
    where there is one). ``what`` names what needs it, ``advice`` says how
    to need less."""
    device = torch.device(device)
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = available_cpu_memory()
        if free is None:
            return
    if n_bytes > free:
        raise InsufficientMemoryError(
            f"{what} needs {readable(n_bytes)}, more than the "
            f"{readable(free)} free on {device}: {advice}.")


def is_allocation_failure(error):
    """True for an error that says memory ran out: Python's MemoryError,
    CUDA's out-of-memory error, or the CPU allocator's failure (a plain
    RuntimeError from PyTorch)."""
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    message = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in message or "out of memory" in message)


def allocation_failure_message(what, error, advice):
    """The message of the allocation failure ``error`` while ``what`` was
    set up: the size that was asked for (PyTorch's own words), the memory
    available and ``advice``; an :class:`InsufficientMemoryError`'s own
    message, which says all that already."""
    if isinstance(error, InsufficientMemoryError):
        return str(error)
    lines = str(error).strip().splitlines()
    # PyTorch's CPU message starts with its source location and check
    # ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator:
    # can't allocate memory: you tried to allocate N bytes. ..."): the rest
    # of its last line says what was asked for.
    detail = (re.sub(r"^\[enforce fail at [^\]]*\] [^.]*\. ", "", lines[-1])
              if lines else type(error).__name__)
    free = available_cpu_memory()
    available = ("" if free is None
                 else f"; {readable(free)} is available on this machine")
    return f"{what} ran out of memory ({detail}{available}): {advice}."


def readable(n_bytes):
    """A size in KiB, MiB or GiB."""
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30),
                       ("MiB", 2 ** 20)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes / 2 ** 10:.1f} KiB"


def available_cpu_memory():
    """MemAvailable of /proc/meminfo, in bytes; None where there is none."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
