"""The CUDA build (CMake option DARNAX_CUDA): its kernels equal the CPU's and the oracles on a
GPU (skipped without one), its registrations, and the darnax error for an op placed on a GPU
that this build has no kernel for (checked here by lowering for the platform, no GPU needed)."""

import re
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darnax.ops import (
    NoKernelError,
    _ffi,
    async_sign_sweeps,
    async_sign_sweeps_reference,
    random_permutations,
    sparse_matmul,
    sparse_matmul_reference,
    sparse_outer,
    sparse_outer_reference,
    sync_sign_steps,
    sync_sign_steps_reference,
)

from .strategies import dyadic, layer_case, product_case, random_pattern, spins
from .test_sign_dynamics import layer, orders

CUDA_OPS = ("darnax_async_sign_sweeps", "darnax_sparse_matmul", "darnax_sparse_outer", "darnax_sync_sign_steps")


def _gpu():
    """The first CUDA device, or None."""
    try:
        return jax.devices("cuda")[0]
    except RuntimeError:
        return None


def require_gpu():
    """The first CUDA device; skips the test without a CUDA build or a GPU (asked at run time, so
    that collecting the tests starts no jax backend)."""
    if not _ffi.built_with_cuda:
        pytest.skip("darnax was built without CUDA kernels (build with -Ccmake.define.DARNAX_CUDA=ON)")
    device = _gpu()
    if device is None:
        pytest.skip("no CUDA GPU visible to jax")
    return device


def on(device, fn, *args):
    """fn(*args) under jit, its array arguments placed on `device`, results back as NumPy."""
    placed = [jax.device_put(a, device) if isinstance(a, np.ndarray) else a for a in args]
    return jax.tree.map(np.asarray, fn(*placed))


def cpu_and_gpu(fn, *args):
    return on(jax.devices("cpu")[0], fn, *args), on(_gpu(), fn, *args)


# ---- on a GPU: the kernels against the CPU's, bit for bit, and against the oracles ----


@given(product_case(max_batch=256))
def test_sparse_matmul_gpu_equals_cpu_bitwise(case):
    require_gpu()
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x, v = rng.standard_normal((batch, d)).astype(dtype), rng.standard_normal(p.nnz).astype(dtype)
    cpu, gpu = cpu_and_gpu(jax.jit(sparse_matmul, static_argnums=2), x, v, p)
    np.testing.assert_array_equal(gpu, cpu)
    xs, vs = spins(rng, (batch, d), dtype), dyadic(rng, (p.nnz,), dtype)
    np.testing.assert_array_equal(on(_gpu(), sparse_matmul, xs, vs, p), sparse_matmul_reference(xs, vs, p))


@given(product_case(max_batch=256))
def test_sparse_outer_gpu_equals_cpu_bitwise(case):
    require_gpu()
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x, e = rng.standard_normal((batch, d)).astype(dtype), rng.standard_normal((batch, k)).astype(dtype)
    e[:, rng.random(k) < 0.5] = 0  # columns whose error is zero take the CPU's shortcuts
    cpu, gpu = cpu_and_gpu(jax.jit(sparse_outer), x, e, p)
    np.testing.assert_array_equal(gpu, cpu)
    xs, es = spins(rng, (batch, d), dtype), dyadic(rng, (batch, k), dtype)
    np.testing.assert_array_equal(on(_gpu(), sparse_outer, xs, es, p), sparse_outer_reference(xs, es, p))


@given(layer_case(max_n=60), st.integers(0, 4))
def test_sync_sign_steps_gpu_equals_cpu_bitwise(case, n_steps):
    require_gpu()
    rng, batch, n, density, dtype = case
    p, h, v, diag, s0 = layer(rng, batch, n, density, dtype)  # dyadic: the oracle is exact
    run = jax.jit(sync_sign_steps, static_argnums=(2, 5))
    wide = rng.standard_normal(h.shape).astype(dtype), rng.standard_normal(v.shape).astype(dtype)
    cpu, gpu = cpu_and_gpu(lambda *a: run(*a, n_steps), *wide, p, diag, s0)
    for a, b in zip(gpu, cpu, strict=True):
        np.testing.assert_array_equal(a, b)
    want = sync_sign_steps_reference(h, v, p, diag, s0, n_steps)
    got = on(_gpu(), lambda *a: run(*a, n_steps), h, v, p, diag, s0)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@given(layer_case(max_n=60), st.integers(0, 4), st.sampled_from(["shared", "per_sample", "per_sweep"]))
