"""The bundled UCI 8x8 digits: checksum, size, fixed split, scaling."""

import hashlib
import importlib.resources

import jax
import numpy as np
import pytest

from darnax.datasets import Digits
from darnax.datasets.classification import digits as digits_module


def test_bundled_file_and_checksum():
    raw = importlib.resources.files("darnax.datasets").joinpath("data/digits.csv.gz").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == digits_module.DIGITS_SHA256
    images, labels = digits_module.load_digits_csv()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 16
    assert np.array_equal(np.bincount(labels), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    assert images[0].tolist()[:2] == [[0, 0, 5, 13, 9, 1, 0, 0], [0, 0, 13, 15, 10, 15, 5, 0]]  # the first "0"


def test_split_and_shapes():
    ds = Digits(batch_size=32, x_transform="identity", label_mode="pm1")
    ds.build(jax.random.key(0))
    spec = ds.spec()
    assert (spec["num_train"], spec["num_test"], spec["x_shape"], spec["num_classes"]) == (1497, 300, (64,), 10)
    images, labels = digits_module.load_digits_csv()
    x_test, y_test = ds.arrays("test")
    np.testing.assert_array_equal(np.asarray(x_test), images[::6].reshape(300, 64) / np.float32(16))
    np.testing.assert_array_equal(np.argmax(np.asarray(y_test), axis=1), labels[::6])
    assert float(np.asarray(ds.arrays("train")[0]).max()) == 1.0
    assert sum(x.shape[0] for x, _ in ds.iter_test()) == 300
    assert len(ds) == 1497 // 32


def test_projection_and_sign():
    ds = Digits(batch_size=16, linear_projection=32)
    ds.build(jax.random.key(1))
    x, _ = next(iter(ds))
    assert x.shape == (16, 32) and set(np.unique(np.asarray(x))) <= {-1.0, 1.0}


def test_tampered_bundle_is_refused(monkeypatch):
    monkeypatch.setattr(digits_module, "DIGITS_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match=r"digits\.csv\.gz: SHA-256 09f66e6d.*, expected 0{64}; reinstall darnax"):
        Digits().build(jax.random.key(0))
