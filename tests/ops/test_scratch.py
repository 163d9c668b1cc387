"""Kernel scratch buffers: each thread keeps its freed small buffers for its next calls (page
faults cost more than small kernels) but never one over ``max_kept`` bytes (a wide network's
buffers, kept on every thread that ran a kernel, held hundreds of MB)."""

import numpy as np

from darnax.ops import SparsityPattern, direct


def _matmul(d: int, batch: int = 16) -> None:
    """One direct sparse_matmul of a (batch, d) input: it packs x into a scratch of d * 16 values."""
    p = SparsityPattern.from_coo(np.arange(4), np.arange(4), (d, 4))
    x = np.ones((batch, d), np.float32)
    np.testing.assert_array_equal(direct.sparse_matmul(x, np.ones(4, np.float32), p.col_ptr, p.row_idx), 1.0)


def test_small_buffers_are_kept_and_large_ones_freed():
    info = direct.scratch_info()
    assert info["max_kept"] == 4 << 20
    _matmul(2_000)  # 128 kB of lanes: kept
    small = direct.scratch_info()
    assert 1 <= small["buffers"] <= 8 and small["largest"] >= 2_000 * 16 * 4
    _matmul(80_000)  # 5.1 MB of lanes: freed once the call returns
    large = direct.scratch_info()
    assert large["largest"] <= info["max_kept"], large
    assert large["bytes"] <= 8 * info["max_kept"], large
    _matmul(2_000)  # the small buffer is still there to take
    assert direct.scratch_info()["buffers"] == large["buffers"]
