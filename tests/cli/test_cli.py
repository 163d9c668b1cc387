"""The ``darnax`` command line end to end on tiny, offline data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from darnax.cli import checkpoint, main
from darnax.cli.config import ConfigError, merge, resolve

from ..datasets._idx_files import write_tiny

SMALL = """
[model]
dim_hidden = 96
sparsity = 0.8
[run]
epochs = 3
"""


@pytest.fixture
def small_config(tmp_path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def train(*args: str) -> int:
    return main(["train", "--quiet", *map(str, args)])


def test_train_writes_a_complete_run(tmp_path, small_config, capsys):
    out = tmp_path / "run"
    assert train("--config", small_config, "--out", out) == 0
    log = capsys.readouterr().out
    assert "digits, 1497 train / 300 test, network 64-96-10" in log and "epoch   3" in log
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["final_test_accuracy"] == records[-1]["test_accuracy"]
    assert resolve(file=out / "config.toml").model.dim_hidden == 96
    assert (out / "checkpoint.darnax").read_bytes().startswith(b"darnax-checkpoint 2 ")
    plot = ElementTree.fromstring((out / "accuracy.svg").read_text())  # the plot, always, without matplotlib
    assert plot.tag.endswith("svg") and len(plot.findall(".//{http://www.w3.org/2000/svg}polyline")) == 2


def test_a_format_1_checkpoint_is_refused_with_a_reason(tmp_path):
    old = tmp_path / "checkpoint.darnax"
    old.write_bytes(b"darnax-checkpoint 1 2\n{}")
    with pytest.raises(checkpoint.CheckpointError, match="checkpoint format 1"):
        checkpoint.read_meta(old)


def test_resume_ends_exactly_like_an_uninterrupted_run(tmp_path, small_config):
    full, part = tmp_path / "full", tmp_path / "part"
    assert train("--config", small_config, "--out", full, "--dynamics", "async") == 0
    assert train("--config", small_config, "--out", part, "--dynamics", "async", "--epochs", 1) == 0
    assert train("--resume", part, "--epochs", 3) == 0

    def strip(p):
        return [{k: v for k, v in json.loads(line).items() if "second" not in k} for line in p.read_text().splitlines()]

    assert strip(full / "metrics.jsonl") == strip(part / "metrics.jsonl")
    payload = lambda p: p.read_bytes().split(b"\n", 1)[1].split(b"}", 1)[1]  # noqa: E731
    assert payload(full / "checkpoint.darnax") == payload(part / "checkpoint.darnax")


def test_probe_reports_accuracies(tmp_path, small_config, capsys):
    out = tmp_path / "run"
    assert train("--config", small_config, "--out", out, "--epochs", 1) == 0
    assert main(["probe", str(out)]) == 0
    result = json.loads((out / "probe.json").read_text())
    assert 0.5 < result["probe_test_accuracy"] <= 1.0 and "probe: train" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[model]\nsparsity = 1.0\n", "model.sparsity: expected a value [0,1), got 1.0"),
        ("[model]\nsparsty = 0.5\n", "model.sparsty: unknown field"),
        ("[data]\nbatch_size = 'big'\n", "data.batch_size: expected int, got str"),
        ("[data]\nbatch_size = 1\n", "data.batch_size: expected a value >1, got 1"),
        ("[trainer]\ndynamics = 'chaotic'\n", "trainer.dynamics: expected one of"),
        ("[model]\ndim_hidden = 0\n", "model.dim_hidden: expected a value >0, got 0"),
        ("[extra]\nx = 1\n", "extra: unknown section"),
        ("[model\n", "not valid TOML"),
        # per-layer fields (several hidden layers)
        ("[model]\ndim_hidden = []\n", "model.dim_hidden: expected a width or a non-empty list of widths, got []"),
        ("[model]\ndim_hidden = [100, 0]\n", "model.dim_hidden[1]: expected a value >0, got 0"),
        (
            "[model]\ndim_hidden = [100, 50]\nsparsity = [0.9, 1.0]\n",
            "model.sparsity[1]: expected a value [0,1), got 1.0",
        ),
        (
            "[model]\ndim_hidden = [100, 50]\nsparsity = [0.9, 0.9, 0.9]\n",
            "model.sparsity: expected a scalar or 2 value(s), one per hidden layer (model.dim_hidden has 2 layer(s)), got 3",
        ),
        (
            "[model]\ndim_hidden = [100, 50]\nsparsity_back = [0.9, 0.9]\n",
            "model.sparsity_back: expected a scalar or 1 value(s), one per top-down coupling between hidden layers",
        ),
        ("[model]\nsparsity_back = [0.5]\n", "model.sparsity_back: expected a scalar or 0 value(s)"),
        ("[model]\nj_d = ['a']\n", "model.j_d[0]: expected float, got str 'a'"),
        ("[model]\nthreshold_j = 'high'\n", "model.threshold_j: expected float or a list of float, got str 'high'"),
        ("[model]\nthreshold_out = [1.0]\n", "model.threshold_out: expected float, got list"),
        (
            "[optimizer]\nlearning_rate_win = [0.1, 0.2]\n",
            "optimizer.learning_rate_win: expected a scalar or 1 value(s), one per hidden layer",
        ),
        ("[optimizer]\nweight_decay_back = -1.0\n", "optimizer.weight_decay_back: expected a value >=0, got -1.0"),
    ],
)
def test_bad_config_is_rejected_before_any_work(tmp_path, capsys, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    assert train("--config", path, "--out", tmp_path / "run") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_existing_run_dir_and_resume_overrides_are_refused(tmp_path, small_config, capsys):
    out = tmp_path / "run"
    assert train("--config", small_config, "--out", out, "--epochs", 1) == 0
    assert train("--config", small_config, "--out", out) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert train("--resume", out, "--dynamics", "async") == 2
    assert "only --epochs and --data-dir may change" in capsys.readouterr().err


def test_corrupted_checkpoint_is_a_clear_error(tmp_path, small_config, capsys):
    out = tmp_path / "run"
    assert train("--config", small_config, "--out", out, "--epochs", 1) == 0
    ckpt = out / "checkpoint.darnax"
    raw = bytearray(ckpt.read_bytes())
    raw[-5] ^= 0xFF
    ckpt.write_bytes(bytes(raw))
    assert train("--resume", out, "--epochs", 2) == 2
    assert "checksum mismatch" in capsys.readouterr().err


def test_checkpoint_of_another_config_is_refused(tmp_path, small_config, capsys):
    out = tmp_path / "run"
    assert train("--config", small_config, "--out", out, "--epochs", 1) == 0
    config = (out / "config.toml").read_text().replace("dim_hidden = 96", "dim_hidden = 64")
    (out / "config.toml").write_text(config)
    assert train("--resume", out, "--epochs", 2) == 2
    assert "written for another configuration" in capsys.readouterr().err


def test_missing_data_offline_lists_where_it_looked(tmp_path, capsys):
    assert train("--dataset", "fashion-mnist", "--data-dir", tmp_path / "empty", "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "fashion-mnist" in err and str(tmp_path / "empty") in err


def test_corrupted_idx_file_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "data" / "mnist"
    write_tiny(folder)
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:40])  # a download cut short
    assert train("--dataset", "mnist", "--data-dir", tmp_path / "data", "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert str(images) in err and "truncated" in err


def test_prototypes_and_merge_checks():
    config = merge(resolve(), {"data": {"dataset": "prototypes"}})
    assert config.data.dataset == "prototypes"
    with pytest.raises(ConfigError, match=r"data\.flatten"):
        merge(resolve(), {"data": {"flatten": False}})


def test_python_dash_m_darnax_shows_help():
    result = subprocess.run([sys.executable, "-m", "darnax", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "darnax train" in result.stdout


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_cpus_limits_the_process_and_bad_counts_are_refused(capsys):
    code = "import os; from darnax.cli import limit_cpus; limit_cpus(1); print(len(os.sched_getaffinity(0)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr
    for bad, message in (("0", "expected at least 1"), ("100000", "may use only")):
        assert train("--cpus", bad) == 2
        assert message in capsys.readouterr().err


_FREED = """
import sys
import numpy as np
from darnax.cli import return_freed_memory
def rss_kb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
if sys.argv[1] == "on":
    assert return_freed_memory()
np.ones(30 << 20, np.uint8)  # a freed 30 MB block: glibc raises its mmap threshold to 30 MB
before = rss_kb()
a = np.ones(20 << 20, np.uint8)
del a
print(rss_kb() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_freed_large_blocks_go_back_to_the_system():
    kept = {}
    for mode in ("off", "on"):
        result = subprocess.run([sys.executable, "-c", _FREED, mode], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        kept[mode] = int(result.stdout.strip())
    assert kept["off"] > 15_000 and kept["on"] < 2_000, kept  # KB still resident after the free
