"""Shared test configuration: strict dtype promotion, float64 available, hypothesis profiles."""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

# No persistent compilation cache in the test process (trainers turn darnax's on when built; it
# would point jax at one folder for the whole session): tests that check it run subprocesses.
os.environ["DARNAX_NO_CACHE"] = "1"

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("default", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("DARNAX_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed."""
    import numpy as np

    return np.random.default_rng(0)
