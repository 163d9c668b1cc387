"""Shared machinery of darnax trainers: jit caching, input checks, per-batch calls (whole-epoch
scans in :mod:`darnax.trainers._epochs`).

A trainer owns an orchestrator, a state and an Optax context, and rebinds them after each
call (``trainer.orchestrator``, ``trainer.state``, ``trainer.ctx``). Subclasses provide two
pure cores, ``_train_core`` and ``_eval_core``; this class compiles them once
(:class:`~darnax.trainers._flat.FlatJit`) for ``train_step``/``eval_step``, and runs them
inside one ``lax.scan`` over the batches of an epoch for ``fit_epoch``/``evaluate``: the same
function on the same inputs, so the results equal the per-batch loop's, without Python
dispatch per batch.

Non-finite weights: every compiled training call also returns whether each weight array of
the model it ends with is all finite; a NaN or inf raises
:class:`~darnax.utils._checks.NonFiniteWeightsError` (see :mod:`darnax.trainers._finite`).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState, check_batch_shapes
from darnax.trainers._epochs import Ctx, EpochTraining, barrier
from darnax.trainers._finite import finite_weights, raise_if_non_finite
from darnax.trainers._flat import Flat, FlatAttribute, FlatJit
from darnax.trainers._sharded import sharded
from darnax.utils import compile_cache
from darnax.utils._checks import NonFiniteWeightsError, check_finite, non_negative_int
from darnax.utils.typing import PyTree


def batch_accuracy(y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
    """Fraction of rows where ``argmax(y_true) == argmax(y_pred)``, as a float32 scalar."""
    return jnp.mean((jnp.argmax(y_true, axis=-1) == jnp.argmax(y_pred, axis=-1)).astype(jnp.float32))


def apply_optimizer(
    orchestrator: SequentialOrchestrator, updates: SequentialOrchestrator, ctx: Ctx
) -> tuple[SequentialOrchestrator, PyTree]:
    """One Optax step on the inexact-array leaves: returns ``(new orchestrator, new opt state)``."""
    params = eqx.filter(orchestrator, eqx.is_inexact_array)
    grads = eqx.filter(updates, eqx.is_inexact_array)
    steps, opt_state = ctx["optimizer"].update(grads, ctx["optimizer_state"], params=params)
    return eqx.apply_updates(orchestrator, steps), opt_state


def evaluate_batch(
    x: jax.Array, y: jax.Array, rng: jax.Array, orchestrator: SequentialOrchestrator, template: SequentialState, n: int
) -> tuple[jax.Array, SequentialState, dict[str, jax.Array]]:
    """One evaluation batch of every trainer: ``n`` inference steps, ``predict``, accuracy.

    Returns:
        ``(rng, state, {"accuracy": float32 scalar})``.
    """
    state = template.init(x, y)
    cache = orchestrator.cache_messages(state)
    state, rng = orchestrator.run(state, rng, n, filter_messages="inference", cache=cache)
    state, rng = orchestrator.predict(state, rng, cache=cache)
    return rng, state, {"accuracy": batch_accuracy(y, state.readout)}


class Trainer(EpochTraining, ABC):
    """Base trainer: ``train_step``/``eval_step`` per batch, ``fit_epoch``/``evaluate`` per epoch.

    The model, the optimiser context and the last batch's state are the properties
    ``orchestrator``, ``ctx`` and ``state`` (rebound by every call; assign to replace them).
    """

    REQUIRED: tuple[str, ...] = ("optimizer", "optimizer_state")

    def __init__(
        self, orchestrator: SequentialOrchestrator, state: SequentialState, ctx: Ctx, *, mesh: Mesh | None = None
    ) -> None:
        """Store the model, a template of the state (for its layer sizes) and the context.

        With a one-axis ``mesh`` over the devices of a ``jax.distributed`` run (or the local
        devices of one process), training is data parallel: each process passes its own rows of
        every global batch (``B / P`` each, the same count everywhere), the plasticity rules sum
        their batch terms over the mesh, and every process applies the global batch's update, so
        all hold the same weights (see :mod:`darnax.utils.data_parallel`). Metrics are global.
        """
        if not isinstance(orchestrator, SequentialOrchestrator):
            raise TypeError(f"orchestrator: expected a SequentialOrchestrator, got {type(orchestrator).__name__}")
        if not isinstance(state, SequentialState):
            raise TypeError(f"state: expected a SequentialState, got {type(state).__name__}")
        self.orchestrator = orchestrator
        self.state = state
        self._flat_template = Flat.of(state)  # the layer sizes; `_template` reads it
        self._io_sizes = (state.sizes[0], state.sizes[-1])  # what every batch's x and y must fit
        self.ctx = self.validate_ctx(ctx)
        #: Training batches done by this trainer (the step the non-finite check names).
        self.steps_done = 0
        self._pending: list[tuple[jax.Array, int, int, str]] = []  # flags of train_step calls not read yet
        compile_cache.enable_default()  # a script's first train_step then loads its program from disk
        self._compile(mesh)

    def _compile(self, mesh: Mesh | None) -> None:
        """Set up the compiled calls: single-process, or data parallel on ``mesh``."""
        self.mesh = mesh
        cls = type(self)
        if mesh is None:
            self._flat_train = FlatJit(cls._checked_train_ctx, flat_in=(3, 4, 5), flat_out=(1, 2, 3))
            self._flat_eval = FlatJit(cls._isolated_eval, flat_in=(3, 4, 5), flat_out=(1,))
            # fit_epoch's program, and the same with the model and optimiser state donated
            self._flat_fit = FlatJit(cls._fit_core, flat_in=(3, 4, 5, 6, 7), flat_out=(1, 3))
            self._flat_fit_in_place = FlatJit(cls._fit_core, flat_in=(3, 4, 5, 6, 7), flat_out=(1, 3), donate=(3, 6))
            self._flat_evaluate = FlatJit(cls._evaluate_core, flat_in=(3, 4, 5, 6), flat_out=())
        else:
            self._jit_train = sharded(cls._checked_train, mesh, stacked=False, n_outputs=5, batch_outputs={2: 0})
            self._jit_eval = sharded(
                cls._isolated_eval, mesh, stacked=False, n_outputs=3, batch_outputs={1: 0}, mean_outputs=(2,)
            )
            self._jit_fit = sharded(cls._fit_core, mesh, stacked=True, n_outputs=5, batch_outputs={2: 0})
            self._jit_evaluate = sharded(
                cls._evaluate_core, mesh, stacked=True, n_outputs=4, batch_outputs={1: 0, 3: 1}, mean_outputs=(2,)
            )

    # Held flat between calls (see darnax.trainers._flat): a per-batch step passes their arrays to
    # its compiled program, and a pytree is rebuilt only when read.
    orchestrator = FlatAttribute("The current model (rebound after every training call; assign to replace it).")
    state = FlatAttribute("The state of the last batch processed (``state[-2]``: the last hidden layer).")
    ctx = FlatAttribute('``{"optimizer", "optimizer_state", <iteration counts>}``.')

    @property
    def _template(self) -> SequentialState:
        """The state passed at construction (its layer sizes shape every batch's state)."""
        return self._flat_template.tree()

    def without_mesh(self) -> Trainer:
        """A copy of this trainer that runs in this process alone (same model, state and context),
        e.g. for an evaluation batch that cannot be split evenly over the mesh."""
        local = copy.copy(self)
        local._compile(None)
        return local

    @classmethod
    def validate_ctx(cls, ctx: Ctx) -> Ctx:
        """A copy of ``ctx`` after checking its keys and iteration counts (``ValueError`` otherwise)."""
        for key in cls.REQUIRED:
            if key not in ctx:
                raise ValueError(f"ctx missing required key '{key}'")
        out = dict(ctx)
        for key in cls.REQUIRED:
            if key.endswith("_iter"):
                out[key] = non_negative_int(key, out[key])
        return out

    # ------------------------------------------------------------------ pure cores
    @staticmethod
    @abstractmethod
    def _train_core(
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
    ) -> tuple[jax.Array, SequentialOrchestrator, SequentialState, PyTree]:
        """One training batch: returns ``(rng, orchestrator, state, optimizer_state)``."""

    @staticmethod
    @abstractmethod
    def _eval_core(
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
    ) -> tuple[jax.Array, SequentialState, dict[str, jax.Array]]:
        """One evaluation batch: returns ``(rng, state, {"accuracy": ...})``."""

    @classmethod
    def _isolated_train(
        cls,
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
    ) -> tuple[jax.Array, SequentialOrchestrator, SequentialState, PyTree]:
        """``_train_core`` between optimisation barriers, in ``train_step`` and in the epoch scan alike.

        XLA:CPU contracts ``a * b + c`` into FMAs inside fusions, so the same maths fused
        differently rounds differently. The barriers give the core the same boundaries in both
        programs (inputs and outputs materialised, nothing fused across), hence the same fusions
        and bit-identical results for ``fit_epoch`` and the ``train_step`` loop.
        """
        x, y, rng, orchestrator, ctx = barrier((x, y, rng, orchestrator, ctx))
        return barrier(cls._train_core(x, y, rng, orchestrator, template, ctx))

    @classmethod
    def _checked_train(
        cls,
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
    ) -> tuple[jax.Array, SequentialOrchestrator, SequentialState, PyTree, jax.Array]:
        """:meth:`_isolated_train` plus :func:`finite_weights` of the updated model."""
        rng, orch, state, opt_state = cls._isolated_train(x, y, rng, orchestrator, template, ctx)
        return rng, orch, state, opt_state, finite_weights(orch)

    @classmethod
    def _checked_train_ctx(
        cls,
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
    ) -> tuple[jax.Array, SequentialOrchestrator, SequentialState, Ctx, jax.Array]:
        """:meth:`_checked_train` returning the whole new context (the per-batch step's program)."""
        rng, orch, state, opt_state, finite = cls._checked_train(x, y, rng, orchestrator, template, ctx)
        return rng, orch, state, {**ctx, "optimizer_state": opt_state}, finite

    @classmethod
    def _isolated_eval(
        cls,
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
    ) -> tuple[jax.Array, SequentialState, dict[str, jax.Array]]:
        """``_eval_core`` between optimisation barriers (see :meth:`_isolated_train`)."""
        x, y, rng, orchestrator, ctx = barrier((x, y, rng, orchestrator, ctx))
        return barrier(cls._eval_core(x, y, rng, orchestrator, template, ctx))

    # ------------------------------------------------------------------ per batch
    def train_step(self, x: jax.Array, y: jax.Array, rng: jax.Array) -> jax.Array:
        """Train on one batch and rebind ``orchestrator``, ``state`` and ``ctx``.

        Args:
            x: ``(B, *input size)`` inputs.
            y: ``(B, *output size)`` targets.
            rng: PRNG key.

        Returns:
            The next PRNG key.

        Raises:
            ValueError: on non-finite inputs or shapes that do not fit the state.
            NonFiniteWeightsError: when an earlier update left a NaN or inf in a weight, naming
                its step. A ``train_step``'s own flag is read once computed, by a later
                ``train_step`` (or by ``fit_epoch``, ``eval_step``, ``evaluate``,
                :meth:`check_weights`, which wait for it), so that a loop of ``train_step`` keeps
                dispatching ahead; the model stays rebound, for inspection.
        """
        x, y = self._check_batch(x, y)
        self.check_weights(wait=len(self._pending) >= _MAX_PENDING)
        return self._step(x, y, rng, "a train_step call")

    def _step(self, x: jax.Array, y: jax.Array, rng: jax.Array, where: str) -> jax.Array:
        """One compiled training step; its non-finite flag is left for :meth:`check_weights`."""
        if self.mesh is None:
            rng, self._flat_orchestrator, self._flat_state, self._flat_ctx, finite = self._flat_train(
                x, y, rng, self._flat_orchestrator, self._flat_template, self._flat_ctx
            )
        else:
            rng, orch, state, opt_state, finite = self._jit_train(
                x, y, rng, self.orchestrator, self._template, self.ctx
            )
            self.orchestrator, self.state = orch, state
            self.ctx = {**self.ctx, "optimizer_state": opt_state}
        self._pending.append((finite, self.steps_done, 1, where))
        self.steps_done += 1
        return rng

    def check_weights(self, *, wait: bool = True) -> None:
        """Read the non-finite flags that ``train_step`` calls left (only those already computed
        unless ``wait``).

        Raises:
            NonFiniteWeightsError: naming the layer, the array and the first step that left a
                NaN or inf in a weight.
        """
        while self._pending and (wait or self._pending[0][0].is_ready()):
            finite, first, n_steps, where = self._pending.pop(0)
            try:
                raise_if_non_finite(lambda: self.orchestrator, finite, first, n_steps, where)
            except NonFiniteWeightsError:
                self._pending.clear()  # later steps of the same failure
                raise

    def eval_step(self, x: jax.Array, y: jax.Array, rng: jax.Array) -> tuple[jax.Array, Mapping[str, jax.Array]]:
        """Evaluate one batch (no learning); rebinds ``state`` (so ``state[-2]`` is the representation).

        Returns:
            ``(next rng, {"accuracy": float32 scalar})``.
        """
        x, y = self._check_batch(x, y)
        self.check_weights()
        if self.mesh is None:
            rng, self._flat_state, metrics = self._flat_eval(
                x, y, rng, self._flat_orchestrator, self._flat_template, self._flat_ctx
            )
        else:
            rng, self.state, metrics = self._jit_eval(x, y, rng, self.orchestrator, self._template, self.ctx)
        return rng, metrics

    # ------------------------------------------------------------------ checks
    def _check_batch(self, x: jax.typing.ArrayLike, y: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
        # NumPy batches go to the compiled call as they are (it converts them in C++, faster
        # than jnp.asarray here); anything else becomes a NumPy array first.
        x, y = (a if isinstance(a, (jax.Array, np.ndarray)) else np.asarray(a) for a in (x, y))
        check_batch_shapes(*self._io_sizes, x.shape, y.shape)  # no template rebuilt per batch
        return check_finite("x", x), check_finite("y", y)


#: ``train_step`` flags left unread before a ``train_step`` waits for the oldest.
_MAX_PENDING = 8


__all__ = ["Trainer", "apply_optimizer", "batch_accuracy", "evaluate_batch"]
