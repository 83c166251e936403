"""Parameters tuned by the protocol of docs/tuning.md, read back from the
tuned run configs.

A tunable parameter (a step size, or one of the solver's ``tuning_space``:
a number of inner steps, of Neumann terms...) set to ``'tuned'``
(``SOBA[step_size_inner=tuned]``) takes the value that ``scripts/tune.py``
chose for this solver curve on this dataset: the run config in
``configs/tuned/`` whose dataset is the run's dataset, parameter for
parameter, holds one entry per tuned curve, and the entry of the curve
whose other parameters are the solver's gives the value. One run config
can then run every solver at its tuned parameters on several datasets (the
quickstart), and the tuned configs stay the one place where tuned values
are written.
"""
import functools
from pathlib import Path

import yaml
from benchopt.utils.parametrized_name_mixin import (_extract_options,
                                                   _get_used_parameters)

from benchmark_utils.validation import ParameterError

#: Where ``scripts/tune.py`` writes the tuned run configs.
TUNED_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "tuned"
#: The value of a tunable parameter that asks for its tuned value.
TUNED = "tuned"
#: A solver parameter is a step size when its name starts with this.
STEP_SIZE_PREFIX = "step_size_"


def parse_selection(selection):
    """``'name[a=1,b=x]'`` as ``(name, {'a': 1, 'b': 'x'})``."""
    name, args, kwargs = _extract_options(selection)
    if args:
        raise ValueError(f"{selection!r} must name every parameter")
    return name, kwargs


def same_value(a, b):
    """Parameter values as benchopt reads them from a selection string or a
    class default: 10 and 10.0 are the same step."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


@functools.lru_cache(maxsize=None)
def tuned_config(dataset_name, directory):
    """``(path, solver entries)`` of the tuned config of the dataset named
    ``dataset_name`` (as benchopt names an instance, every parameter
    given); None when no config there tunes it."""
    name, params = parse_selection(dataset_name)
    for path in sorted(Path(directory).glob("*.yml")):
        config = yaml.safe_load(path.read_text())
        for entry in config.get("dataset", []):
            entry_name, entry_params = parse_selection(entry)
            if entry_name == name and entry_params.keys() == params.keys() \
                    and all(same_value(entry_params[key], params[key])
                            for key in params):
                return path, tuple(config.get("solver", []))
    return None


def tunable_parameters(solver_class, params):
    """The names of the parameters of a curve of ``solver_class`` that the
    protocol tunes: its step sizes and its ``tuning_space``."""
    return [name for name in params if name.startswith(STEP_SIZE_PREFIX)
            or name in getattr(solver_class, "tuning_space", {})]


def tuned_value(solver, name, dataset_name, directory=None):
    """The tuned value of the parameter ``name`` of ``solver`` (a benchopt
    solver instance) on the dataset named ``dataset_name``: a number, or
    the parameter's default spelling ('auto') when the default won.

    The entry used is the one of the solver's class whose parameters other
    than the tunable ones (:func:`tunable_parameters`), class defaults
    filled in, are the solver's: parameters tuned for AmIGO-CG are not
    AmIGO-GD's, nor LancBiO's at its default subspace schedule those of
    another schedule. A parameter that the entry leaves out (a step the
    curve never reads) keeps its class default. ``directory``:
    :data:`TUNED_CONFIGS` by default.
    """
    directory = Path(TUNED_CONFIGS if directory is None else directory)
    cls = type(solver)
    tunable = set(tunable_parameters(cls, solver._parameters))
    own = {key: value for key, value in solver._parameters.items()
           if key not in tunable}
    label = (f"{cls.name}[" + ",".join(f"{key}={value}" for key, value
                                       in own.items()) + "]")
    dataset = "NAME" if dataset_name is None else parse_selection(
        dataset_name)[0]
    advice = (f"give {name} a value, or tune it: python scripts/tune.py "
              f"--config CONFIG --dataset {dataset} --solver {cls.name} "
              "(docs/tuning.md).")
    if dataset_name is None:
        raise ParameterError(
            f"{name}='{TUNED}' reads the tuned configs of the run's dataset, "
            "which only a benchopt run has; " + advice)
    found = tuned_config(dataset_name, directory)
    if found is None:
        raise ParameterError(
            f"{name}='{TUNED}': no run config in {directory} is tuned for "
            f"the dataset {dataset_name}; " + advice)
    path, entries = found
    for entry in entries:
        entry_name, selection = parse_selection(entry)
        if entry_name != cls.name:
            continue
        for params in _get_used_parameters(cls, selection):
            if all(same_value(params[key], value)
                   for key, value in own.items()):
                return params[name]
    raise ParameterError(f"{name}='{TUNED}': {path} has no entry for "
                         f"{label} on {dataset_name}; " + advice)
