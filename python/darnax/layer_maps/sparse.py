"""`LayerMap`: a sparse, static table of modules indexed by (receiver, sender) layer pairs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import jax

SUBSETS = ("all", "forward", "backward", "inference")


@jax.tree_util.register_pytree_node_class
class LayerMap:
    """A read-only ``{receiver i: {sender j: module}}`` table, rows and columns sorted.

    ``lm[i, i]`` is the receiver's own layer (it reduces messages and applies the activation);
    ``lm[i, j]`` for ``j != i`` is an adapter carrying layer ``j``'s state to layer ``i``.
    A ``LayerMap`` is a pytree: modules are its children and the key layout is static
    auxiliary data, so it is stable under ``jit`` and works with ``eqx.filter``,
    ``eqx.partition``, ``eqx.tree_at`` and Optax label trees (e.g. ``lm[1][0]`` addresses one
    module's subtree).

    Example:
        >>> lm = LayerMap.from_dict({1: {1: layer, 0: adapter}})
        >>> lm.rows(), lm.cols_of(1), (1, 0) in lm
        ((1,), (0, 1), True)
    """

    __slots__ = ("_data", "_rows")

    def __init__(self, data: Mapping[int, Mapping[int, Any]], rows: tuple[int, ...]):
        """Wrap already sorted ``data``; use :meth:`from_dict` to build and validate one."""
        self._data = {i: dict(data[i]) for i in rows}
        self._rows = tuple(rows)

    @staticmethod
    def from_dict(mapping: Mapping[int, Mapping[int, Any]], *, require_diagonal: bool = True) -> LayerMap:
        """Build a map from ``{receiver: {sender: module}}``, sorting rows and columns.

        Args:
            mapping: nested mapping of non-negative int layer indices to modules.
            require_diagonal: every receiver ``i`` must have its own layer ``(i, i)``.

        Returns:
            The validated ``LayerMap``.

        Raises:
            ValueError: on a missing diagonal, non-int or negative keys, an empty map or row, or
                modules that disagree on a layer's width (e.g. an adapter into layer 1 whose
                ``out_features`` differs from layer 1's recurrent ``features``).
        """
        if not isinstance(mapping, Mapping) or not mapping:
            raise ValueError("LayerMap.from_dict: expected a non-empty {receiver: {sender: module}} mapping")
        for i, row in mapping.items():
            if not _is_index(i):
                raise ValueError(f"LayerMap: receiver keys must be non-negative ints, got {i!r}")
            if not isinstance(row, Mapping) or not row:
                raise ValueError(f"LayerMap: row {i} must be a non-empty {{sender: module}} mapping")
            for j in row:
                if not _is_index(j):
                    raise ValueError(f"LayerMap: sender keys must be non-negative ints, got {j!r} in row {i}")
        rows = tuple(sorted(mapping))
        data = {i: dict(sorted(mapping[i].items())) for i in rows}
        if require_diagonal:
            missing = [i for i in rows if i not in data[i]]
            if missing:
                raise ValueError(
                    f"LayerMap: missing diagonal module(s) (i, i) for receiver(s) {missing}; every "
                    "receiver needs its own layer (e.g. RecurrentDiscrete or OutputLayer), or pass "
                    "require_diagonal=False"
                )
        lm = LayerMap(data, rows)
        lm.layer_widths()  # raises on inconsistent widths
        return lm

    # ------------------------------------------------------------------ pytree protocol
    def tree_flatten(self) -> tuple[tuple[Any, ...], tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]]:
        """Children: the modules in row-major order; aux: the key layout."""
        cols = tuple(tuple(self._data[i]) for i in self._rows)
        children = tuple(self._data[i][j] for i, cs in zip(self._rows, cols) for j in cs)
        return children, (self._rows, cols)

    @classmethod
    def tree_unflatten(
        cls, aux: tuple[tuple[int, ...], tuple[tuple[int, ...], ...]], children: Iterable[Any]
    ) -> LayerMap:
        """Rebuild from :meth:`tree_flatten`'s output (no validation: leaves may be anything)."""
        rows, cols = aux
        it = iter(children)
        return cls({i: {j: next(it) for j in cs} for i, cs in zip(rows, cols)}, rows)

    # ------------------------------------------------------------------ read-only access
    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        """``lm[i]``: read-only row mapping ``{sender: module}``; ``lm[i, j]``: one module."""
        if _is_index(key):
            if key not in self._data:
                raise KeyError(f"LayerMap has no receiver row {key}; rows are {self._rows}")
            return MappingProxyType(self._data[key])
        if isinstance(key, tuple) and len(key) == 2 and all(_is_index(k) for k in key):
            i, j = key
            if (i, j) not in self:
                raise KeyError(f"LayerMap has no edge ({i}, {j})")
            return self._data[i][j]
        raise TypeError(f"LayerMap keys are an int row or an (i, j) edge, got {key!r}")

    def __contains__(self, key: object) -> bool:
        """Whether the edge ``(i, j)`` exists."""
        if not (isinstance(key, tuple) and len(key) == 2):
            return False
        i, j = key
        return i in self._data and j in self._data[i]

    def get(self, edge: tuple[int, int], default: Any = None) -> Any:
        """The module on ``edge`` ``(i, j)``, or ``default`` when there is none (as ``dict.get``)."""
        i, j = edge
        return self._data.get(i, {}).get(j, default)

    def __repr__(self) -> str:
        """One line per edge."""
        edges = ", ".join(f"({i}, {j}): {type(m).__name__}" for (i, j), m in self.edge_items())
        return f"LayerMap({{{edges}}})"

    def rows(self) -> tuple[int, ...]:
        """Receiver indices, sorted."""
        return self._rows

    def cols_of(self, i: int) -> tuple[int, ...]:
        """Sender indices of row ``i``, sorted."""
        return tuple(self._data[i])

    def neighbors(self, i: int) -> Mapping[int, Any]:
        """Read-only ``{sender: module}`` of row ``i`` (same as ``lm[i]``)."""
        return MappingProxyType(self._data[i])

    def edge_items(self) -> Iterator[tuple[tuple[int, int], Any]]:
        """``((i, j), module)`` for every edge, row-major."""
        for i in self._rows:
            for j, m in self._data[i].items():
                yield (i, j), m

    def to_dict(self) -> dict[int, dict[int, Any]]:
        """A fresh, mutable ``{i: {j: module}}`` copy."""
        return {i: dict(self._data[i]) for i in self._rows}

    def row_items(self, skip_last: bool = False, subset: str = "all") -> Iterator[tuple[int, Mapping[int, Any]]]:
        """``(i, {sender: module})`` per receiver row, filtered.

        Args:
            skip_last: leave out the last row (the output layer).
            subset: ``"all"``; ``"forward"`` keeps senders ``j <= i``; ``"backward"`` keeps
                ``j >= i``; ``"inference"`` drops the sender equal to the last row index (no label
                feedback).

        Raises:
            ValueError: on an unknown ``subset``.
        """
        if subset not in SUBSETS:
            raise ValueError(f"subset/filter_messages: expected one of {SUBSETS}, got {subset!r}")
        last = self._rows[-1]
        rows = self._rows[:-1] if skip_last else self._rows
        for i in rows:
            row = self._data[i]
            if subset == "forward":
                row = {j: m for j, m in row.items() if j <= i}
            elif subset == "backward":
                row = {j: m for j, m in row.items() if j >= i}
            elif subset == "inference":
                row = {j: m for j, m in row.items() if j != last}
            yield i, MappingProxyType(row)

    def layer_widths(self) -> dict[int, int]:
        """Width of every layer the modules determine, ``{layer: width}``.

        Each module reports ``(in_features, out_features)`` (``None`` where it does not fix
        one, e.g. :class:`~darnax.modules.input_output.OutputLayer`): edge ``(i, j)`` fixes
        layer ``j``'s width to ``in_features`` and layer ``i``'s to ``out_features``.

        Raises:
            ValueError: when two modules disagree, naming both edges.
        """
        widths: dict[int, tuple[int, tuple[int, int]]] = {}
        for (i, j), module in self.edge_items():
            in_w = getattr(module, "in_features", None)
            out_w = getattr(module, "out_features", None)
            for layer, w, side in ((j, in_w, "in_features"), (i, out_w, "out_features")):
                if not isinstance(w, int):
                    continue
                if layer in widths and widths[layer][0] != w:
                    other_w, other_edge = widths[layer]
                    raise ValueError(
                        f"LayerMap: inconsistent sizes for layer {layer}: edge {other_edge} "
                        f"({type(self._data[other_edge[0]][other_edge[1]]).__name__}) implies width "
                        f"{other_w}, edge {(i, j)} ({type(module).__name__}, {side}) implies {w}"
                    )
                widths.setdefault(layer, (w, (i, j)))
        return {layer: w for layer, (w, _) in sorted(widths.items())}


def _is_index(k: object) -> bool:
    return isinstance(k, int) and not isinstance(k, bool) and k >= 0


__all__ = ["LayerMap"]
