"""darnax train with its caches on: same results cold, warm, from damaged entries and without."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from darnax.cli import events
from darnax.cli.run import even_chunk
from darnax.utils import cache, compile_cache

SMALL = """
[model]
dim_hidden = 48
sparsity = 0.8
[run]
epochs = 1
"""


def _train(tmp_path, out: str, cache_dir, *extra: str) -> tuple[list[dict], str]:
    env = {k: v for k, v in os.environ.items() if k != cache.NO_CACHE_ENV}
    env[cache.CACHE_DIR_ENV] = str(cache_dir)
    env[events.EVENTS_ENV] = str(tmp_path / f"{out}.events")
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    command = [
        sys.executable,
        "-m",
        "darnax",
        "train",
        "--quiet",
        "--config",
        str(config),
        "--out",
        str(tmp_path / out),
    ]
    result = subprocess.run([*command, *extra], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    metrics = [json.loads(line) for line in (tmp_path / out / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in ("train_accuracy", "test_accuracy")} for r in metrics], result.stderr


def _entries(folder) -> list:
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")] if folder.exists() else []


def test_cached_programs_give_the_same_run(tmp_path):
    store = tmp_path / "cache"
    cold, _ = _train(tmp_path, "cold", store)
    entries = _entries(store / "xla")
    assert entries and all(e.parent.name == compile_cache.build_id() for e in entries)
    warm, _ = _train(tmp_path, "warm", store)
    assert warm == cold
    events_seen = [json.loads(line)["event"] for line in (tmp_path / "warm.events").read_text().splitlines()]
    assert events_seen == ["start", "data", "network", "first_chunk", "done"]
    for entry in _entries(store / "xla"):  # every entry damaged: recompiled, same results
        data = bytearray(entry.read_bytes())
        entry.write_bytes(bytes(data[: len(data) // 2]))
    damaged, stderr = _train(tmp_path, "damaged", store)
    assert damaged == cold
    assert "persistent compilation cache" in stderr  # jax's warning, not a silent fallback
    off, _ = _train(tmp_path, "off", tmp_path / "unused", "--no-cache")
    assert off == cold and not (tmp_path / "unused").exists()


def test_build_id_names_this_build(monkeypatch):
    first = compile_cache.build_id()
    assert len(first) == 16 and first == compile_cache.build_id()
    monkeypatch.setattr(compile_cache, "_cpu_description", lambda: "another CPU")
    assert compile_cache.build_id() != first


def test_enable_is_off_without_caching(monkeypatch):
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    assert compile_cache.enable() is None


STEP_SCRIPT = """
import jax, numpy as np
from darnax.cli.config import merge, resolve
from darnax.cli.network import build_trainer
trainer = build_trainer(merge(resolve(), {"model": {"dim_hidden": 32, "sparsity": 0.8}}), 64, 10)
rng = np.random.default_rng(0)
x = rng.random((16, 64), np.float32)
y = np.where(np.eye(10, dtype=bool)[np.arange(16) % 10], 1.0, -1.0).astype(np.float32)
key = trainer.train_step(x, y, jax.random.key(0))
print(jax.config.jax_compilation_cache_dir)
print(np.asarray(trainer.orchestrator.lmap[1, 1].J).tobytes().hex()[:4000])
"""


def test_a_trainer_caches_its_programs_unless_jax_has_a_folder(tmp_path):
    """A script's trainer uses darnax's cache folder (same weights from a warm start); a folder the
    script gave jax itself is kept."""
    env = {k: v for k, v in os.environ.items() if k != cache.NO_CACHE_ENV}
    env[cache.CACHE_DIR_ENV] = str(tmp_path / "cache")

    def step(script: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    folder, cold = step(STEP_SCRIPT)
    assert folder.startswith(str(tmp_path / "cache" / "xla")) and _entries(tmp_path / "cache" / "xla")
    assert step(STEP_SCRIPT) == [folder, cold]
    own = f"import jax; jax.config.update('jax_compilation_cache_dir', {str(tmp_path / 'own')!r})\n"
    assert step(own + STEP_SCRIPT) == [str(tmp_path / "own"), cold]


def test_enable_default_keeps_a_folder_jax_already_has(monkeypatch, tmp_path):
    import jax

    monkeypatch.setenv(cache.NO_CACHE_ENV, "0")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path))
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    before = {name: getattr(jax.config, name) for name in names}
    try:  # nothing compiles while the folder is set: the session's jax keeps no cache
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))
        assert compile_cache.enable_default() is None
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")
        jax.config.update("jax_compilation_cache_dir", None)
        folder = compile_cache.enable_default()
        assert folder == tmp_path / "xla" / compile_cache.build_id()
        assert jax.config.jax_compilation_cache_dir == str(folder)
    finally:
        for name, value in before.items():
            jax.config.update(name, value)


@pytest.mark.parametrize("value", ["", "x"])
def test_events_only_when_asked(tmp_path, monkeypatch, value):
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv(events.EVENTS_ENV, str(path) if value else "")
    events.mark("start")
    assert events.enabled() == bool(value)
    if value:
        (record,) = [json.loads(line) for line in path.read_text().splitlines()]
        assert record["event"] == "start" and record["time"] > 0 and record["peak_rss_mib"] > 0
        assert record["cpu_s"] > 0
    else:
        assert not path.exists()


@pytest.mark.parametrize(
    ("n", "limit", "want"), [(3750, 64, 50), (625, 128, 125), (97, 64, 64), (128, 64, 64), (0, 8, 8)]
)
def test_even_chunk_divides_the_pass_when_it_can(n, limit, want):
    assert even_chunk(n, limit) == want
