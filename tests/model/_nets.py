"""Test helpers: the seed-10 network at reduced width, and dyadic (exactly summable) variants."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from darnax.layer_maps.sparse import LayerMap
from darnax.modules._hyper import Constant
from darnax.modules.fully_connected import FrozenRescaledFullyConnected, FullyConnected, SparseFullyConnected
from darnax.modules.input_output import OutputLayer
from darnax.modules.interfaces import AbstractModule, replace_static
from darnax.modules.recurrent import SparseRecurrentDiscrete
from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState


def seed10_network(
    dim_data: int = 784,
    dim_hidden: int = 256,
    num_labels: int = 10,
    *,
    sparsity: float = 0.9,
    sparsity_win: float = 0.9,
    seed: int = 44,
    lr: bool = True,
    dynamics: str = "sync",
    backend: str = "compiled",
    dtype=jnp.float32,
) -> tuple[SequentialState, SequentialOrchestrator]:
    """The seed-10 topology with its hyper-parameters (module-internal lr and weight decay)."""
    keys = jax.random.split(jax.random.key(seed), 5)
    kw = lambda lr_, wd: {"lr": lr_, "weight_decay": wd} if lr else {}  # noqa: E731
    lm = LayerMap.from_dict(
        {
            1: {
                0: SparseFullyConnected(
                    dim_data,
                    dim_hidden,
                    5.0,
                    1.78,
                    sparsity_win,
                    keys[0],
                    dtype,
                    **kw(0.159 / (1 - sparsity_win) ** 0.5, 0.01),
                ),
                1: SparseRecurrentDiscrete(
                    dim_hidden, 0.95, sparsity, 1.78, keys[1], dtype=dtype, **kw(0.058 / (1 - sparsity) ** 0.5, 6e-5)
                ),
                2: FrozenRescaledFullyConnected(num_labels, dim_hidden, 1.3, 0.0, keys[2], dtype),
            },
            2: {
                1: FullyConnected(dim_hidden, num_labels, 1.0, 7.0, keys[3], dtype, **kw(0.17, 0.02)),
                2: OutputLayer(),
            },
        }
    )
    orch = SequentialOrchestrator(lm, dynamics=dynamics, backend=backend)
    return SequentialState((dim_data, dim_hidden, num_labels), dtype=dtype), orch


def dyadic(tree, denominator: int = 64):
    """Round every inexact leaf and every static hyper-parameter (learning rates, thresholds, ...)
    to a multiple of ``1/denominator``.

    With such weights, ±1 states and ±1 or dyadic inputs, every field is a short sum of dyadic
    rationals, exact in float32 and float64 whatever the summation order; the compiled kernels
    (float64, column order) and the jnp oracle (float32, BLAS order) then produce identical ±1
    states, so bitwise comparisons test the maths rather than rounding.
    """
    tree = jax.tree.map(lambda a: jnp.round(a * denominator) / denominator if eqx.is_inexact_array(a) else a, tree)

    def hyper(module):
        if not isinstance(module, AbstractModule):
            return module
        constants = {f.name: getattr(module, f.name) for f in dataclasses.fields(module)}
        return replace_static(
            module,
            **{
                name: Constant(np.round(np.asarray(c.array) * denominator) / denominator, np.asarray(c.array).dtype)
                for name, c in constants.items()
                if isinstance(c, Constant)
            },
        )

    return jax.tree.map(hyper, tree, is_leaf=lambda m: isinstance(m, AbstractModule))


def dyadic_seed10(dim: int = 64, labels: int = 5, *, dynamics: str = "sync", backend: str = "compiled"):
    """A seed-10 network whose updates stay dyadic: ``sqrt(n * d)`` a power of two for batch 16
    and ``d = dim = 64``, learning rates 1 (``lr=None``), no decay, 5 classes (so the label
    rescaling ``r = sqrt(C - 1) = 2`` maps +1 -> 1, -1 -> -1/2: a = 3/4, b = 1/4)."""
    keys = jax.random.split(jax.random.key(3), 5)
    lm = LayerMap.from_dict(
        {
            1: {
                0: SparseFullyConnected(dim, dim, 2.0, 1.0, 0.5, keys[0]),
                1: SparseRecurrentDiscrete(dim, 0.5, 0.75, 0.5, keys[1]),
                2: FrozenRescaledFullyConnected(labels, dim, 1.0, 0.0, keys[2]),
            },
            2: {1: FullyConnected(dim, labels, 1.0, 2.0, keys[3], lr=1.0), 2: OutputLayer()},
        }
    )
    orch = dyadic(SequentialOrchestrator(lm, dynamics=dynamics, backend=backend))
    return SequentialState((dim, dim, labels)), orch


def pm1_data(key: jax.Array, n: int, dim: int, labels: int) -> tuple[jax.Array, jax.Array]:
    """±1 inputs and ±1 one-vs-all labels (a class per sample)."""
    kx, ky = jax.random.split(key)
    x = jnp.where(jax.random.bernoulli(kx, 0.5, (n, dim)), 1.0, -1.0).astype(jnp.float32)
    cls = jax.random.randint(ky, (n,), 0, labels)
    y = jnp.where(jnp.arange(labels)[None, :] == cls[:, None], 1.0, -1.0).astype(jnp.float32)
    return x, y


def assert_trees_equal(a, b) -> None:
    """Leaf-wise bitwise equality of two pytrees of arrays (and equal structure)."""
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
