"""`IdxDataset`: a classification dataset stored as the four standard gzip'ed IDX files.

``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
``t10k-labels-idx1-ubyte.gz``: found (or, when allowed, downloaded) by
:func:`darnax.datasets.locate.locate`, read by the strict :func:`darnax.datasets.idx.read_idx`
once, then from its checked, memory-mapped copy in the decoded cache
(:mod:`darnax.datasets.decoded`; off with ``DARNAX_NO_CACHE=1``).
"""

from __future__ import annotations

import os
from typing import ClassVar

import jax
import numpy as np

from darnax.datasets.classification.base import ClassificationDataset, RawSplits
from darnax.datasets.decoded import read_idx_cached
from darnax.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, IdxFormatError
from darnax.datasets.locate import DatasetSource, RemoteFile, locate
from darnax.utils.cache import cache_folder

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


def idx_source(
    name: str, md5: dict[str, tuple[str, str | None]], mirrors: tuple[str, ...], licence: str = ""
) -> DatasetSource:
    """The :class:`DatasetSource` of an IDX dataset.

    Args:
        name: folder name.
        md5: for each of the four files, ``(MD5 of the .gz as published, MD5 of its decompressed
            content or None to skip that check)``.
        mirrors: base URLs, tried in order.
        licence: a short licence note.
    """
    files = tuple(RemoteFile(f, *md5[f]) for f in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS))
    return DatasetSource(name=name, files=files, mirrors=mirrors, licence=licence)


class IdxDataset(ClassificationDataset):
    """Base of :class:`Mnist` and :class:`FashionMnist`: 28x28 ``uint8`` images, 10 classes.

    Subclasses set ``name`` and ``source``. See :class:`ClassificationDataset` for the
    iteration protocol and :mod:`darnax.datasets.locate` for where the files are looked for.
    """

    source: ClassVar[DatasetSource]
    num_classes = 10
    image_shape = (28, 28)
    pixel_max = 255.0

    def __init__(
        self,
        batch_size: int = 64,
        linear_projection: int | None = None,
        num_images_per_class: int | None = None,
        label_mode: str = "c-rescale",
        x_transform: str = "sign",
        validation_fraction: float = 0.0,
        flatten: bool = True,
        shuffle: bool = True,
        rescale: bool = True,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        download: bool | None = None,
        drop_last: bool = True,
    ) -> None:
        """Configure the dataset; the files are read by :meth:`build`.

        Args:
            data_dir: a folder searched first (``<data_dir>/<name>/``, then ``<data_dir>/``).
            download: allow downloading missing files (``None``: only if ``DARNAX_ALLOW_DOWNLOAD=1``).

        The other arguments are those of :class:`ClassificationDataset`.
        """
        super().__init__(
            batch_size,
            linear_projection,
            num_images_per_class,
            label_mode,
            x_transform,
            validation_fraction,
            flatten,
            shuffle,
            rescale,
            drop_last=drop_last,
        )
        self.data_dir = data_dir
        self.download = download

    def _load(self, key: jax.Array) -> RawSplits:
        """Read the four files (``key`` is unused: the data are fixed)."""
        del key
        folder = locate(self.source, self.data_dir, download=self.download)
        content_md5 = {f.name: f.content_md5 for f in self.source.files}
        cache = cache_folder("decoded")
        out: list[np.ndarray] = []
        for images_name, labels_name in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
            images_path, labels_path = folder / images_name, folder / labels_name
            images = read_idx_cached(
                images_path, cache, expected_magic=IMAGES_MAGIC, expected_md5=content_md5[images_name]
            )
            labels = read_idx_cached(
                labels_path, cache, expected_magic=LABELS_MAGIC, expected_md5=content_md5[labels_name]
            )
            if images.shape[1:] != self.image_shape:
                raise IdxFormatError(f"{images_path}: images of shape {images.shape[1:]}, expected {self.image_shape}")
            if labels.shape[0] != images.shape[0]:
                raise IdxFormatError(
                    f"{labels_path}: {labels.shape[0]} labels for the {images.shape[0]} images of {images_name}"
                )
            if labels.size and int(labels.max()) >= self.num_classes:
                raise IdxFormatError(f"{labels_path}: label {int(labels.max())} outside [0, {self.num_classes})")
            out += [images, labels]
        return out[0], out[1], out[2], out[3]
