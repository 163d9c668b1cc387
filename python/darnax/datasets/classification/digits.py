"""`Digits`: the UCI 8x8 handwritten digits (1,797 images, 10 classes), bundled with darnax.

The data are scikit-learn's copy (``sklearn/datasets/data/digits.csv.gz``) of the test part of
"Optical Recognition of Handwritten Digits" (E. Alpaydin, C. Kaynak, 1998; UCI Machine Learning
Repository, CC BY 4.0): 32x32 bitmaps, each 4x4 block counted, so pixels are integers 0..16. The
file ships inside the package (``darnax/datasets/data/digits.csv.gz``, 57 KB, see the README
there) and its SHA-256 is checked at every load, so this dataset works offline and is the
default real task of the examples.

Split (fixed, no randomness): the dataset has no official test set; image ``i`` (file order) is a
test image when ``i % 6 == 0``: 300 test images (25 to 33 per class) and 1,497 training images.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import io

import jax
import numpy as np

from darnax.datasets.classification.base import ClassificationDataset, RawSplits

#: SHA-256 of the bundled ``digits.csv.gz``.
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
NUM_IMAGES = 1797
#: Every ``TEST_EVERY``-th image (``i % TEST_EVERY == 0``) is a test image.
TEST_EVERY = 6


def load_digits_csv() -> tuple[np.ndarray, np.ndarray]:
    """The bundled images ``(1797, 8, 8)`` uint8 (0..16) and labels ``(1797,)`` int64, checked.

    Raises:
        RuntimeError: the bundled file is missing, has another SHA-256, or does not hold
            1,797 rows of 64 integer pixels in 0..16 and a label in 0..9.
    """
    resource = importlib.resources.files("darnax.datasets").joinpath("data/digits.csv.gz")
    try:
        raw = resource.read_bytes()
    except OSError as err:
        raise RuntimeError(f"the bundled digits file {resource} is missing ({err}); reinstall darnax") from err
    digest = hashlib.sha256(raw).hexdigest()
    if digest != DIGITS_SHA256:
        raise RuntimeError(f"{resource}: SHA-256 {digest}, expected {DIGITS_SHA256}; reinstall darnax")
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode("ascii")), delimiter=",", dtype=np.float64)
    if table.shape != (NUM_IMAGES, 65) or not np.array_equal(table, np.round(table)):
        raise RuntimeError(f"{resource}: expected {NUM_IMAGES} rows of 65 integers, got {table.shape}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise RuntimeError(f"{resource}: pixels outside 0..16 or labels outside 0..9")
    return pixels.astype(np.uint8).reshape(NUM_IMAGES, 8, 8), labels.astype(np.int64)


class Digits(ClassificationDataset):
    """UCI 8x8 digits, bundled: 1,497 train and 300 test images, 64 inputs, 10 classes.

    Same constructor, preprocessing and iteration as :class:`Mnist` (see
    :class:`ClassificationDataset`); ``rescale`` divides pixels by 16; ``linear_projection``
    uses ``N(0,1)/sqrt(64)``.

    Example:
        >>> ds = Digits(batch_size=16, label_mode="pm1", x_transform="identity")
        >>> key = ds.build(jax.random.key(0))
        >>> x, y = next(iter(ds))
        >>> x.shape, y.shape, x.dtype, len(ds)
        ((16, 64), (16, 10), dtype('float32'), 93)
    """

    name = "digits"
    num_classes = 10
    image_shape = (8, 8)
    pixel_max = 16.0

    def _load(self, key: jax.Array) -> RawSplits:
        """The fixed split of the bundled file (``key`` is unused)."""
        del key
        images, labels = load_digits_csv()
        test = np.arange(NUM_IMAGES) % TEST_EVERY == 0
        return images[~test], labels[~test], images[test], labels[test]