def test_async_sign_sweeps_gpu_equals_cpu_bitwise(case, n_sweeps, kind):
    require_gpu()
    rng, batch, n, density, dtype = case
    p, h, v, diag, s0 = layer(rng, batch, n, density, dtype)
    order = {  # as test_sign_dynamics draws them
        "shared": lambda: orders(rng, 1, n)[0],
        "per_sample": lambda: orders(rng, batch, n),
        "per_sweep": lambda: np.stack([orders(rng, n_sweeps, n) for _ in range(batch)]),
    }[kind]()
    run = jax.jit(async_sign_sweeps, static_argnums=(2, 6))
    wide = rng.standard_normal(h.shape).astype(dtype), rng.standard_normal(v.shape).astype(dtype)
    cpu, gpu = cpu_and_gpu(lambda h, v, d, s, o: run(h, v, p, d, s, o, n_sweeps), *wide, diag, s0, order)
    for a, b in zip(gpu, cpu, strict=True):
        np.testing.assert_array_equal(a, b)
    got = on(_gpu(), lambda h, v, d, s, o: run(h, v, p, d, s, o, n_sweeps), h, v, diag, s0, order)
    for a, b in zip(got, async_sign_sweeps_reference(h, v, p, diag, s0, order, n_sweeps), strict=True):
        np.testing.assert_array_equal(a, b)


def test_traced_bad_order_is_rejected_on_the_gpu_as_on_the_cpu(rng):
    gpu = require_gpu()
    p, h, v, diag, s0 = layer(rng, 3, 10, 0.3, np.float32)
    bad = orders(rng, 3, 10)
    bad[1, 4] = bad[1, 5]
    run = jax.jit(async_sign_sweeps, static_argnums=(2, 6))
    messages = []
    for device in (jax.devices("cpu")[0], gpu):
        with pytest.raises(Exception, match="order: not a permutation") as err:
            on(device, lambda h, v, d, s, o: run(h, v, p, d, s, o, 2), h, v, diag, s0, bad)
        messages.append(re.search(r"order: not a permutation of 0\.\.\d+ \(entry \d+ is \d+\)", str(err.value))[0])
    assert messages[0] == messages[1]


# ---- anywhere: what the build reports, and the error for a GPU without kernels ----


def test_build_reports_its_cuda_kernels():
    if _ffi.built_with_cuda:
        assert _ffi.cuda_targets == frozenset(CUDA_OPS)
        assert all(set(stages) == {"instantiate", "execute"} for stages in _ffi._ext.cuda_registrations().values())
        assert set(_ffi._ext.cuda_ffi_types()) == {"darnax_cuda_pattern"}
    else:
        assert _ffi._ext.built_with_cuda is False
        assert _ffi.cuda_targets == frozenset()
        assert _ffi._ext.cuda_registrations() == {} and _ffi._ext.cuda_ffi_types() == {}


@pytest.fixture
def cpu_only_build(monkeypatch):
    """What the placement check reads, as a build without DARNAX_CUDA has it."""
    monkeypatch.setattr(_ffi, "built_with_cuda", False)
    monkeypatch.setattr(_ffi, "cuda_targets", frozenset())


def _ops(rng):
    """Each op with CUDA kernels as a function of one float array, and that array."""
    p, h, v, diag, s0 = layer(rng, 4, 12, 0.3, np.float32)
    order = orders(rng, 1, 12)
    return {
        "sparse_matmul": (lambda x: sparse_matmul(x, v, p), s0),
        "sparse_outer": (lambda x: sparse_outer(x, h, p), s0),
        "sync_sign_steps": (lambda x: sync_sign_steps(x, v, p, diag, s0, 2), h),
        "async_sign_sweeps": (lambda x: async_sign_sweeps(x, v, p, diag, s0, order, 2), h),
    }


