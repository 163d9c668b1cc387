"""Hypothesis strategies for sparse patterns, values and ±1 states."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from darnax.ops import SparsityPattern

DENSITIES = (0.0, 1e-4, 0.01, 0.1, 0.5, 1.0)
SIZES = st.one_of(st.integers(1, 40), st.sampled_from([1, 63, 257, 2048]))
DTYPES = st.sampled_from([np.float32, np.float64])


def random_pattern(
    rng: np.random.Generator, shape: tuple[int, int], density: float, *, zero_diagonal: bool = False
) -> SparsityPattern:
    """A Bernoulli(density) pattern, optionally with an empty first row and last column."""
    mask = rng.random(shape) < density
    if zero_diagonal:
        np.fill_diagonal(mask, False)
    if rng.random() < 0.3:
        mask[0, :] = False
        mask[:, -1] = False
    return SparsityPattern.from_mask(mask)


def dyadic(rng: np.random.Generator, shape: tuple[int, ...], dtype: type, scale: int = 8) -> np.ndarray:
    """Multiples of 1/8 in [-2, 2]: every sum of a few thousand products is exact in float32."""
    return (rng.integers(-2 * scale, 2 * scale + 1, size=shape) / scale).astype(dtype)


def spins(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Random ±1 states."""
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dtype)


@st.composite
def product_case(draw: st.DrawFn, max_batch: int = 64):
    """(rng, batch, d, K, density, dtype) for the product-like ops."""
    d, k = draw(SIZES), draw(SIZES)
    if d * k > 2048 * 300:  # keep the dense oracle cheap
        k = min(k, 40)
    # the kernels' lane blocks (16) and chunks (64 in sparse_outer) start and end at these
    edges = [b for b in (15, 16, 17, 33, 63, 64, 65, 200, 256) if b <= max_batch]
    batch = draw(st.one_of(st.integers(1, max_batch), st.sampled_from(edges)) if edges else st.integers(1, max_batch))
    return (
        np.random.default_rng(draw(st.integers(0, 2**32 - 1))),
        batch,
        d,
        k,
        draw(st.sampled_from(DENSITIES)),
        draw(DTYPES),
    )


@st.composite
def layer_case(draw: st.DrawFn, max_n: int = 40):
    """(rng, batch, n, density, dtype) for the square sign-dynamics ops."""
    n = draw(st.integers(1, max_n))
    batch = draw(st.integers(1, 8))
    return (
        np.random.default_rng(draw(st.integers(0, 2**32 - 1))),
        batch,
        n,
        draw(st.sampled_from(DENSITIES)),
        draw(DTYPES),
    )
