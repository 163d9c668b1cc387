"""What a resumed run must match (fingerprint), where its data may be, and how its files are written."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import jax
import pytest

from darnax.cli import checkpoint, main
from darnax.cli.config import merge, resolve
from darnax.cli.network import build_trainer
from darnax.cli.run import CHECKPOINT, Run, fingerprint, identity, legacy_fingerprint
from darnax.modules import _weights

from ..datasets._idx_files import TinyMnist, write_tiny

TINY = "[model]\ndim_hidden = 24\nsparsity = 0.8\n[run]\nepochs = 2\n"


def train(*args: object) -> int:
    return main(["train", "--quiet", *map(str, args)])


@pytest.fixture
def one_epoch(tmp_path) -> Path:
    """A tiny digits run stopped after its first epoch."""
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    out = tmp_path / "run"
    assert train("--config", config, "--out", out, "--epochs", 1) == 0
    return out


def test_fingerprint_covers_seed_and_patterns_not_epochs_or_data_dir():
    config = merge(resolve(), {"model": {"dim_hidden": 24, "sparsity": 0.8}})
    model = build_trainer(config, 64, 10).orchestrator
    base = fingerprint(config, model)
    assert fingerprint(merge(config, {"run": {"epochs": 99}}), model) == base
    assert fingerprint(merge(config, {"data": {"data_dir": "/elsewhere"}}), model) == base
    assert fingerprint(merge(config, {"run": {"master_seed": 1}}), model) != base
    assert fingerprint(merge(config, {"data": {"batch_size": 8}}), model) != base
    other = build_trainer(merge(config, {"model": {"seed": 45}}), 64, 10).orchestrator
    assert fingerprint(config, other) != base  # same config, other patterns
    assert sorted(identity(config, model)["patterns"]) == ["(1, 0).pattern", "(1, 1).pattern"]


def test_changed_master_seed_is_refused_naming_it(one_epoch, capsys):
    toml = one_epoch / "config.toml"
    toml.write_text(toml.read_text().replace("master_seed = 0", "master_seed = 1"))
    assert train("--resume", one_epoch) == 2
    err = capsys.readouterr().err
    assert str(one_epoch / CHECKPOINT) in err and "run.master_seed: checkpoint 0, now 1" in err


def test_patterns_drawn_differently_are_refused_naming_them(one_epoch, capsys, monkeypatch):
    # as if another jax version drew another Bernoulli stream from the same model.seed (the
    # modules draw their masks with _weights._sparse_mask, as SparsityPattern.random does)
    draw = _weights._sparse_mask
    monkeypatch.setattr(_weights, "_sparse_mask", lambda key, *a, **k: draw(jax.random.fold_in(key, 1), *a, **k))
    assert train("--resume", one_epoch) == 2
    err = capsys.readouterr().err
    assert "sparsity pattern (1, 0).pattern: checkpoint" in err and "sparsity pattern (1, 1).pattern" in err
    assert not re.search(r"(model|data|run)\.\w+: checkpoint", err)  # the config is the same


def test_relocated_data_resumes_with_data_dir_and_ends_like_an_unmoved_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("darnax.cli.data.Mnist", TinyMnist)  # generated files: no official checksums
    data, moved = tmp_path / "data", tmp_path / "moved"
    write_tiny(data / "mnist")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    common = ("--config", config, "--dataset", "mnist")
    full, part = tmp_path / "full", tmp_path / "part"
    assert train(*common, "--data-dir", data, "--out", full) == 0
    assert train(*common, "--data-dir", data, "--out", part, "--epochs", 1) == 0
    shutil.move(data, moved)
    capsys.readouterr()
    assert train("--resume", part) == 2
    err = capsys.readouterr().err
    assert f"--resume {part} --data-dir NEW_FOLDER" in err and str(data) in err
    assert train("--resume", part, "--data-dir", moved, "--epochs", 2) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out

    def strip(p):
        return [{k: v for k, v in json.loads(line).items() if "second" not in k} for line in p.read_text().splitlines()]

    assert strip(part / "metrics.jsonl") == strip(full / "metrics.jsonl")
    assert checkpoint.read_meta(part / CHECKPOINT)[1] == checkpoint.read_meta(full / CHECKPOINT)[1]
    assert resolve(file=part / "config.toml").data.data_dir == str(moved)  # later resumes need no flag


@pytest.mark.parametrize("cut", ["header", "metadata", "payload", "flip"])
def test_truncated_or_corrupted_checkpoint_is_refused_naming_the_file(one_epoch, capsys, cut):
    path = one_epoch / CHECKPOINT
    raw = path.read_bytes()
    head = raw.index(b"\n")
    if cut == "flip":
        raw = raw[:-7] + bytes([raw[-7] ^ 0x01]) + raw[-6:]
    else:
        raw = raw[: {"header": head // 2, "metadata": head + 20, "payload": len(raw) - 100}[cut]]
    path.write_bytes(raw)
    assert train("--resume", one_epoch) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err and ("truncated" in err or "checksum" in err), err


def test_checkpoint_of_an_older_darnax_still_resumes(one_epoch, capsys):
    # what darnax wrote before fingerprints covered the seed and the patterns
    config = resolve(file=one_epoch / "config.toml")
    run = Run(config, one_epoch, log=open(os.devnull, "w"), quiet=True)  # noqa: SIM115
    run.resume()
    trainer = run.trainer
    checkpoint.save(
        one_epoch / CHECKPOINT,
        model=trainer.orchestrator,
        optimizer_state=trainer.ctx["optimizer_state"],
        key=run.key,
        epoch=1,
        fingerprint=legacy_fingerprint(config),
    )
    run.log.close()
    capsys.readouterr()
    assert train("--resume", one_epoch, "--epochs", 2) == 0
    out = capsys.readouterr().out
    assert "an older darnax wrote this checkpoint" in out and "epoch   2" in out


def test_metrics_torn_last_line_is_dropped_other_bad_lines_are_errors(one_epoch, capsys):
    metrics = one_epoch / "metrics.jsonl"
    good = metrics.read_text()
    metrics.write_text(good + '{"epoch": 2, "train_acc')  # an append cut short by older versions
    run = Run(resolve(file=one_epoch / "config.toml"), one_epoch, log=open(os.devnull, "w"), quiet=True)  # noqa: SIM115
    assert [r["epoch"] for r in run.records()] == [1]
    metrics.write_text("garbage\n" + good)
    with pytest.raises(checkpoint.CheckpointError, match=f"{metrics}:1: not a metrics record"):
        run.records()
    run.log.close()


def test_a_run_killed_before_its_first_checkpoint_restarts(one_epoch, capsys):
    (one_epoch / CHECKPOINT).unlink()  # as if killed between epoch 1's record and its checkpoint
    (one_epoch / "summary.json").unlink()
    assert train("--resume", one_epoch, "--epochs", 2) == 0
    out = capsys.readouterr().out
    assert "starting from the beginning" in out and "epoch   1" in out and "epoch   2" in out
    # with more epochs recorded, a missing checkpoint is an error, not a silent restart
    (one_epoch / CHECKPOINT).unlink()
    assert train("--resume", one_epoch) == 2
    assert f"{one_epoch / CHECKPOINT}: no checkpoint" in capsys.readouterr().err


def test_atomic_write_syncs_file_then_renames_then_syncs_folder(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append("fsync folder" if _is_dir(fd) else "fsync file")
        real_fsync(fd)

    def replace(a, b):
        calls.append("replace")
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "summary.json"
    target.write_text("old")
    checkpoint.atomic_write(target, "new")
    assert calls == ["fsync file", "replace", "fsync folder"] and target.read_text() == "new"
    assert not checkpoint.leftovers(tmp_path)


def _is_dir(fd: int) -> bool:
    import stat

    return stat.S_ISDIR(os.fstat(fd).st_mode)


def test_kill_hook_rejects_garbage(monkeypatch):
    monkeypatch.setenv(checkpoint.KILL_HOOK, "soon")
    with pytest.raises(ValueError, match="DARNAX_TEST_KILL: expected <epoch>:<stage>"):
        checkpoint.test_kill(1, "mid-epoch")


def test_probe_needs_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.toml").write_text(TINY)
    assert main(["probe", str(out)]) == 2
    assert f"{out / CHECKPOINT}: no checkpoint" in capsys.readouterr().err
