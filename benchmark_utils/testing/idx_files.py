"""Writing image sets in the IDX layout that torchvision reads.

Used to exercise the real loading code offline (tests, ``benchopt test``):
tiny random sets stand in for MNIST, Fashion-MNIST and Kuzushiji-MNIST,
whose real files cannot be downloaded everywhere.
"""
import struct
from pathlib import Path

import torch

#: File names (uncompressed) of the four torchvision files of a set.
FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_idx(path, array):
    """One uint8 array as an IDX file: magic 0x08 (ubyte) and its rank, then
    each dimension as a big-endian int32, then the bytes."""
    array = torch.as_tensor(array, dtype=torch.uint8).contiguous()
    header = struct.pack(">BBBB", 0, 0, 0x08, array.dim()) + struct.pack(
        f">{array.dim()}i", *array.shape)
    Path(path).write_bytes(header + array.numpy().tobytes())


def write_split(raw_folder, train, images, labels):
    raw_folder = Path(raw_folder)
    raw_folder.mkdir(parents=True, exist_ok=True)
    images_file, labels_file = FILES[train]
    write_idx(raw_folder / images_file, images)
    write_idx(raw_folder / labels_file, labels)


def write_random_set(root, name, n_train, n_test, seed=0):
    """A random 28 x 28 image set with labels 0-9 in ``root/name/raw``, in
    both splits; returns {train: (images, labels)}."""
    generator = torch.Generator().manual_seed(seed)
    written = {}
    for train, n in ((True, n_train), (False, n_test)):
        images = torch.randint(0, 256, (n, 28, 28), generator=generator,
                               dtype=torch.uint8)
        labels = torch.randint(0, 10, (n,), generator=generator,
                               dtype=torch.uint8)
        write_split(Path(root) / name / "raw", train, images, labels)
        written[train] = (images, labels)
    return written
