"""The process-wide pattern store: sharing, lifetimes, program size independent of nnz."""

import gc
import pickle
import subprocess
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np

from darnax.ops import SparsityPattern, _ffi, direct, sparse_matmul


def _pattern(n, density, seed):
    rng = np.random.default_rng(seed)
    return SparsityPattern.from_mask(rng.random((n, n)) < density)


def _settled_count():
    """Live stored patterns once JAX's caches (which hold patterns as static data) are cleared."""
    jax.clear_caches()
    gc.collect()
    return direct.stored_pattern_count()


def test_equal_content_is_stored_once_and_freed_with_its_last_holder():
    before = _settled_count()
    p, q = _pattern(30, 0.2, 1), _pattern(30, 0.2, 1)
    assert p == q and hash(p) == hash(q) and p.key == q.key
    assert direct.stored_pattern_count() == before + 1
    other = _pattern(30, 0.2, 2)
    assert other != p and direct.stored_pattern_count() == before + 2
    del p, q, other
    assert _settled_count() == before


def test_views_keep_their_pattern_alive():
    before = _settled_count()
    p = _pattern(20, 0.3, 3)
    rows, want = p.row_idx, np.array(p.row_idx)
    del p
    gc.collect()
    assert direct.stored_pattern_count() == before + 1
    np.testing.assert_array_equal(rows, want)
    del rows
    assert _settled_count() == before


def test_a_compiled_program_keeps_its_pattern_alive():
    before = _settled_count()
    p = _pattern(16, 0.25, 4)
    key, nnz = p.key, p.nnz
    x, v = jnp.ones((2, 16), jnp.float32), jnp.arange(nnz, dtype=jnp.float32)
    want = np.asarray(sparse_matmul(x, v, p))
    out = jax.ShapeDtypeStruct((2, 16), jnp.float32)
    compiled = (
        jax.jit(lambda a, b: _ffi.ffi_call("sparse_matmul", out)(a, b, pattern=np.int64(key))).lower(x, v).compile()
    )
    np.testing.assert_array_equal(compiled(x, v), want)  # instantiated: holds the pattern
    del p
    gc.collect()
    np.testing.assert_array_equal(compiled(x, v), want)
    assert direct.stored_pattern_count() == before + 1
    del compiled
    assert _settled_count() == before


def test_program_text_does_not_grow_with_nnz():
    def hlo_size(n):
        p = _pattern(n, 0.05, 5)
        x, v = jnp.ones((4, n), jnp.float32), jnp.ones(p.nnz, jnp.float32)
        return len(jax.jit(lambda a, b: sparse_matmul(a, b, p)).lower(x, v).as_text())

    small, large = hlo_size(20), hlo_size(1000)  # nnz ~20 vs ~50,000
    assert abs(large - small) < 100, (small, large)


def test_pickle_round_trip():
    p = _pattern(25, 0.2, 6)
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.shape == p.shape
    np.testing.assert_array_equal(q.csr_pos, p.csr_pos)


def test_concurrent_stores_of_one_content_share_one_pattern():
    mask = np.random.default_rng(7).random((200, 200)) < 0.1
    made = []
    threads = [threading.Thread(target=lambda: made.append(SparsityPattern.from_mask(mask))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 8 and all(m == made[0] for m in made)


_SCRIPT = """
import hashlib, jax.numpy as jnp, numpy as np
from darnax.ops import SparsityPattern, sparse_matmul
p = SparsityPattern.from_mask(np.random.default_rng(8).random((300, 300)) < 0.05)
y = sparse_matmul(jnp.ones((16, 300), jnp.float32), jnp.arange(p.nnz, dtype=jnp.float32) / p.nnz, p)
print(p.key, hashlib.sha256(np.asarray(y).tobytes()).hexdigest())
"""


def test_processes_running_at_once_name_a_pattern_alike():
    """Keys depend on content only: processes that build the same pattern run the same program."""
    runs = [subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=120)[0].split() for r in runs]
    assert all(r.returncode == 0 for r in runs)
    here = SparsityPattern.from_mask(np.random.default_rng(8).random((300, 300)) < 0.05)
    assert outputs[0] == outputs[1] and int(outputs[0][0]) == here.key
