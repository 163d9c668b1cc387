"""IDX datasets end to end on tiny generated files: transforms, splits, batching, shuffling, errors."""

import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darnax.datasets import FashionMnist, IdxFormatError, Mnist
from darnax.datasets.classification.idx_dataset import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from darnax.datasets.classification.transforms import projection_matrix, transform_inputs

from ._idx_files import TinyMnist, idx_bytes, tiny_arrays, write_gz, write_tiny

KEY = jax.random.key(3)


@pytest.fixture
def tiny(tmp_path):
    """A data folder holding ``mnist/`` with 120 training and 53 test images."""
    return tmp_path, write_tiny(tmp_path / "mnist")


def built(folder, **kwargs):
    ds = TinyMnist(data_dir=folder, **{"batch_size": 16, **kwargs})
    ds.build(KEY)
    return ds


def concat(batches):
    xs, ys = zip(*batches)
    return np.concatenate(xs), np.concatenate(ys)


def test_shapes_dtypes_and_spec(tiny):
    folder, _raw = tiny
    ds = built(folder)
    assert len(ds) == 120 // 16
    x, y = next(iter(ds))
    assert isinstance(x, jax.Array) and x.shape == (16, 784) and y.shape == (16, 10)
    assert x.dtype == jnp.float32 and y.dtype == jnp.float32
    spec = ds.spec()
    assert spec["x_shape"] == (784,) and spec["y_shape"] == (10,) and spec["num_classes"] == 10
    assert (spec["num_train"], spec["num_valid"], spec["num_test"], spec["train_batches"]) == (120, 0, 53, 7)
    assert spec["label_encoding"] == "c-rescale" and spec["x_transform"] == "sign"


@pytest.mark.parametrize("mode", ["pm1", "ooe", "c-rescale"])
def test_label_modes(tiny, mode):
    folder, raw = tiny
    _, y = built(folder, label_mode=mode).arrays("test")
    labels = raw[TEST_LABELS]
    on = {"pm1": 1.0, "ooe": 1.0, "c-rescale": np.sqrt(10) / 2 - 0.5}[mode]
    off = {"pm1": -1.0, "ooe": 0.0, "c-rescale": -0.5}[mode]
    expected = np.where(np.eye(10, dtype=bool)[labels], on, off).astype(np.float32)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-6)
    assert np.array_equal(np.argmax(np.asarray(y), axis=1), labels)


def test_input_transforms(tiny):
    folder, raw = tiny
    pixels = raw[TEST_IMAGES].reshape(53, 784).astype(np.float32)
    x_sign = np.asarray(built(folder, x_transform="sign").arrays("test")[0])
    np.testing.assert_array_equal(x_sign, np.where(pixels > 0, 1.0, -1.0))  # zeros map to -1
    x_id = np.asarray(built(folder, x_transform="identity").arrays("test")[0])
    np.testing.assert_array_equal(x_id, pixels / np.float32(255))
    x_raw = np.asarray(built(folder, x_transform="identity", rescale=False).arrays("test")[0])
    np.testing.assert_array_equal(x_raw, pixels)
    x_tanh = np.asarray(built(folder, x_transform="tanh").arrays("test")[0])
    np.testing.assert_allclose(x_tanh, np.tanh(pixels / 255), rtol=1e-6)
    x_img = built(folder, x_transform="identity", flatten=False).arrays("test")[0]
    assert x_img.shape == (53, 28, 28)
    np.testing.assert_array_equal(np.asarray(x_img), raw[TEST_IMAGES] / np.float32(255))


