"""Hand-made operand and attribute sets through raw ``jax.ffi.ffi_call`` against every registered
target, bypassing the Python checks. A valid set (drawn by hypothesis) computes what the public op
computes; the same set with one defect (a buffer's size, rank or dtype, a pattern key that names
nothing or a pattern of another shape, a bad or missing attribute, a visiting order that is not a
permutation, an extra operand) is refused with an error that names it, never a crash."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darnax.ops import (
    SparsityPattern,
    _ffi,
    async_sign_sweeps,
    dense_async_sign_sweeps,
    dense_outer,
    direct,
    sparse_matmul,
    sparse_outer,
    sync_sign_steps,
)

TARGETS = (
    "sparse_matmul",
    "sparse_outer",
    "sync_sign_steps",
    "async_sign_sweeps",
    "dense_async_sign_sweeps",
    "random_permutations",
    "dense_outer",
)
OTHER = SparsityPattern.from_mask(np.ones((7, 5), bool))  # alive for the whole module: a wrong-shape key


@dataclasses.dataclass
class Call:
    target: str
    names: list[str]  # operand names, then result names
    args: list[np.ndarray]
    outs: list[jax.ShapeDtypeStruct]
    attrs: dict
    want: list[np.ndarray]
    pattern: SparsityPattern | None = None  # keeps the key alive

    def run(self):
        fn = lambda *a: _ffi.ffi_call(self.target, self.outs)(*a, **self.attrs)  # noqa: E731
        return [np.asarray(o) for o in jax.block_until_ready(jax.jit(fn)(*self.args))]


def _sds(shape, dtype):
    return jax.ShapeDtypeStruct(tuple(shape), np.dtype(dtype))


def _build(target, rng, b, n, k, dtype):
    """A valid call of `target` and the public op's outputs for it."""
    h = rng.standard_normal((b, n)).astype(dtype)
    s0 = np.where(rng.random((b, n)) < 0.5, -1.0, 1.0).astype(dtype)
    steps = int(rng.integers(0, 3))
    order = np.stack([rng.permutation(n) for _ in range(b)]).astype(np.int32)
    if target == "random_permutations":
        bits = rng.integers(0, 2**32, (b, n), dtype=np.uint32)
        return Call(target, ["bits", "out"], [bits], [_sds((b, n), np.int32)], {}, [direct.random_permutations(bits)])
    if target == "dense_outer":
        e = rng.standard_normal((b, k)).astype(dtype)
        return Call(target, ["x", "e", "out"], [h, e], [_sds((n, k), dtype)], {}, [dense_outer(h, e)])
    if target == "dense_async_sign_sweeps":
        j = (rng.standard_normal((n, n)) / 4).astype(dtype)
        outs = [_sds((b, n), dtype), _sds((b, steps), np.int32), _sds((b, n), dtype)]
        want = dense_async_sign_sweeps(h, j, s0, order, steps)
        return Call(
            target,
            ["h_ext", "couplings", "s0", "order", "states", "flips", "fields"],
            [h, j, s0, order],
            outs,
            {"n_sweeps": np.int64(steps)},
            list(want),
        )
    square = target in ("sync_sign_steps", "async_sign_sweeps")
    mask = rng.random((n, n if square else k)) < 0.4
    mask[0, -1] = True  # nnz >= 1: XLA skips a call whose outputs are all empty
    if square:
        np.fill_diagonal(mask, False)
    p = SparsityPattern.from_mask(mask)
    v = (rng.standard_normal(p.nnz) / 4).astype(dtype)
    key = {"pattern": np.int64(p.key)}
    if target == "sparse_matmul":
        return Call(target, ["x", "values", "out"], [h, v], [_sds((b, k), dtype)], key, [sparse_matmul(h, v, p)], p)
    if target == "sparse_outer":
        e = rng.standard_normal((b, k)).astype(dtype)
        return Call(target, ["x", "e", "out"], [h, e], [_sds((p.nnz,), dtype)], key, [sparse_outer(h, e, p)], p)
    diag = (rng.standard_normal(n) / 4).astype(dtype)
    outs = [_sds((b, n), dtype), _sds((b, steps), np.int32), _sds((b, n), dtype)]
    names = ["h_ext", "values", "diag", "s0", "states", "flips", "fields"]
    if target == "sync_sign_steps":
        want = sync_sign_steps(h, v, p, diag, s0, steps)
        return Call(target, names, [h, v, diag, s0], outs, {**key, "n_steps": np.int64(steps)}, list(want), p)
    want = async_sign_sweeps(h, v, p, diag, s0, order, steps)
    names.insert(4, "order")
    return Call(target, names, [h, v, diag, s0, order], outs, {**key, "n_sweeps": np.int64(steps)}, list(want), p)


# The name an error gives when a buffer's last axis grows, where it differs from the buffer's own:
# the buffer that sets a size is accepted, and the next one that must match it is named.
GROW_NAMES = {
    ("dense_async_sign_sweeps", "h_ext"): "couplings",
    ("random_permutations", "bits"): "out",
    ("dense_outer", "x"): "out",
    ("dense_outer", "e"): "out",
    ("sparse_matmul", "x"): "x",
}
STEPS = {"sync_sign_steps": "n_steps", "async_sign_sweeps": "n_sweeps", "dense_async_sign_sweeps": "n_sweeps"}


