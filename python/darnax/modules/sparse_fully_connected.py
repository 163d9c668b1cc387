"""`SparseFullyConnected`: a fully connected adapter stored only on a fixed sparsity pattern."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from darnax.modules import _kernels
from darnax.modules._hyper import Constant, PlasticModule, host_dtype
from darnax.modules._weights import drawn_densely, normal_on_pattern, sparse_draw
from darnax.modules.interfaces import Adapter
from darnax.ops import SparsityPattern
from darnax.utils._checks import as_vector, backend_name, positive_int, sparsity_value
from darnax.utils.data_parallel import batch_sum, global_batch_size
from darnax.utils.perceptron_rule import perceptron_error, perceptron_scale


class SparseFullyConnected(Adapter, PlasticModule):
    """Sparse trainable adapter: message ``x @ (W ⊙ M)``, O(nnz) memory and work.

    ``W`` holds only the ``nnz`` stored values, aligned with ``pattern`` (column order); no dense
    ``(in, out)`` matrix ever lives in the parameters, the optimiser state or the updates.
    Messages use :func:`darnax.ops.sparse_matmul`, plasticity :func:`darnax.ops.sparse_outer`
    (``backend="compiled"``), or their ``jax.numpy`` oracles (``backend="jax"``).

    Update (what ``backward`` puts in ``W``): ``lr' * dW|_M + lr' * wd' * W`` with the perceptron
    ``dW``, ``lr' = 1`` if ``lr`` is None else ``lr * sqrt(0.1) / sqrt(1 - sparsity)`` and
    ``wd' = weight_decay * sqrt(0.1) / sqrt((1 - sparsity) * in)`` (the published scalings).
    ``W`` is the only inexact leaf; the hyper-parameters are static (see
    :class:`~darnax.modules._hyper.PlasticModule`).

    Attributes:
        W: ``(nnz,)`` stored weights.
        pattern: the fixed :class:`~darnax.ops.SparsityPattern` (static, no leaves).
        strength, threshold: ``(out,)`` init scale and perceptron margins.
        lr, weight_decay: the rescaled scalars ``lr'`` and ``wd'``.
    """

    W: jax.Array
    pattern: SparsityPattern
    _strength: Constant = eqx.field(static=True)
    _threshold: Constant = eqx.field(static=True)
    _lr: Constant = eqx.field(static=True)
    _weight_decay: Constant = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    sparsity: float = eqx.field(static=True)
    backend: str = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        strength: jax.typing.ArrayLike,
        threshold: jax.typing.ArrayLike,
        sparsity: float,
        key: jax.Array,
        dtype: jax.typing.DTypeLike = jnp.float32,
        *,
        lr: jax.typing.ArrayLike | None = None,
        weight_decay: float = 0.0,
        pattern: SparsityPattern | None = None,
        backend: str = "compiled",
    ):
        """Draw the mask and the weights as the dense reference does.

        ``key -> (key_w, key_mask)``; ``mask ~ Bernoulli(1 - sparsity)`` from ``key_mask``;
        ``W ~ N(0, 1) * strength / sqrt(in * (1 - sparsity))`` drawn densely from ``key_w`` and
        kept on the mask, so the module holds exactly the reference's masked weights (up to
        ``in * out = 2**24``; larger layers are drawn in O(nnz), same distributions, see
        :meth:`SparsityPattern.random`).

        Args:
            in_features: sender width ``d``.
            out_features: receiver width ``K``.
            strength: scalar or ``(K,)`` init scale.
            threshold: scalar or ``(K,)`` perceptron margin.
            sparsity: fraction of absent connections, in ``[0, 1)``.
            key: PRNG key.
            dtype: parameter dtype.
            lr: learning rate (rescaled as above), None for 1.
            weight_decay: decay coefficient (rescaled as above).
            pattern: a prebuilt ``(in, out)`` pattern (e.g. from ``SparsityPattern.from_coo`` for
                layers too large to draw densely). The values are then drawn directly on it,
                ``N(0, 1)`` from ``key_w`` (same distribution, not the same numbers as the dense
                draw); ``sparsity`` still sets the scalings.
            backend: ``"compiled"`` (darnax.ops) or ``"jax"`` (oracle maths).

        Raises:
            ValueError: on bad sizes, sparsity, vectors or a pattern of the wrong shape.
        """
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.sparsity = sparsity_value(sparsity)
        self.backend = backend_name(backend)
        strength = as_vector("strength", strength, self.out_features, dtype)
        self._strength = Constant(strength)
        self._threshold = Constant(as_vector("threshold", threshold, self.out_features, dtype))
        density = 1.0 - self.sparsity
        self._lr = Constant(1.0 if lr is None else lr * math.sqrt(0.1) / math.sqrt(density), host_dtype(dtype))
        wd = weight_decay * math.sqrt(0.1) / math.sqrt(density * self.in_features)
        self._weight_decay = Constant(wd, host_dtype(dtype))
        shape = (self.in_features, self.out_features)
        scale = math.sqrt(self.in_features * density)
        if pattern is None and drawn_densely(shape):
            self.pattern, self.W = sparse_draw(key, shape, self.sparsity, strength, scale)
            return
        key_w, key_mask = jax.random.split(key)
        if pattern is None:
            self.pattern = SparsityPattern.random(key_mask, shape, self.sparsity)
        else:
            if not isinstance(pattern, SparsityPattern) or pattern.shape != shape:
                got = getattr(pattern, "shape", type(pattern).__name__)
                raise ValueError(f"pattern: expected a SparsityPattern of shape {shape}, got {got}")
            self.pattern = pattern
        self.W = normal_on_pattern(key_w, self.pattern, strength / scale)

    @property
    def _mask(self) -> jax.Array:
        """Ones on every stored entry (shape of ``W``): all stored entries are plastic."""
        return jnp.ones_like(self.W)

    def to_dense(self) -> jax.Array:
        """The dense ``(in, out)`` matrix ``W ⊙ M`` (for inspection; O(in * out) memory)."""
        return self.pattern.to_dense(self.W)

    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
        """``x @ (W ⊙ M)`` for ``x`` of shape ``(B, in_features)``."""
        return _kernels.matmul(x, self.W, self.pattern, self.backend)

    def backward(
        self, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None
    ) -> SparseFullyConnected:
        """Update ``lr' * dW|_M + lr' * wd' * W`` in ``W`` (``(nnz,)``), zeros elsewhere."""
        e = perceptron_error(y, y_hat, self.threshold, gate)
        scale = perceptron_scale(global_batch_size(x.shape[0]), self.in_features)
        grad = batch_sum(_kernels.outer(x, e, self.pattern, self.backend)) * scale
        return eqx.tree_at(lambda m: m.W, self.zero_update(), self.local_update(grad, self.W))


__all__ = ["SparseFullyConnected"]
