"""The compiled backend (darnax.ops, cached messages, fused phases) equals the pure-jnp oracle.

Why dyadic values: the kernels accumulate fields in float64 and in column order, the oracle
in float32 in BLAS order. On arbitrary float weights a unit whose field lies within rounding of
zero may then resolve differently, which says nothing about correctness. With weights,
thresholds, inputs and the label rescaling all multiples of 1/64 (and updates that stay so:
``sqrt(batch * width) = 32`` and unit learning rates), every sum is exact in both backends, so
the ±1 states must agree bit for bit and the assertion is not weakened.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
import optax
import pytest

from darnax.trainers.dynamical import DynamicalTrainer

from ._nets import assert_trees_equal, dyadic_seed10, pm1_data


def _trainer(backend: str, dynamics: str) -> DynamicalTrainer:
    st, orch = dyadic_seed10(dynamics=dynamics, backend=backend)
    opt = optax.sgd(1.0)
    return DynamicalTrainer(orch, st, opt, opt.init(eqx.filter(orch, eqx.is_inexact_array)), 1, 5, 5, 5)


@pytest.mark.parametrize("dynamics", ["sync", "async"])
def test_compiled_equals_jax_over_several_train_steps(dynamics):
    compiled, oracle = _trainer("compiled", dynamics), _trainer("jax", dynamics)
    assert oracle.orchestrator.lmap[1, 1].backend == "jax"
    x, y = pm1_data(jax.random.key(11), 16 * 4, 64, 5)
    kc = ko = jax.random.key(0)
    for b in range(4):
        xb, yb = x[16 * b : 16 * b + 16], y[16 * b : 16 * b + 16]
        kc = compiled.train_step(xb, yb, kc)
        ko = oracle.train_step(xb, yb, ko)
        assert_trees_equal(compiled.state, oracle.state)  # ±1 states: bitwise
        for a, o in zip(jax.tree.leaves(compiled.orchestrator), jax.tree.leaves(oracle.orchestrator)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(o), rtol=1e-5, atol=0)
        kc, mc = compiled.eval_step(xb, yb, kc)
        ko, mo = oracle.eval_step(xb, yb, ko)
        assert_trees_equal((compiled.state, mc), (oracle.state, mo))
    assert_trees_equal(kc, ko)
    moved = [
        np.abs(np.asarray(a) - np.asarray(b)).max()
        for a, b in zip(jax.tree.leaves(compiled.orchestrator), jax.tree.leaves(dyadic_seed10()[1]))
    ]
    assert max(moved) > 0, "the weights learned"