def _mutations(call):
    """Every defect that applies to `call`: (label, change in place, expected error regex)."""
    n_args = len(call.args)
    out = []

    def buffer(i):
        return call.args[i] if i < n_args else call.outs[i - n_args]

    def put(i, value):
        if i < n_args:
            call.args[i] = value
        else:
            call.outs[i - n_args] = value

    def reshaped(i, shape):
        a = buffer(i)
        return np.zeros(shape, a.dtype) if i < n_args else _sds(shape, a.dtype)

    for i, name in enumerate(call.names):
        shape = buffer(i).shape
        grown = (*shape[:-1], shape[-1] + 1)
        named = GROW_NAMES.get((call.target, name), name)
        out.append((f"grow {name}", lambda i=i, g=grown: put(i, reshaped(i, g)), rf"{named}: expected"))
        if name != "order":
            out.append((f"rank {name}", lambda i=i, s=shape: put(i, reshaped(i, (1, *s))), rf"{name}: expected"))
    floats = [i for i, a in enumerate(call.args + call.outs) if np.dtype(a.dtype).kind == "f"]
    for i in floats[1:]:
        other = np.float32 if np.dtype(buffer(i).dtype) == np.float64 else np.float64
        out.append(
            (
                f"dtype {call.names[i]}",
                lambda i=i, o=other: put(i, buffer(i).astype(o) if i < n_args else _sds(buffer(i).shape, o)),
                "must share one dtype",
            )
        )
    if floats:

        def all_int():
            for i in floats:
                put(i, buffer(i).astype(np.int32) if i < n_args else _sds(buffer(i).shape, np.int32))

        out.append(("all int32", all_int, "expected float32 or float64"))
    ints = [i for i, a in enumerate(call.args + call.outs) if np.dtype(a.dtype).kind in "iu"]
    for i in ints:
        out.append(
            (
                f"int64 {call.names[i]}",
                lambda i=i: put(i, buffer(i).astype(np.int64) if i < n_args else _sds(buffer(i).shape, np.int64)),
                "Wrong buffer dtype",
            )
        )
    if "pattern" in call.attrs:
        out.append(
            ("unknown key", lambda: call.attrs.update(pattern=np.int64(12345)), "not in this process's pattern store")
        )
        wrong = "expected a square pattern" if call.target in STEPS else r"x: expected shape \(B, 7\)"
        out.append(("other pattern", lambda: call.attrs.update(pattern=np.int64(OTHER.key)), wrong))
        out.append(("int32 key", lambda: call.attrs.update(pattern=np.int32(3)), "Wrong scalar data type"))
    if call.target in STEPS:
        steps = STEPS[call.target]
        out.append(("negative steps", lambda: call.attrs.update({steps: np.int64(-1)}), "must be >= 0"))
        out.append(("missing steps", lambda: call.attrs.pop(steps), "Wrong number of attributes"))
    no_attrs = call.target in ("random_permutations", "dense_outer")
    extra = f"{call.target} takes no attributes, got 1" if no_attrs else "Wrong number of attributes"
    out.append(("extra attribute", lambda: call.attrs.update(extra=np.int64(0)), extra))
    out.append(("extra operand", lambda: call.args.append(call.args[0]), "Wrong number of arguments"))
    if "order" in call.names:
        i = call.names.index("order")
        n = call.args[i].shape[-1]
        for label, value in (("past the end", n), ("negative", -1), ("repeated", None)):

            def bad(i=i, value=value):
                o = call.args[i].copy()
                o[-1, -1] = o[-1, 0] if value is None else value
                call.args[i] = o

            if value is not None or n > 1:
                out.append((f"order {label}", bad, rf"order: not a permutation of 0\.\.{n - 1}"))
    return out


@st.composite
def cases(draw, target):
    seed = draw(st.integers(0, 2**32 - 1))
    sizes = draw(st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    call = _build(target, np.random.default_rng(seed), *sizes, dtype)
    mutations = _mutations(call)
    index = draw(st.integers(-1, len(mutations) - 1))  # -1: the valid call
    return call, (mutations[index] if index >= 0 else None)


@pytest.mark.parametrize("target", TARGETS)
@given(data=st.data())
def test_raw_calls_compute_or_are_refused_by_name(target, data):
    call, mutation = data.draw(cases(target))
    if mutation is None:
        for got, want in zip(call.run(), call.want, strict=True):
            np.testing.assert_array_equal(got, np.asarray(want))
        return
    label, change, match = mutation
    change()
    with pytest.raises(Exception, match=match) as info:
        call.run()
    assert "darnax" in str(info.value) or "Wrong" in str(info.value), (label, str(info.value))


@pytest.mark.parametrize("target", TARGETS)
def test_every_defect_is_refused(target):
    """Each defect once, on one fixed valid call (hypothesis above draws them at random)."""
    labels = [label for label, _, _ in _mutations(_build(target, np.random.default_rng(0), 3, 4, 5, np.float32))]
    assert len(labels) == len(set(labels)) >= 8
    for index, _label in enumerate(labels):
        call = _build(target, np.random.default_rng(0), 3, 4, 5, np.float32)
        _, change, match = _mutations(call)[index]
        change()
        with pytest.raises(Exception, match=match):
            call.run()
