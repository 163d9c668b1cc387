"""SequentialState and LayerMap: structure, functional updates, pytree behaviour, clear errors."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darnax.layer_maps.sparse import LayerMap
from darnax.modules.fully_connected import FullyConnected
from darnax.modules.input_output import OutputLayer
from darnax.modules.recurrent import RecurrentDiscrete
from darnax.states.sequential import SequentialState
from darnax.utils.perceptron_rule import perceptron_rule_backward

F32 = jnp.float32
KEYS = jax.random.split(jax.random.key(0), 4)


def _lm(hidden=8, out=3, data=5):
    return {
        1: {
            1: RecurrentDiscrete(hidden, 0.5, 0.0, KEYS[0]),
            0: FullyConnected(data, hidden, 1.0, 0.0, KEYS[1]),
            2: FullyConnected(out, hidden, 1.0, 0.0, KEYS[2]),
        },
        2: {2: OutputLayer(), 1: FullyConnected(hidden, out, 1.0, 0.0, KEYS[3])},
    }


def test_state_init_and_functional_updates():
    s = SequentialState((5, 8, 3))
    assert [a.shape for a in s.states] == [(1, 5), (1, 8), (1, 3)] and len(s) == 3
    x = np.ones((4, 5))  # float64 numpy: cast to the state's dtype
    s2 = s.init(x)
    assert s2[0].dtype == F32 and s2[1].shape == (4, 8) and not np.any(np.asarray(s2[-1]))
    y = -jnp.ones((4, 3), F32)
    s3 = s.init(x, y)
    np.testing.assert_array_equal(s3.readout, y)
    s4 = s3.replace_val(1, jnp.ones((4, 8), F32))
    assert not np.any(np.asarray(s3[1])) and np.all(np.asarray(s4[1]) == 1)
    s5 = s4.replace([a * 2 for a in s4.states])
    np.testing.assert_array_equal(s5[0], 2 * np.ones((4, 5)))


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.ones(5), None, "batch axis"),
        (np.ones((4, 6)), None, r"expected shape \(B, 5\)"),
        (np.ones((4, 5)), np.ones((4, 4)), r"y: expected shape \(B, 3\)"),
        (np.ones((4, 5)), np.ones((3, 3)), "batch size"),
        (np.ones((0, 5)), None, "empty"),
    ],
)
def test_state_init_errors(x, y, match):
    with pytest.raises(ValueError, match=match):
        SequentialState((5, 8, 3)).init(x, y)


def test_layer_map_structure_and_subsets():
    lm = LayerMap.from_dict(_lm())
    assert lm.rows() == (1, 2) and lm.cols_of(1) == (0, 1, 2) and lm.cols_of(2) == (1, 2)
    assert (1, 0) in lm and (0, 1) not in lm and isinstance(lm[1, 1], RecurrentDiscrete)
    with pytest.raises(TypeError):
        lm[1][3] = OutputLayer()  # read-only row view
    subsets = {
        s: [(i, tuple(r)) for i, r in lm.row_items(subset=s)] for s in ("all", "forward", "backward", "inference")
    }
    assert subsets["all"] == [(1, (0, 1, 2)), (2, (1, 2))]
    assert subsets["forward"] == [(1, (0, 1)), (2, (1, 2))]
    assert subsets["backward"] == [(1, (1, 2)), (2, (2,))]
    assert subsets["inference"] == [(1, (0, 1)), (2, (1,))]
    assert [i for i, _ in lm.row_items(skip_last=True)] == [1]
    assert [e for e, _ in lm.edge_items()] == [(1, 0), (1, 1), (1, 2), (2, 1), (2, 2)]
    assert lm.to_dict()[2][2] is lm[2, 2] and lm.layer_widths() == {0: 5, 1: 8, 2: 3}
    with pytest.raises(ValueError, match="subset"):
        list(lm.row_items(subset="left"))


def test_layer_map_errors():
    bad = _lm()
    del bad[1][1]
    with pytest.raises(ValueError, match=r"missing diagonal.*\[1\]"):
        LayerMap.from_dict(bad)
    LayerMap.from_dict(bad, require_diagonal=False)
    wrong = _lm()
    wrong[2][1] = FullyConnected(7, 3, 1.0, 0.0, KEYS[3])  # hidden layer is 8 wide
    with pytest.raises(ValueError, match="inconsistent sizes for layer 1"):
        LayerMap.from_dict(wrong)
    with pytest.raises(ValueError, match="non-negative ints"):
        LayerMap.from_dict({"1": {1: OutputLayer()}})


def test_layer_map_is_a_pytree():
    lm = LayerMap.from_dict(_lm())
    leaves, treedef = jax.tree.flatten(lm)
    again = jax.tree.unflatten(treedef, leaves)
    assert again.rows() == lm.rows() and again[1, 0].W is lm[1, 0].W
    labels = jax.tree.map(lambda _: "default", eqx.filter(lm, eqx.is_inexact_array))
    labels = eqx.tree_at(lambda m: m[1][0], labels, replace=jax.tree.map(lambda _: "w_in", labels[1][0]))
    assert set(jax.tree.leaves(labels[1][0])) == {"w_in"} and set(jax.tree.leaves(labels[2][1])) == {"default"}
    doubled = jax.jit(lambda m: jax.tree.map(lambda a: a * 2, m))(lm)
    np.testing.assert_allclose(doubled[1, 0].W, 2 * np.asarray(lm[1, 0].W))


def test_perceptron_rule_formula():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4)).astype(np.float32)
    y = np.where(rng.random((7, 3)) < 0.5, 1.0, -1.0).astype(np.float32)
    y_hat = rng.standard_normal((7, 3)).astype(np.float32)
    margin = np.array([0.0, 0.5, -0.5], np.float32)
    want = -(x.T @ ((y * y_hat <= margin) * y)) / (np.sqrt(7) * np.sqrt(4))
    got = perceptron_rule_backward(jnp.asarray(x), jnp.asarray(y), jnp.asarray(y_hat), jnp.asarray(margin))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        perceptron_rule_backward(jnp.asarray(x), jnp.asarray(y[:3]), jnp.asarray(y_hat[:3]), 0.0)
