"""The flat pytrees and the jit over them that the per-batch trainer calls use (``darnax.trainers._flat``)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darnax.trainers._flat import Flat, FlatJit, Structure, split


class Net(eqx.Module):
    w: jax.Array
    b: jax.Array
    scale: float  # a non-array leaf: static for the compiled call
    name: str = eqx.field(static=True, default="net")


def test_split_and_build_round_trip_with_non_array_leaves():
    tree = {"net": Net(jnp.ones((2, 3)), np.zeros(3, np.float32), 0.5), "n": 7, "key": jax.random.key(1)}
    structure, arrays = split(tree)
    assert len(arrays) == 3  # w, b and the key; 0.5 and 7 are static
    rebuilt = structure.build(arrays)
    assert jax.tree_util.tree_structure(rebuilt) == jax.tree_util.tree_structure(tree)
    assert rebuilt["n"] == 7 and rebuilt["net"].scale == 0.5 and rebuilt["net"].b is tree["net"].b
    with pytest.raises(ValueError, match="expected 3 arrays, got 2"):
        structure.build(arrays[:2])


def test_structures_compare_by_treedef_and_static_leaves():
    a, _ = split(Net(jnp.ones(2), jnp.ones(2), 0.5))
    b, _ = split(Net(jnp.zeros(2), jnp.zeros(2), 0.5))  # other values: same structure
    c, _ = split(Net(jnp.ones(2), jnp.ones(2), 0.25))  # another static leaf
    d, _ = split(Net(jnp.ones(2), jnp.ones(2), 0.5, name="other"))  # another static field
    assert a == b and hash(a) == hash(b)
    assert a != c and a != d
    assert len({a: 1, b: 2, c: 3, d: 4}) == 3
    assert isinstance(a, Structure) and (a == "net") is False


def test_flat_keeps_the_tree_it_was_made_of_and_rebuilds_lazily():
    net = Net(jnp.ones(2), jnp.ones(2), 0.5)
    assert Flat.of(net).tree() is net
    structure, arrays = split(net)
    flat = Flat(structure, arrays)
    assert flat.tree() is flat.tree()  # rebuilt once
    assert np.array_equal(flat.tree().w, net.w)


def step(x, net, n):
    """A model update that keeps the structure, plus a plain result."""
    new = eqx.tree_at(lambda m: m.w, net, net.w * net.scale + x)
    return new, {"total": jnp.sum(new.w) + n["k"]}


def test_flat_jit_matches_the_uncompiled_function_and_reuses_structures():
    call = FlatJit(step, flat_in=(1, 2), flat_out=(0,))
    net = Flat.of(Net(jnp.ones(3), jnp.zeros(3), 0.5))
    n = Flat.of({"k": jnp.asarray(2.0), "label": "static"})
    x = jnp.arange(3.0)
    out, metrics = call(x, net, n)
    want, want_metrics = step(x, net.tree(), n.tree())
    assert isinstance(out, Flat) and np.array_equal(out.tree().w, want.w)
    assert float(metrics["total"]) == float(want_metrics["total"])
    assert out.structure is net.structure  # same structure: the input's object, found by identity next time
    again, _ = call(x, out, n)
    assert np.array_equal(again.tree().w, want.w * 0.5 + x)
    assert len(call._programs) == 1


def test_flat_jit_traces_per_structure_and_per_shape():
    traces = []

    def counted(x, net, n):
        traces.append(x.shape)
        return step(x, net, n)

    call = FlatJit(counted, flat_in=(1, 2), flat_out=(0,))
    n = Flat.of({"k": jnp.asarray(0.0)})
    call(jnp.ones(3), Flat.of(Net(jnp.ones(3), jnp.ones(3), 0.5)), n)
    call(jnp.ones(3), Flat.of(Net(jnp.ones(3), jnp.ones(3), 0.5)), n)  # an equal structure: no trace
    assert len(traces) == 1
    out, _ = call(jnp.ones(3), Flat.of(Net(jnp.ones(3), jnp.ones(3), 2.0)), n)  # another static leaf
    assert len(traces) == 2 and np.array_equal(out.tree().w, np.full(3, 3.0))
    call(jnp.ones(4), Flat.of(Net(jnp.ones(4), jnp.ones(4), 2.0)), n)  # another shape
    assert len(traces) == 3


def test_flat_jit_donates_the_arrays_it_is_told_to_and_lowers():
    def fresh():
        return Flat.of(Net(jnp.ones(3), jnp.zeros(3), 0.5)), Flat.of({"k": jnp.asarray(2.0)})

    x = jnp.arange(3.0)
    net, n = fresh()
    want, _ = FlatJit(step, flat_in=(1, 2), flat_out=(0,))(x, net, n)
    donating = FlatJit(step, flat_in=(1, 2), flat_out=(0,), donate=(1, 2))
    net, n = fresh()
    out, _ = donating(x, net, n)
    assert all(a.is_deleted() for a in net.arrays)  # its buffers went to the results
    assert np.array_equal(out.tree().w, want.tree().w)
    net, n = fresh()
    out, _ = FlatJit(step, flat_in=(1, 2), flat_out=(0,), donate=(1,))(x, net, n)
    assert all(a.is_deleted() for a in net.arrays) and not any(a.is_deleted() for a in n.arrays)
    net, n = fresh()
    lowered = donating.lower(x, net, n)
    assert "tf.aliasing_output" in lowered.as_text()  # the donation, in the lowered program
    assert not any(a.is_deleted() for a in net.arrays)  # lowering runs nothing
