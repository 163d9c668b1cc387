"""`Mnist`: LeCun, Cortes & Burges' handwritten digits, 60,000 train + 10,000 test, 28x28, 10 classes."""

from __future__ import annotations

from darnax.datasets.classification.idx_dataset import (
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    IdxDataset,
    idx_source,
)


class Mnist(IdxDataset):
    """MNIST with the preprocessing and iteration of :class:`ClassificationDataset`.

    Files are looked for in ``data_dir``, ``$DARNAX_DATA_DIR``, ``~/.cache/darnax/mnist`` and
    ``/usr/share/datasets/mnist`` (see :mod:`darnax.datasets.locate`); downloaded, MD5-checked,
    only with ``download=True`` or ``DARNAX_ALLOW_DOWNLOAD=1``. Licence: CC BY-SA 3.0.

    Example:
        >>> ds = Mnist(batch_size=16, label_mode="pm1", x_transform="identity")  # doctest: +SKIP
        >>> key = ds.build(jax.random.key(0))                                    # doctest: +SKIP
        >>> for x, y in ds:                     # (16, 784) float32, (16, 10) float32
        ...     key = trainer.train_step(x, y, key)                              # doctest: +SKIP
        >>> accs = [trainer.eval_step(x, y, key)[1]["accuracy"] for x, y in ds.iter_test()]  # doctest: +SKIP
    """

    name = "mnist"
    source = idx_source(
        "mnist",
        {
            # (MD5 of the published .gz, MD5 of the decompressed IDX file)
            TRAIN_IMAGES: ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
            TRAIN_LABELS: ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
            TEST_IMAGES: ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
            TEST_LABELS: ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        licence="CC BY-SA 3.0 (Yann LeCun, Corinna Cortes, Christopher J. C. Burges)",
    )
