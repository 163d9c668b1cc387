"""`FashionMnist`: Zalando's clothing images, 60,000 train + 10,000 test, 28x28, 10 classes."""

from __future__ import annotations

from darnax.datasets.classification.idx_dataset import (
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    IdxDataset,
    idx_source,
)


class FashionMnist(IdxDataset):
    """Fashion-MNIST (a drop-in, harder replacement for MNIST: same shapes and format).

    Files are looked for in ``data_dir``, ``$DARNAX_DATA_DIR``, ``~/.cache/darnax/fashion-mnist``
    and ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package); see
    :mod:`darnax.datasets.locate`. Downloaded, MD5-checked, only with ``download=True`` or
    ``DARNAX_ALLOW_DOWNLOAD=1``. Labels: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat,
    5 sandal, 6 shirt, 7 sneaker, 8 bag, 9 ankle boot. Licence: MIT (Zalando Research).
    """

    name = "fashion-mnist"
    source = idx_source(
        "fashion-mnist",
        {
            # (MD5 of the published .gz, MD5 of the decompressed IDX file). Re-compressed copies
            # (some redistributions re-gzip them) have other .gz MD5s but the same content MD5s.
            TRAIN_IMAGES: ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
            TRAIN_LABELS: ("25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
            TEST_IMAGES: ("bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
            TEST_LABELS: ("bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        licence="MIT (Zalando Research)",
    )
