"""``model.connectivity``: Bernoulli patterns (the reference's) or an exact fan-in per unit."""

from __future__ import annotations

import numpy as np

from darnax.cli.config import Config, merge, resolve
from darnax.cli.network import build_trainer
from darnax.cli.run import legacy_fingerprint as fingerprint

from .test_cli import train

FIXED = {
    "dim_hidden": [40, 40],
    "sparsity": [0.8, 0.9],
    "sparsity_win": 0.75,
    "sparsity_back": 0.5,
    "connectivity": "fixed-fan-in",
}


def _patterns(config, dim_data):
    lmap = build_trainer(config, dim_data, 10).orchestrator.lmap
    return {edge: module.pattern for edge, module in lmap.edge_items() if hasattr(module, "pattern")}


def test_fixed_fan_in_gives_every_unit_its_exact_inputs():
    patterns = _patterns(merge(Config(), {"model": FIXED}), 64)
    want = {(1, 0): 16, (1, 1): round(0.2 * 39), (1, 2): 20, (2, 1): 10, (2, 2): round(0.1 * 39)}
    assert set(patterns) == set(want)
    for edge, fan_in in want.items():
        p = patterns[edge]
        np.testing.assert_array_equal(np.diff(p.col_ptr), fan_in, err_msg=str(edge))
        if edge[0] == edge[1]:
            assert not np.any(p.row_idx == p.col_of_entry()), edge
    assert np.any(patterns[(2, 1)].row_idx == patterns[(2, 1)].col_of_entry())  # 40 -> 40, not recurrent
    assert patterns == _patterns(merge(Config(), {"model": FIXED}), 64)  # the same keys, the same patterns


def test_bernoulli_is_the_default_and_leaves_old_fingerprints_alone():
    config = merge(Config(), {"model": {"dim_hidden": 60, "sparsity": 0.8}})
    assert config.model.connectivity == "bernoulli"
    counts = np.diff(_patterns(config, 30)[(1, 1)].col_ptr)
    assert counts.min() != counts.max()  # Bernoulli in-degrees vary
    fixed = merge(config, {"model": {"connectivity": "fixed-fan-in"}})
    assert (
        fingerprint(fixed)
        != fingerprint(config)
        == fingerprint(merge(Config(), {"model": {"dim_hidden": 60, "sparsity": 0.8}}))
    )


def test_the_wide_preset_asks_for_100_recurrent_inputs_per_unit():
    config = resolve("wide-100k")
    assert config.model.dim_hidden == 100_000 and config.model.connectivity == "fixed-fan-in"
    assert round((1 - config.model.sparsity) * (100_000 - 1)) == 100


def test_a_fixed_fan_in_run_trains(tmp_path, capsys):
    path = tmp_path / "fixed.toml"
    path.write_text('[model]\ndim_hidden = 64\nsparsity = 0.8\nconnectivity = "fixed-fan-in"\n[run]\nepochs = 1\n')
    assert train("--config", path, "--out", tmp_path / "run") == 0
    assert "epoch   1" in capsys.readouterr().out
    assert resolve(file=tmp_path / "run" / "config.toml").model.connectivity == "fixed-fan-in"


def test_bad_connectivity_is_refused(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[model]\nconnectivity = "ring"\n')
    assert train("--config", path) == 2
    assert "model.connectivity: expected one of ('bernoulli', 'fixed-fan-in'), got 'ring'" in capsys.readouterr().err