@pytest.mark.parametrize("mode", ["sign", "tanh", "identity"])
def test_raw_pixels_stored_as_uint8_decode_to_the_whole_split_conversion(tiny, mode):
    folder, raw = tiny
    ds = built(folder, x_transform=mode, validation_fraction=0.25)
    assert ds._split("train")[0].dtype == jnp.uint8  # a quarter of float32's memory
    pixels = raw[TEST_IMAGES].reshape(53, 784).astype(np.float32) / np.float32(255)
    x, y = ds.arrays("test")
    assert x.dtype == jnp.float32 and ds.spec()["x_dtype"] == jnp.float32
    np.testing.assert_array_equal(np.asarray(x).view(np.uint32), transform_inputs(pixels, mode).view(np.uint32))
    for split in ("train", "valid", "test"):
        x, y = ds.arrays(split)
        index = jnp.asarray([3, 0, 7, 3])
        for rows, expected in ((index, (x[index], y[index])), (slice(2, 9), (x[2:9], y[2:9]))):
            got = ds.rows(split, rows)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
    projected = built(folder, linear_projection=30)
    assert projected._split("train")[0].dtype == jnp.float32  # a projection mixes pixels: no table


def test_linear_projection(tiny):
    folder, raw = tiny
    ds = built(folder, linear_projection=30, x_transform="identity")
    x, _ = ds.arrays("test")
    assert x.shape == (53, 30) and ds.spec()["projected_dim"] == 30
    w = projection_matrix(jax.random.split(KEY, 5)[0], 30, 784)
    assert 0.8 / 28 < w.std() < 1.2 / 28  # N(0, 1) / sqrt(784)
    np.testing.assert_allclose(np.asarray(x), (raw[TEST_IMAGES].reshape(53, 784) / 255) @ w.T, rtol=1e-4, atol=1e-5)
    x_sign, _ = built(folder, linear_projection=30).arrays("test")
    np.testing.assert_array_equal(np.asarray(x_sign), np.where(np.asarray(x) > 0, 1.0, -1.0))
    # same key, same projection; another key, another one
    again = built(folder, linear_projection=30, x_transform="identity").arrays("test")[0]
    np.testing.assert_array_equal(np.asarray(again), np.asarray(x))
    other = TinyMnist(data_dir=folder, linear_projection=30, x_transform="identity")
    other.build(jax.random.key(4))
    assert not np.allclose(np.asarray(other.arrays("test")[0]), np.asarray(x))


def test_num_images_per_class_takes_the_first_of_each_class(tiny):
    folder, raw = tiny
    ds = built(folder, num_images_per_class=3, shuffle=False, drop_last=False, x_transform="identity", rescale=False)
    labels = raw[TRAIN_LABELS]
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:3] for c in range(10)]))
    x, y = ds.arrays("train")
    np.testing.assert_array_equal(np.asarray(x), raw[TRAIN_IMAGES][keep].reshape(30, 784))
    np.testing.assert_array_equal(np.argmax(np.asarray(y), axis=1), labels[keep])
    with pytest.raises(ValueError, match="num_images_per_class=13: class 0 of the mnist training set has only 12"):
        built(folder, num_images_per_class=13)


def test_validation_split(tiny):
    folder, raw = tiny
    ds = built(folder, validation_fraction=0.25, x_transform="identity", rescale=False, shuffle=False)
    (xt, _), (xv, _) = ds.arrays("train"), ds.arrays("valid")
    assert (xt.shape[0], xv.shape[0]) == (90, 30) and ds.spec()["num_valid"] == 30
    rows = {r.tobytes() for r in np.asarray(xt)} | {r.tobytes() for r in np.asarray(xv)}
    assert rows == {r.tobytes() for r in raw[TRAIN_IMAGES].reshape(120, 784).astype(np.float32)}
    assert concat(ds.iter_valid())[0].shape == (30, 784)
    assert [b[0].shape[0] for b in ds.iter_valid()] == [16, 14]
    with pytest.raises(RuntimeError, match="no validation split: pass validation_fraction > 0"):
        next(built(folder).iter_valid())
    with pytest.raises(ValueError, match="leaves 0 for validation"):
        built(folder, validation_fraction=0.001)


