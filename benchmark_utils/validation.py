"""Checks of user-supplied parameters, each failing with a message that names
the parameter and the values it accepts."""
import math
import numbers


class ParameterError(ValueError):
    """A parameter outside the values it accepts; the message names it and
    them. A dataset whose parameters raise it is skipped with that message
    (:class:`benchmark_utils.data.BilevelDataset`)."""


def check_positive(name, value):
    """``value`` must be a finite number > 0 (a step size, a tolerance...)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value <= 0):
        raise ParameterError(
            f"{name} must be a finite number > 0, got {value!r}."
        )


def check_int(name, value, minimum, maximum=None):
    """``value`` must be an integer in ``[minimum, maximum]``."""
    upper = "" if maximum is None else f" and <= {maximum}"
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < minimum or (maximum is not None and value > maximum)):
        raise ParameterError(
            f"{name} must be an integer >= {minimum}{upper}, got {value!r}."
        )


def check_split_sizes(sizes, n_available, pool):
    """``sizes`` (split name -> number of samples drawn from one pool)
    must be integers >= 1 whose sum is at most ``n_available``, the size of
    the pool that ``pool`` names ("the 5000 MNIST-5k digits")."""
    for name, size in sizes.items():
        check_int(name, size, 1)
    total = sum(sizes.values())
    if total > n_available:
        names = " + ".join(sizes)
        values = " + ".join(str(size) for size in sizes.values())
        equals = "" if len(sizes) == 1 else f" = {total}"
        raise ParameterError(
            f"{names} must be at most {n_available} ({pool}), got "
            f"{values}{equals}.")


def check_at_least(name, value, minimum):
    """``value`` must be a finite number >= ``minimum``."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < minimum):
        raise ParameterError(
            f"{name} must be a finite number >= {minimum}, got {value!r}."
        )


def check_choice(name, value, choices):
    """``value`` must be one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ParameterError(
            f"{name} must be one of {allowed}, got {value!r}.")


def check_in_open_interval(name, value, low, high):
    """``value`` must be a finite number in ``(low, high)``."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not low < value < high):
        raise ParameterError(
            f"{name} must be a number in ({low}, {high}), got {value!r}."
        )


def check_momentum(name, value):
    """``value`` must be a number in ``[0, 1)``: the weight of the past in a
    momentum or a moving average (1 would never look at a new sample)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0 <= value < 1):
        raise ParameterError(
            f"{name} must be a number in [0, 1), got {value!r}.")


def check_batch_size(name, value, n_samples, samples):
    """``value`` must be 'full' or an integer in ``[1, n_samples]``;
    ``samples`` says what is counted ("training samples of the
    hyper-cleaning problem"), for the message."""
    if isinstance(value, str) and value == "full":
        return
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or not 1 <= value <= n_samples):
        raise ParameterError(
            f"{name} must be 'full' or an integer in [1, {n_samples}] (the "
            f"{n_samples} {samples}), got {value!r}."
        )
