"""`Prototypes` draws the data of the simple training tutorial (seed 06) exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darnax.datasets import Prototypes
from darnax.datasets.classification.prototypes import prototype_data


def tutorial_prototype_data(key, num_prototypes=10, dim_prototypes=100, num_data=1000, p_noise=0.3):
    """The tutorial's ``PrototypeData.__init__`` (its generator code, unchanged), as a function,
    run as the tutorial runs: 32-bit mode, standard dtype promotion."""
    with jax.enable_x64(False), jax.numpy_dtype_promotion("standard"):
        return jax.jit(_tutorial, static_argnums=(1, 2, 3, 4))(key, num_prototypes, dim_prototypes, num_data, p_noise)


def _tutorial(key, num_prototypes, dim_prototypes, num_data, p_noise):
    key_prototypes, key_data = jax.random.split(key)
    prototypes = jax.random.rademacher(key_prototypes, shape=(num_prototypes, dim_prototypes), dtype=jnp.float32)
    y = jnp.full(shape=(num_prototypes, num_prototypes), fill_value=-1.0, dtype=jnp.float32)
    y = y.at[jnp.diag_indices_from(y)].set(1.0)
    y = jnp.repeat(y, num_data // num_prototypes + 1, axis=0, total_repeat_length=num_data)
    key, carry = jax.random.split(key_data)
    x = jnp.repeat(prototypes, num_data // num_prototypes + 1, axis=0, total_repeat_length=num_data)
    flip_mask = jax.random.bernoulli(carry, p=1 - p_noise, shape=x.shape) * 2.0 - 1.0
    x = x * flip_mask
    shuffle = jax.random.permutation(key, num_data)
    return prototypes, x[shuffle].astype(jnp.float32), y[shuffle].astype(jnp.float32)


@pytest.mark.parametrize(("k", "d", "n", "p"), [(10, 100, 1000, 0.3), (4, 8, 4, 0.0)])
def test_matches_the_tutorial(k, d, n, p):
    key = jax.random.key(59)
    with jax.enable_x64(False):  # the tutorial runs in default (32-bit) mode
        protos_ref, x_ref, y_ref = tutorial_prototype_data(key, k, d, n, p)
        protos32, x32, labels32 = prototype_data(key, num_prototypes=k, dim_prototypes=d, num_data=n, p_noise=p)
    protos, x, labels = prototype_data(key, num_prototypes=k, dim_prototypes=d, num_data=n, p_noise=p)  # x64 on
    for got in ((protos, x, labels), (protos32, x32, labels32)):
        np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(protos_ref))
        np.testing.assert_array_equal(np.asarray(got[1]), np.asarray(x_ref))
        np.testing.assert_array_equal(np.where(np.eye(k, dtype=bool)[np.asarray(got[2])], 1.0, -1.0), np.asarray(y_ref))


def test_dataset_holds_the_tutorial_data():
    key = jax.random.key(7)
    ds = Prototypes(batch_size=16, shuffle=False)
    ds.build(key)
    data_key = jax.random.split(key, 5)[3]  # build's loader key
    _, x_ref, y_ref = tutorial_prototype_data(data_key)
    x, y = ds.arrays("train")
    np.testing.assert_array_equal(np.asarray(x), np.asarray(x_ref))
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref))
    flips = np.mean(np.asarray(x) != np.asarray(ds.prototypes)[np.argmax(np.asarray(y), axis=1)])
    assert 0.27 < flips < 0.33
    x_test, _ = ds.arrays("test")
    assert x_test.shape == (200, 100) and not np.array_equal(np.asarray(x_test[:10]), np.asarray(x[:10]))
    assert sum(b.shape[0] for b, _ in ds.iter_test()) == 200 and len(ds) == 62


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p_noise": 0.5}, r"p_noise: expected a value in \[0, 0.5\)"),
        ({"p_noise": -0.1}, r"p_noise: expected a value in \[0, 0.5\)"),
        ({"num_data": 5}, "num_data=5 must be at least num_prototypes=10"),
        ({"batch_size": 1}, "batch_size: expected an int > 1"),
        ({"num_prototypes": 1}, "num_prototypes: expected an int >= 2"),
        ({"num_test_data": 0}, "num_test_data: expected an int >= 1"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Prototypes(**kwargs)