def _lower(fn, x, platform):
    return jax.jit(fn).trace(x).lower(lowering_platforms=(platform,))


@pytest.mark.usefixtures("cpu_only_build")
@pytest.mark.parametrize("op", ["sparse_matmul", "sparse_outer", "sync_sign_steps", "async_sign_sweeps"])
def test_gpu_placement_without_cuda_kernels_names_the_fix(rng, op):
    fn, x = _ops(rng)[op]
    with pytest.raises(NoKernelError) as err:
        _lower(fn, x, "cuda")
    message = str(err.value)
    assert message.startswith(f"darnax: {op} is placed on a CUDA GPU")
    assert "DARNAX_CUDA=ON" in message and "JAX_PLATFORMS=cpu" in message and "jax.default_device" in message
    assert "No registered implementation" not in message


@pytest.mark.usefixtures("cpu_only_build")
def test_cpu_placement_never_sees_the_gpu_error(rng):
    """Eager, jitted, lowered for the CPU, and under jax.default_device(cpu): no misfire."""
    cpu = jax.devices("cpu")[0]
    for fn, x in _ops(rng).values():
        want = jax.tree.map(np.asarray, fn(x))
        _lower(fn, x, "cpu").compile()
        with jax.default_device(cpu):
            got = jax.jit(fn)(jax.device_put(x, cpu))
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.fixture
def gpu_default_backend(monkeypatch):
    """jax.local_devices() as on a machine whose default backend is a CUDA GPU (for darnax's
    eager check only: jax itself still runs on the CPU here)."""
    real = jax.local_devices
    gpu = types.SimpleNamespace(platform="gpu", client=types.SimpleNamespace(platform_version="cuda 13.0"))
    monkeypatch.setattr(jax, "local_devices", lambda *a, **k: real(*a, **k) if a or k else [gpu])


@pytest.mark.usefixtures("cpu_only_build", "gpu_default_backend")
def test_eager_op_on_a_gpu_default_backend_names_the_fix(rng):
    for name, (fn, x) in _ops(rng).items():
        with pytest.raises(NoKernelError, match=f"darnax: {name} is placed on a CUDA GPU.*DARNAX_CUDA=ON"):
            fn(x)


@pytest.mark.usefixtures("cpu_only_build", "gpu_default_backend")
def test_eager_op_placed_on_cpu_by_the_user_runs(rng):
    """On that machine, operands committed to the CPU, or jax.default_device(cpu), run the op there."""
    cpu = jax.devices("cpu")[0]
    for fn, x in _ops(rng).values():
        got = fn(jax.device_put(x, cpu))
        with jax.default_device(cpu):
            got_default = fn(x)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(got_default), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.usefixtures("cpu_only_build")
def test_gpu_error_survives_grad_and_vmap(rng):
    p = random_pattern(rng, (6, 5), 0.5)
    v = jnp.ones(p.nnz, jnp.float32)
    x = np.ones((3, 6), np.float32)
    loss = jax.grad(lambda v: sparse_matmul(x, v, p).sum())
    with pytest.raises(NoKernelError):
        jax.jit(loss).trace(v).lower(lowering_platforms=("cuda",))
    batched = jax.vmap(lambda x: sparse_matmul(x, v, p))
    with pytest.raises(NoKernelError):
        _lower(batched, np.ones((2, 3, 6), np.float32), "cuda")


def test_ops_without_a_cuda_kernel_say_so(rng):
    with pytest.raises(NoKernelError, match="random_permutations") as err:
        _lower(random_permutations, np.zeros((3, 5), np.uint32), "cuda")
    assert "JAX_PLATFORMS=cpu" in str(err.value)
    fn, x = _ops(rng)["sparse_matmul"]
    with pytest.raises(NoKernelError, match="platform 'rocm'"):
        _lower(fn, x, "rocm")


@pytest.mark.skipif(not _ffi.built_with_cuda, reason="darnax was built without CUDA kernels")
def test_cuda_build_lowers_its_ops_for_cuda(rng):
    for name, (fn, x) in _ops(rng).items():
        text = _lower(fn, x, "cuda").as_text()
        assert f"darnax_{name}" in text
