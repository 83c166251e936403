"""Device and dtype selection, and the timing rule for asynchronous devices."""
import re

import torch

from benchmark_utils.validation import ParameterError, check_choice

DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: The values of the objective's ``device`` parameter.
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"


def resolve_device(device):
    """Turn the ``device`` parameter into a ``torch.device``.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise;
    ``"cpu"``, ``"cuda"`` and ``"cuda:<index>"`` are taken as they are.
    """
    if not isinstance(device, str) or not re.fullmatch(DEVICE_PATTERN,
                                                       device):
        raise ParameterError(
            "device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', "
            f"got {device!r}."
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(
            f"device={device!r} was asked for but CUDA is not available on "
            "this machine; use device='cpu' or device='auto'."
        )
    return torch.device(device)


def resolve_dtype(dtype):
    """Turn the ``dtype`` parameter ('float64' or 'float32') into a dtype."""
    check_choice("dtype", dtype, tuple(DTYPES))
    return DTYPES[dtype]


def synchronize(device):
    """Wait for the work queued on ``device`` (nothing to wait for on the
    CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synchronized(callback, device):
    """Return a callback that waits for the device before benchopt's clock.

    benchopt stops the clock as soon as the callback is entered. CUDA kernels
    run asynchronously, so without a synchronisation the work still queued
    would be charged to the untimed evaluation. On the CPU the callback is
    returned unchanged: there is nothing to wait for.
    """
    if device.type != "cuda":
        return callback

    def synchronized_callback():
        torch.cuda.synchronize(device)
        return callback()

    return synchronized_callback
