"""Recurrent layers of ±1 units: dense `RecurrentDiscrete` and sparse `SparseRecurrentDiscrete`.

Both carry couplings ``J = W + diag(J_D)``: the self-message is ``s @ J``, the activation is
``sign`` with ties to +1 and the diagonal ``J_D`` (self-coupling) never changes: ``backward``
puts zeros on it, including the weight-decay term (the published reference decays it through
``lr * wd * J``; darnax keeps it fixed). ``J_D``, the thresholds, strengths, learning rate and
decay are static hyper-parameters (see :class:`~darnax.modules._hyper.PlasticModule`): ``J`` is
the only inexact leaf, so no Optax transform (``adamw``'s decoupled decay included) reaches
them. The dense layer stores its diagonal in ``J`` too, but computes with :meth:`to_dense`,
whose diagonal is always ``J_D``: whatever an optimiser does to those entries has no effect.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from darnax.modules import _kernels
from darnax.modules._hyper import Constant, PlasticModule, host_dtype
from darnax.modules._weights import drawn_densely, normal_on_pattern, sparse_draw
from darnax.modules.interfaces import RecurrentSignLayer
from darnax.ops import SparsityPattern
from darnax.utils._checks import as_vector, backend_name, positive_int, sparsity_value
from darnax.utils.data_parallel import batch_sum, global_batch_size
from darnax.utils.perceptron_rule import perceptron_error, perceptron_rule_backward, perceptron_scale


class RecurrentDiscrete(RecurrentSignLayer, PlasticModule):
    """Dense recurrent ±1 layer: ``J ~ N(0, 1) * strength / sqrt(N)``, diagonal ``j_d``.

    Update (in ``J``): ``lr * (dJ ⊙ (1 - I)) + lr * wd * (J ⊙ (1 - I))`` with the perceptron
    ``dJ``, ``lr = 1`` if None, ``wd = weight_decay / sqrt(N)``; the diagonal stays ``j_d``.

    Attributes:
        J: ``(N, N)`` couplings (the only leaf); its diagonal holds ``j_d`` but the maths reads the
            diagonal from the fixed ``(N,)`` property ``J_D`` (:meth:`to_dense`).
        threshold: ``(N,)`` perceptron margins; strength: ``(N,)`` init scale.
        lr, weight_decay: scalars (``wd`` already divided by ``sqrt(N)``), static.
    """

    J: jax.Array
    _J_D: Constant = eqx.field(static=True)
    _threshold: Constant = eqx.field(static=True)
    _strength: Constant = eqx.field(static=True)
    _lr: Constant = eqx.field(static=True)
    _weight_decay: Constant = eqx.field(static=True)
    features: int = eqx.field(static=True)
    backend: str = eqx.field(static=True)

    def __init__(
        self,
        features: int,
        j_d: jax.typing.ArrayLike,
        threshold: jax.typing.ArrayLike,
        key: jax.Array,
        strength: jax.typing.ArrayLike = 1.0,
        dtype: jax.typing.DTypeLike = jnp.float32,
        *,
        lr: jax.typing.ArrayLike | None = None,
        weight_decay: float = 0.0,
        backend: str = "compiled",
    ):
        """Draw ``J`` from ``key`` and set its diagonal to ``j_d``.

        Args:
            features: layer width ``N``.
            j_d: scalar or ``(N,)`` self-coupling.
            threshold: scalar or ``(N,)`` perceptron margin.
            key: PRNG key.
            strength: scalar or ``(N,)`` init scale (per column).
            dtype: parameter dtype.
            lr: learning rate, None for 1.
            weight_decay: decay coefficient (divided by ``sqrt(N)``).
            backend: kernels for asynchronous sweeps: ``"compiled"`` or ``"jax"``.
        """
        self.features = n = positive_int("features", features)
        self.backend = backend_name(backend)
        j_d, strength = as_vector("j_d", j_d, n, dtype), as_vector("strength", strength, n, dtype)
        self._J_D, self._strength = Constant(j_d), Constant(strength)
        self._threshold = Constant(as_vector("threshold", threshold, n, dtype))
        self._lr = Constant(1.0 if lr is None else lr, host_dtype(dtype))
        self._weight_decay = Constant(weight_decay / math.sqrt(n), host_dtype(dtype))
        J = jax.random.normal(key, (n, n), dtype=dtype) / math.sqrt(n) * strength[None, :]
        self.J = J.at[jnp.diag_indices(n)].set(j_d)

    @property
    def J_D(self) -> jax.Array:
        """``(N,)`` the (fixed) diagonal of ``J``."""
        return self._J_D.array

    @property
    def _mask(self) -> jax.Array:
        """``1 - I``: the plastic (off-diagonal) entries of ``J``."""
        return 1 - jnp.eye(self.features, dtype=self.J.dtype)

    def to_dense(self) -> jax.Array:
        """The ``(N, N)`` couplings: ``J`` with its diagonal set to ``J_D`` (under ``jit`` one
        copy per compiled call, shared by every message of the call)."""
        return self.J.at[jnp.diag_indices(self.features)].set(self.J_D)

    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
        """Self-message ``x @ J``."""
        return x @ self.to_dense()

    def backward(
        self, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None
    ) -> RecurrentDiscrete:
        """Off-diagonal perceptron update (plus decay) in ``J``, zeros elsewhere."""
        mask = self._mask
        grad = perceptron_rule_backward(x, y, y_hat, self.threshold, gate) * mask
        return eqx.tree_at(lambda m: m.J, self.zero_update(), self.local_update(grad, self.J * mask))

    def async_sweeps(
        self, h_ext: jax.Array, s0: jax.Array, order: jax.Array, n_sweeps: int
    ) -> tuple[jax.Array, jax.Array]:
        """Asynchronous sweeps via :func:`darnax.ops.dense_async_sign_sweeps` (or its oracle) on
        :meth:`to_dense`; returns the final states and their fields."""
        return _kernels.dense_async_sweeps(h_ext, self.to_dense(), s0, order, n_sweeps, self.backend)


class SparseRecurrentDiscrete(RecurrentSignLayer, PlasticModule):
    """Sparse recurrent ±1 layer: off-diagonal couplings on a fixed pattern, O(nnz) memory.

    ``J`` holds the ``nnz`` stored off-diagonal values (the pattern has an empty diagonal);
    ``J_D`` holds the diagonal. Messages, dynamics and plasticity run in darnax.ops
    (``backend="compiled"``): whole synchronous phases are one :func:`~darnax.ops.sync_sign_steps`
    call with incremental fields. Update (in ``J``): ``lr' * dJ|_M + lr' * wd' * J`` with
    ``lr' = 1`` if None else ``lr * sqrt(0.01) / sqrt(1 - sparsity)`` and
    ``wd' = weight_decay * sqrt(0.01) / sqrt((1 - sparsity) * N)``; ``J_D`` never changes.
    """

    J: jax.Array
    _J_D: Constant = eqx.field(static=True)
    _threshold: Constant = eqx.field(static=True)
    _strength: Constant = eqx.field(static=True)
    _lr: Constant = eqx.field(static=True)
    _weight_decay: Constant = eqx.field(static=True)
    pattern: SparsityPattern
    features: int = eqx.field(static=True)
    sparsity: float = eqx.field(static=True)
    backend: str = eqx.field(static=True)

    def __init__(
        self,
        features: int,
        j_d: jax.typing.ArrayLike,
        sparsity: float,
        threshold: jax.typing.ArrayLike,
        key: jax.Array,
        strength: jax.typing.ArrayLike = 1.0,
        dtype: jax.typing.DTypeLike = jnp.float32,
        *,
        lr: jax.typing.ArrayLike | None = None,
        weight_decay: float = 0.0,
        pattern: SparsityPattern | None = None,
        backend: str = "compiled",
    ):
        """Draw as the dense reference: ``key -> (key_j, key_mask)``.

        ``mask ~ Bernoulli(1 - sparsity)`` from ``key_mask`` with a zero diagonal;
        ``J ~ N(0, 1) / sqrt(N * (1 - sparsity)) * strength`` from ``key_j``, kept on the mask.
        Up to ``N * N = 2**24`` both are the reference's dense draws, bit for bit; larger layers
        are drawn in O(nnz) (same distributions, see :meth:`SparsityPattern.random`).

        Args:
            features: layer width ``N``.
            j_d: scalar or ``(N,)`` self-coupling.
            sparsity: fraction of absent couplings, in ``[0, 1)``.
            threshold: scalar or ``(N,)`` perceptron margin.
            key: PRNG key.
            strength: scalar or ``(N,)`` init scale (per column).
            dtype: parameter dtype.
            lr: learning rate (rescaled as above), None for 1.
            weight_decay: decay coefficient (rescaled as above).
            pattern: a prebuilt ``(N, N)`` pattern with an empty diagonal (for layers too large
                to draw densely); values are then drawn directly on it from ``key_j``.
            backend: ``"compiled"`` (darnax.ops) or ``"jax"`` (oracle maths).

        Raises:
            ValueError: on bad sizes, sparsity, vectors, or a pattern of the wrong shape or with
                diagonal entries.
        """
        self.features = n = positive_int("features", features)
        self.sparsity = sparsity_value(sparsity)
        self.backend = backend_name(backend)
        strength = as_vector("strength", strength, n, dtype)
        self._J_D, self._strength = Constant(as_vector("j_d", j_d, n, dtype)), Constant(strength)
        self._threshold = Constant(as_vector("threshold", threshold, n, dtype))
        density = 1.0 - self.sparsity
        self._lr = Constant(1.0 if lr is None else lr * math.sqrt(0.01) / math.sqrt(density), host_dtype(dtype))
        wd = weight_decay * math.sqrt(0.01) / math.sqrt(density * n)
        self._weight_decay = Constant(wd, host_dtype(dtype))
        scale = math.sqrt(n * density)
        if pattern is None and drawn_densely((n, n)):
            self.pattern, self.J = sparse_draw(key, (n, n), self.sparsity, strength, scale, recurrent=True)
            return
        key_j, key_mask = jax.random.split(key)
        if pattern is None:
            self.pattern = SparsityPattern.random(key_mask, (n, n), self.sparsity, zero_diagonal=True)
        else:
            if not isinstance(pattern, SparsityPattern) or pattern.shape != (n, n):
                got = getattr(pattern, "shape", type(pattern).__name__)
                raise ValueError(f"pattern: expected a SparsityPattern of shape {(n, n)}, got {got}")
            if (pattern.row_idx == pattern.col_of_entry()).any():
                raise ValueError("pattern: a recurrent pattern must have an empty diagonal (J_D holds it)")
            self.pattern = pattern
        self.J = normal_on_pattern(key_j, self.pattern, strength / scale)

    @property
    def J_D(self) -> jax.Array:
        """``(N,)`` the (fixed) self-couplings, the diagonal of ``J``."""
        return self._J_D.array

    @property
    def _mask(self) -> jax.Array:
        """Ones on every stored entry (shape of ``J``): all stored couplings are plastic."""
        return jnp.ones_like(self.J)

    def to_dense(self) -> jax.Array:
        """The dense ``(N, N)`` couplings, diagonal ``J_D`` included (O(N^2) memory)."""
        return self.pattern.to_dense(self.J) + jnp.diag(self.J_D)

    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
        """Self-message ``x @ J``."""
        if self.backend == "jax":
            return x @ self.to_dense()
        return _kernels.matmul(x, self.J, self.pattern, self.backend) + x * self.J_D[None, :]

    def backward(
        self, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None
    ) -> SparseRecurrentDiscrete:
        """Perceptron update (plus decay) on the stored couplings, zeros elsewhere (``J_D`` too)."""
        e = perceptron_error(y, y_hat, self.threshold, gate)
        scale = perceptron_scale(global_batch_size(x.shape[0]), self.features)
        grad = batch_sum(_kernels.outer(x, e, self.pattern, self.backend)) * scale
        return eqx.tree_at(lambda m: m.J, self.zero_update(), self.local_update(grad, self.J))

    @property
    def fuses_sync(self) -> bool:
        """True with the compiled backend, where a phase is one ``sync_sign_steps`` call."""
        return self.backend == "compiled"

    def sync_steps(self, h_ext: jax.Array, s0: jax.Array, n_steps: int) -> tuple[jax.Array, jax.Array]:
        """``n_steps`` steps ``s <- sign(h_ext + s @ J)`` in one call (fields kept incrementally);
        returns the final states and their fields."""
        return _kernels.sync_steps(h_ext, self.J, self.pattern, self.J_D, s0, n_steps, self.backend)

    def async_sweeps(
        self, h_ext: jax.Array, s0: jax.Array, order: jax.Array, n_sweeps: int
    ) -> tuple[jax.Array, jax.Array]:
        """Asynchronous sweeps via :func:`darnax.ops.async_sign_sweeps` (or its oracle); returns the
        final states and their fields."""
        return _kernels.async_sweeps(h_ext, self.J, self.pattern, self.J_D, s0, order, n_sweeps, self.backend)


__all__ = ["RecurrentDiscrete", "SparseRecurrentDiscrete"]
