"""Pytrees held as their array leaves between compiled calls, and a ``jax.jit`` over such leaves.

``train_step`` in a Python loop pays, on every call, for what happens outside the compiled
program. :func:`equinox.filter_jit` splits every argument pytree into arrays and the rest, hashes
the rest, rebuilds the outputs, and then waits for the result (it blocks on every call, to report
its runtime errors), so a loop of steps can never dispatch ahead of the computation, and every
``fit_epoch`` or ``evaluate`` call pays the splitting again. A trainer instead keeps its model,
optimiser context and last state as :class:`Flat` values: a call hands their arrays to a
``jax.jit`` program compiled for their :class:`Structure`, keeps the arrays it returns, and
rebuilds a pytree only when someone reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from darnax.utils.typing import PyTree


def is_array(leaf: object) -> bool:
    """A leaf passed to compiled calls as an argument (as :func:`equinox.is_array` decides)."""
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic))


class Structure:
    """Everything about a pytree but its arrays: the tree definition and the other leaves.

    Hashable (it keys the compiled programs; the hash is computed once) when its non-array
    leaves are. Two structures are equal when both parts are.
    """

    __slots__ = ("_hash", "mask", "static", "treedef")

    def __init__(self, treedef: Any, mask: tuple[bool, ...], static: tuple[object, ...]) -> None:
        self.treedef, self.mask, self.static = treedef, mask, static  # mask: which leaves are arrays
        self._hash = hash((treedef, mask, static))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Structure):
            return NotImplemented
        return (self._hash, self.mask, self.treedef, self.static) == (
            other._hash,
            other.mask,
            other.treedef,
            other.static,
        )

    def build(self, arrays: Sequence[Any]) -> PyTree:
        """The pytree with ``arrays`` at the array leaves."""
        if len(arrays) != len(self.mask) - len(self.static):
            raise ValueError(f"expected {len(self.mask) - len(self.static)} arrays, got {len(arrays)}")
        array, other = iter(arrays), iter(self.static)
        return jax.tree_util.tree_unflatten(self.treedef, [next(array if a else other) for a in self.mask])


def split(tree: PyTree) -> tuple[Structure, list[Any]]:
    """``(structure, arrays)`` of a pytree (see :class:`Structure`)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    mask = tuple(is_array(leaf) for leaf in leaves)
    static = tuple(leaf for leaf, a in zip(leaves, mask, strict=True) if not a)
    return Structure(treedef, mask, static), [leaf for leaf, a in zip(leaves, mask, strict=True) if a]


class Flat:
    """A pytree held as ``(structure, arrays)``; :meth:`tree` rebuilds it once, on first read."""

    __slots__ = ("_tree", "arrays", "structure")

    def __init__(self, structure: Structure, arrays: list[Any], tree: PyTree = None) -> None:
        self.structure, self.arrays, self._tree = structure, arrays, tree

    @classmethod
    def of(cls, tree: PyTree) -> Flat:
        """A :class:`Flat` of ``tree`` (which it keeps, so that :meth:`tree` returns it)."""
        structure, arrays = split(tree)
        return cls(structure, arrays, tree)

    def tree(self) -> PyTree:
        """The pytree."""
        if self._tree is None:
            self._tree = self.structure.build(self.arrays)
        return self._tree


class FlatAttribute:
    """An instance attribute holding a pytree as a :class:`Flat` (in ``_flat_<name>``): reading it
    rebuilds the pytree (once), assigning it splits the new one."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_flat_{name}"

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(obj, self._slot).tree()

    def __set__(self, obj: object, value: PyTree) -> None:
        setattr(obj, self._slot, Flat.of(value))


class FlatJit:
    """``jax.jit`` of ``fn`` for arguments and results of which some are :class:`Flat`.

    ``fn`` takes pytrees; the call takes ``Flat`` values at ``flat_in`` (the other arguments are
    array pytrees) and returns ``Flat`` values at ``flat_out`` (the other results are returned as
    ``fn`` gives them; they must be array pytrees). One program is traced per combination of input
    structures (and, as with ``jax.jit``, per shape and dtype); a result's structure is recorded
    when the program is traced, so it must not depend on shapes alone. A result whose structure
    equals an input's reuses that input's :class:`Structure`, so that the next call finds its
    program by identity. The arrays of the arguments at ``donate`` are handed to the program, which
    may reuse their buffers for its results (they are deleted). Nothing waits for the computation.
    """

    def __init__(
        self,
        fn: Callable[..., tuple[Any, ...]],
        flat_in: tuple[int, ...],
        flat_out: tuple[int, ...],
        donate: tuple[int, ...] = (),
    ) -> None:
        self._fn, self._flat_in, self._flat_out, self._donate = fn, flat_in, flat_out, donate
        self._programs: dict[tuple[Structure, ...], tuple[Callable[..., Any], list[Any]]] = {}

    def __call__(self, *args: Any) -> tuple[Any, ...]:
        """Run the compiled program on ``args``; see the class."""
        jitted, out_structures = self._program(args)
        results = list(jitted(*self._plain(args)))
        for i, structure in zip(self._flat_out, out_structures, strict=True):
            results[i] = Flat(structure, results[i])
        return tuple(results)

    def lower(self, *args: Any) -> jax.stages.Lowered:
        """The program for ``args``, lowered (``.compile()`` it, e.g. to read its memory analysis)."""
        return self._program(args)[0].lower(*self._plain(args))

    def _program(self, args: tuple[Any, ...]) -> tuple[Callable[..., Any], list[Any]]:
        structures = tuple(args[i].structure for i in self._flat_in)
        program = self._programs.get(structures)
        if program is None:
            program = self._programs[structures] = self._trace(structures)
        return program

    def _plain(self, args: tuple[Any, ...]) -> list[Any]:
        return [arg.arrays if i in self._flat_in else arg for i, arg in enumerate(args)]

    def _trace(self, structures: tuple[Structure, ...]) -> tuple[Callable[..., Any], list[Any]]:
        out_structures: list[Any] = [None] * len(self._flat_out)
        by_structure = {s: s for s in structures}

        def flat_fn(*plain: Any) -> tuple[Any, ...]:
            args = list(plain)
            for i, structure in zip(self._flat_in, structures, strict=True):
                args[i] = structure.build(args[i])
            results = list(self._fn(*args))
            for j, i in enumerate(self._flat_out):
                structure, results[i] = split(results[i])
                out_structures[j] = by_structure.get(structure, structure)
            return tuple(results)

        return jax.jit(flat_fn, donate_argnums=self._donate), out_structures


__all__ = ["Flat", "FlatAttribute", "FlatJit", "Structure", "split"]
