"""The real Fashion-MNIST (and MNIST test) files of the shared data folder, read by darnax."""

import pathlib

import jax
import numpy as np
import pytest

from darnax.datasets import DatasetNotFoundError, FashionMnist, Mnist, read_idx
from darnax.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC
from darnax.datasets.locate import DATA_DIR_ENV, md5sum

SHARED = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
# The MD5s of the shared copies (shared/datasets/README.md). The Fashion-MNIST copies are
# re-compressed: their .gz MD5s differ from the published ones, their content MD5s do not.
SHARED_MD5 = {
    "fashion-mnist/train-images-idx3-ubyte.gz": "cf8536b0aa1a6ac5fa3f23001093305c",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "10bea18fdb374794d4bb42e356e600c9",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "f78720b4224f21cce2f2ccf2d7a94c9a",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "0d30e22e447f3c33dab9ed536400ac01",
    "mnist/t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "mnist/t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "mnist/train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
}

pytestmark = pytest.mark.skipif(
    not (SHARED / "fashion-mnist").is_dir(), reason=f"shared real data folder {SHARED} is absent"
)


def test_files_are_the_expected_ones():
    for name, md5 in SHARED_MD5.items():
        assert md5sum(SHARED / name) == md5, name
    published = {f.name: f.md5 for f in Mnist.source.files}
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        assert md5sum(SHARED / "mnist" / name) == published[name]


def test_fashion_mnist_test_split():
    content = {f.name: f.content_md5 for f in FashionMnist.source.files}
    folder = SHARED / "fashion-mnist"
    images = read_idx(
        folder / "t10k-images-idx3-ubyte.gz",
        expected_magic=IMAGES_MAGIC,
        expected_md5=content["t10k-images-idx3-ubyte.gz"],
    )
    labels = read_idx(
        folder / "t10k-labels-idx1-ubyte.gz",
        expected_magic=LABELS_MAGIC,
        expected_md5=content["t10k-labels-idx1-ubyte.gz"],
    )
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(np.bincount(labels), [1000] * 10)


def test_fashion_mnist_builds_from_the_environment(monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(SHARED))
    ds = FashionMnist(batch_size=500, label_mode="pm1", x_transform="identity")
    ds.build(jax.random.key(0))
    spec = ds.spec()
    assert (spec["num_train"], spec["num_test"], spec["x_shape"]) == (60000, 10000, (784,))
    x, y = ds.arrays("test")
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert sum(b.shape[0] for b, _ in ds.iter_test()) == 10000
    assert np.array_equal(np.bincount(np.argmax(np.asarray(y), axis=1)), [1000] * 10)


def test_mnist_without_training_images_says_what_is_missing():
    with pytest.raises(DatasetNotFoundError, match=r"mnist \(has 3 of 4; missing train-images-idx3-ubyte\.gz\)"):
        Mnist(data_dir=SHARED).build(jax.random.key(0))
