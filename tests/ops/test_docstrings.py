"""The examples in the ops' docstrings run and print what they claim."""

import doctest
import importlib

import jax.numpy as jnp
import numpy as np
import pytest

from darnax.ops import SparsityPattern

MODULES = [
    "pattern",
    "pattern_sampling",
    "sparse_matmul",
    "sparse_outer",
    "async_sign_sweeps",
    "sync_sign_steps",
    "dense_async_sign_sweeps",
    "random_permutations",
    "all_finite",
    "dense_outer",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"darnax.ops.{name}")
    globs = {"np": np, "jnp": jnp, "SparsityPattern": SparsityPattern, **vars(module)}
    result = doctest.testmod(module, globs=globs)
    assert result.attempted > 0 and result.failed == 0