def test_iter_test_covers_every_image_once(tiny):
    folder, raw = tiny
    ds = built(folder, x_transform="identity", rescale=False)
    sizes = [x.shape[0] for x, _ in ds.iter_test()]
    assert sizes == [16, 16, 16, 5]  # the remainder comes as a smaller last batch
    x, y = concat(ds.iter_test())
    np.testing.assert_array_equal(x, raw[TEST_IMAGES].reshape(53, 784))
    np.testing.assert_array_equal(np.argmax(y, axis=1), raw[TEST_LABELS])


def test_epochs_reshuffle_deterministically(tiny):
    folder, _ = tiny
    a, b = built(folder), built(folder)
    (first_a, ya), (second_a, _) = concat(a), concat(a)
    (first_b, yb), (second_b, _) = concat(b), concat(b)
    np.testing.assert_array_equal(first_a, first_b)  # same key, same epochs
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(second_a, second_b)
    assert not np.array_equal(first_a, second_a)  # a new order every pass
    assert [x.shape[0] for x, _ in a] == [16] * 7  # fixed batch size, partial batch dropped
    c = TinyMnist(data_dir=folder, batch_size=16)
    c.build(jax.random.key(99))
    assert not np.array_equal(concat(c)[0], first_a)
    a.build(KEY)  # rebuilding restarts the epoch sequence
    np.testing.assert_array_equal(concat(a)[0], first_a)


def test_every_training_image_once_per_epoch_without_drop(tiny):
    folder, raw = tiny
    ds = built(folder, drop_last=False, x_transform="identity", rescale=False)
    assert len(ds) == 8 and [x.shape[0] for x, _ in ds][-1] == 120 - 7 * 16
    x, _ = concat(ds)
    expected = raw[TRAIN_IMAGES].reshape(120, 784).astype(np.float32)
    assert sorted(r.tobytes() for r in x) == sorted(r.tobytes() for r in expected)


def test_shuffle_false_keeps_file_order(tiny):
    folder, raw = tiny
    ds = built(folder, shuffle=False, x_transform="identity", rescale=False)
    for _ in range(2):
        x, _ = concat(ds)
        np.testing.assert_array_equal(x, raw[TRAIN_IMAGES][:112].reshape(112, 784))


def test_epoch_arrays_match_iteration(tiny):
    folder, _ = tiny
    a, b = built(folder), built(folder)
    x, y = b.epoch_arrays()
    xa, ya = concat(a)
    np.testing.assert_array_equal(np.asarray(x), xa)
    np.testing.assert_array_equal(np.asarray(y), ya)
    assert x.shape == (112, 784)


