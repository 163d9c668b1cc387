"""Dense fully connected adapters, and the sparse one (re-exported from its own file).

``FullyConnected`` carries ``x @ W`` and learns with the perceptron rule; the frozen variants
never learn; ``FrozenRescaledFullyConnected`` maps ±1 labels to ``+1 -> r/2``, ``-1 -> -1/r``
(``r = sqrt(C - 1)``) before projecting; ``CEFullyConnected`` learns with a softmax
cross-entropy rule. Initialisation: ``W ~ N(0, 1) * strength / sqrt(in)`` (strength per output
column, used at init only).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from darnax.modules import _kernels
from darnax.modules._hyper import Constant, PlasticModule, host_dtype
from darnax.modules._weights import dense_normal
from darnax.modules.interfaces import Adapter
from darnax.modules.sparse_fully_connected import SparseFullyConnected
from darnax.utils._checks import as_vector, backend_name, positive_int
from darnax.utils.data_parallel import batch_sum, global_batch_size
from darnax.utils.perceptron_rule import perceptron_rule_backward


class FullyConnected(Adapter, PlasticModule):
    """Dense trainable adapter: message ``x @ W``; update ``lr * dW + lr * wd * W``.

    ``dW`` is the perceptron rule (:func:`~darnax.utils.perceptron_rule.perceptron_rule_backward`)
    with this module's ``threshold`` as margin, ``wd = weight_decay / sqrt(in_features)``; its
    ``x^T e`` is :func:`darnax.ops.dense_outer` on CPU with ``backend="compiled"`` (XLA's dot
    otherwise, and with ``backend="jax"``). ``W`` is the only array leaf; the hyper-parameters
    are static (see :class:`~darnax.modules._hyper.PlasticModule` for how ``lr`` combines with
    Optax's rate).

    Attributes:
        W: ``(in_features, out_features)`` weights.
        strength: ``(out_features,)`` init scale (kept for reference; never updated).
        threshold: ``(out_features,)`` perceptron margins.
        lr: scalar learning rate folded into the update.
        weight_decay: scalar, already divided by ``sqrt(in_features)``.
    """

    W: jax.Array
    _strength: Constant = eqx.field(static=True)
    _threshold: Constant = eqx.field(static=True)
    _lr: Constant = eqx.field(static=True)
    _weight_decay: Constant = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    backend: str = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        strength: jax.typing.ArrayLike,
        threshold: jax.typing.ArrayLike,
        key: jax.Array,
        dtype: jax.typing.DTypeLike = jnp.float32,
        *,
        lr: jax.typing.ArrayLike = 1.0,
        weight_decay: float = 0.0,
        backend: str = "compiled",
    ):
        """Draw ``W ~ N(0, 1) * strength / sqrt(in_features)``.

        Args:
            in_features: sender width ``d``.
            out_features: receiver width ``K``.
            strength: scalar or ``(K,)`` init scale.
            threshold: scalar or ``(K,)`` perceptron margin.
            key: PRNG key for ``W``.
            dtype: parameter dtype.
            lr: learning rate folded into the update.
            weight_decay: decay coefficient (divided by ``sqrt(in_features)``).
            backend: ``"compiled"`` (the update's product in darnax.ops on CPU) or ``"jax"``.

        Raises:
            ValueError: on non-positive sizes, a ``strength``/``threshold`` of the wrong length
                or an unknown backend.
        """
        self.backend = backend_name(backend)
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        strength = as_vector("strength", strength, self.out_features, dtype)
        self._strength = Constant(strength)
        self._threshold = Constant(as_vector("threshold", threshold, self.out_features, dtype))
        self._lr = Constant(lr, host_dtype(dtype))
        self._weight_decay = Constant(weight_decay / math.sqrt(self.in_features), host_dtype(dtype))
        self.W = dense_normal(key, (self.in_features, self.out_features), strength, math.sqrt(self.in_features))

    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
        """``x @ W`` for ``x`` of shape ``(B, in_features)``."""
        return x @ self.W

    def backward(self, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None) -> FullyConnected:
        """Update ``lr * dW + lr * wd * W`` in ``W``, zeros elsewhere."""
        grad = perceptron_rule_backward(x, y, y_hat, self.threshold, gate, outer=self._outer)
        return eqx.tree_at(lambda m: m.W, self.zero_update(), self.local_update(grad, self.W))

    def _outer(self, x: jax.Array, e: jax.Array) -> jax.Array:
        return _kernels.dense_outer(x, e, self.backend)

    def to_dense(self) -> jax.Array:
        """The ``(in, out)`` weight matrix (``W`` itself)."""
        return self.W


class FrozenFullyConnected(FullyConnected):
    """As :class:`FullyConnected`, but ``backward`` returns zeros: the weights never change."""

    def backward(
        self, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None
    ) -> FrozenFullyConnected:
        """Zeros in every leaf."""
        return self.zero_update()


class FrozenRescaledFullyConnected(FullyConnected):
    """Frozen label back-projection: message ``(y * a + b) @ W`` with ``C = in_features`` classes.

    With ``r = sqrt(C - 1)``, ``a = (r/2 + 1/r)/2`` and ``b = (r/2 - 1/r)/2`` map a one-vs-all
    label ``+1 -> r/2`` and ``-1 -> -1/r``, so a one-hot ±1 label vector has zero mean.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        strength: jax.typing.ArrayLike,
        threshold: jax.typing.ArrayLike,
        key: jax.Array,
        dtype: jax.typing.DTypeLike = jnp.float32,
        *,
        lr: jax.typing.ArrayLike = 1.0,
        weight_decay: float = 0.0,
        backend: str = "compiled",
    ):
        """As :class:`FullyConnected`; ``in_features`` (the number of classes) must be >= 2."""
        if positive_int("in_features", in_features) < 2:
            raise ValueError(f"in_features: the rescaling needs at least 2 classes, got {in_features}")
        super().__init__(
            in_features,
            out_features,
            strength,
            threshold,
            key,
            dtype,
            lr=lr,
            weight_decay=weight_decay,
            backend=backend,
        )

    @property
    def affine(self) -> tuple[float, float]:
        """The label rescaling ``(a, b)``, as in ``y -> y * a + b``."""
        r = math.sqrt(self.in_features - 1)
        return 0.5 * (r / 2 + 1 / r), 0.5 * (r / 2 - 1 / r)

    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
        """``(x * a + b) @ W``."""
        a, b = self.affine
        return (x * a + b) @ self.W

    def backward(
        self, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None
    ) -> FrozenRescaledFullyConnected:
        """Zeros in every leaf."""
        return self.zero_update()


class CEFullyConnected(FullyConnected):
    """As :class:`FullyConnected` but learns by softmax cross-entropy on its receiver's field.

    ``p = softmax(y_hat)``, ``dW = x^T (p - (y + 1) / 2) / n / sqrt(in)``, update
    ``lr * dW + lr * wd * W`` (targets ±1 one-vs-all; ``threshold`` and ``gate`` unused).
    """

    def backward(self, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None) -> CEFullyConnected:
        """The cross-entropy update in ``W``, zeros elsewhere."""
        n = global_batch_size(x.shape[0])
        p = jax.nn.softmax(y_hat, axis=-1)
        grad = batch_sum(x.T @ (p - (y + 1) / 2)) / n / math.sqrt(self.in_features)
        return eqx.tree_at(lambda m: m.W, self.zero_update(), self.local_update(grad, self.W))


__all__ = [
    "CEFullyConnected",
    "FrozenFullyConnected",
    "FrozenRescaledFullyConnected",
    "FullyConnected",
    "SparseFullyConnected",
]
