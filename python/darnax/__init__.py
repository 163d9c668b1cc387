"""darnax: deep asymmetric recurrent networks of ±1 units with local plasticity, on JAX.

``import darnax as dx`` gives the public API: ``dx.SparsityPattern``, ``dx.LayerMap``,
``dx.SequentialState``, ``dx.SequentialOrchestrator``, ``dx.DynamicalTrainer``, the module
classes (``dx.RecurrentDiscrete``, ``dx.SparseFullyConnected``, ...), the datasets
(``dx.Mnist``, ...) and the subpackages ``dx.ops``, ``dx.modules``, ``dx.datasets``. The deep
paths (``darnax.modules.recurrent.RecurrentDiscrete``) name the same objects.

The names are listed once, in ``__init__.pyi`` (what type checkers read), and imported on first
use: ``import darnax`` alone stays cheap and does not load the compiled extension, so that
``jax.distributed.initialize`` may still follow it and the command line starts quickly.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any


def _exports() -> dict[str, tuple[str, str]]:
    """``{public name: (module, attribute)}`` from the ``from M import A as A`` lines of the stub."""
    tree = ast.parse(Path(__file__).with_suffix(".pyi").read_text())
    return {
        alias.asname or alias.name: (node.module, alias.name)
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


_EXPORTS = _exports()
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name on first use (then cache it in the package)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'darnax' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = (
        importlib.import_module(f"{module}.{attribute}")
        if module == "darnax"
        else getattr(importlib.import_module(module), attribute)
    )
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