def test_dataset_independent_of_x64(tiny):
    folder, _ = tiny
    with jax.enable_x64(False):
        ds32 = built(folder, validation_fraction=0.2, linear_projection=20)
        e32 = concat(ds32)
    ds64 = built(folder, validation_fraction=0.2, linear_projection=20)
    np.testing.assert_array_equal(concat(ds64)[0], e32[0])
    np.testing.assert_array_equal(np.asarray(ds64.arrays("valid")[0]), np.asarray(ds32.arrays("valid")[0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 1}, "batch_size: expected an int > 1, got 1"),
        ({"batch_size": 0}, "batch_size: expected an int > 1"),
        ({"batch_size": 2.5}, "batch_size: expected an int > 1"),
        ({"validation_fraction": 1.0}, r"validation_fraction: expected a value in \[0, 1\)"),
        ({"validation_fraction": -0.1}, r"validation_fraction: expected a value in \[0, 1\)"),
        ({"linear_projection": 10, "flatten": False}, "linear_projection requires flatten=True"),
        ({"linear_projection": 0}, "linear_projection: expected None or an int >= 1"),
        ({"num_images_per_class": 0}, "num_images_per_class: expected None or an int >= 1"),
        ({"label_mode": "onehot"}, "label_mode: expected one of"),
        ({"x_transform": "relu"}, "x_transform: expected one of"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Mnist(**kwargs)


def test_use_before_build():
    ds = Mnist()
    for call in (lambda: next(iter(ds)), lambda: next(ds.iter_test()), lambda: len(ds), ds.spec, ds.arrays):
        with pytest.raises(RuntimeError, match="Mnist is not built: call build"):
            call()


def test_unknown_split(tiny):
    with pytest.raises(ValueError, match=r"split: expected one of \('train', 'valid', 'test'\), got 'dev'"):
        built(tiny[0]).arrays("dev")


def test_batch_larger_than_training_set(tiny):
    folder, _ = tiny
    with pytest.raises(ValueError, match="batch_size=200 exceeds the 120 training images of mnist"):
        built(folder, batch_size=200)


def test_missing_data_is_an_offline_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)fashion-mnist: files .* not found. Looked in:.*download=True"):
        FashionMnist(data_dir=tmp_path).build(KEY)


def test_content_checksums_reject_other_files(tiny):
    folder, _ = tiny
    message = r"mnist/train-images-idx3-ubyte\.gz: decompressed content has MD5 .*, expected 6bbc9ace"
    with pytest.raises(IdxFormatError, match=message):
        Mnist(data_dir=folder).build(KEY)


@pytest.mark.parametrize("damage", ["truncate", "magic", "length", "plain", "shape", "count", "label"])
def test_damaged_files_are_clear_errors(tmp_path, damage):
    raw = tiny_arrays()
    write_tiny(tmp_path / "mnist", raw)
    images = tmp_path / "mnist" / TRAIN_IMAGES
    labels = tmp_path / "mnist" / TRAIN_LABELS
    if damage == "truncate":
        images.write_bytes(images.read_bytes()[:-100])
        target, message = images, "truncated gzip stream|corrupted gzip stream"
    elif damage == "magic":
        write_gz(labels, idx_bytes(raw[TRAIN_LABELS].reshape(12, 10)))
        target, message = labels, "magic number 0x00000802, expected 0x00000801"
    elif damage == "length":
        write_gz(images, idx_bytes(raw[TRAIN_IMAGES])[:-1])
        target, message = images, "truncated payload"
    elif damage == "plain":
        images.write_bytes(gzip.decompress(images.read_bytes()))
        target, message = images, "not a gzip file"
    elif damage == "shape":
        write_gz(images, idx_bytes(raw[TRAIN_IMAGES].reshape(120, 14, 56)))
        target, message = images, r"images of shape \(14, 56\), expected \(28, 28\)"
    elif damage == "count":
        write_gz(labels, idx_bytes(raw[TRAIN_LABELS][:-1]))
        target, message = labels, "119 labels for the 120 images"
    else:
        bad = raw[TRAIN_LABELS].copy()
        bad[5] = 10
        write_gz(labels, idx_bytes(bad))
        target, message = labels, r"label 10 outside \[0, 10\)"
    with pytest.raises(IdxFormatError, match=message) as err:
        TinyMnist(data_dir=tmp_path).build(KEY)
    assert str(err.value).startswith(str(target))


def test_shuffling_keeps_inputs_and_targets_paired(tiny):
    folder, raw = tiny
    ds = built(folder, x_transform="identity", rescale=False, label_mode="ooe")
    images = raw[TRAIN_IMAGES].reshape(120, 784).astype(np.float32)
    label_of = {img.tobytes(): int(label) for img, label in zip(images, raw[TRAIN_LABELS])}
    for _ in range(2):
        x, y = concat(ds)
        assert [label_of[r.tobytes()] for r in x] == list(np.argmax(y, axis=1))


def test_epoch_order_indexes_the_stored_split(tiny):
    folder, _ = tiny
    a, b = built(folder), built(folder)
    x, y = b.arrays("train")
    for _ in range(2):  # each call is the next pass, as epoch_arrays
        order = b.epoch_order()
        xa, ya = a.epoch_arrays()
        np.testing.assert_array_equal(np.asarray(x[order]), np.asarray(xa))
        np.testing.assert_array_equal(np.asarray(y[order]), np.asarray(ya))
    assert a.epoch == b.epoch == 2 and not np.array_equal(order, np.arange(order.shape[0]))
