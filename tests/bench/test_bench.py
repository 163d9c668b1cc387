"""``darnax bench``: option parsing, a tiny end-to-end run with its JSON file, and ``--compare``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from darnax.bench._cli import _child_argv, main, parse_size
from darnax.bench._report import compare, load_rows

TINY = ["--quick", "--sizes", "40x40:0.8", "--sweeps", "1", "--batch", "3"]


def test_parse_size_reads_dims_and_sparsity():
    assert parse_size("784x2000:0.9") == (784, 2000, 0.9)


@pytest.mark.parametrize("text", ["784x2000", "0x5:0.5", "5x5:1.0", "axb:0.1"])
def test_parse_size_rejects_bad_text(text):
    with pytest.raises(argparse.ArgumentTypeError, match="size"):
        parse_size(text)


def test_child_argv_drops_the_options_the_parent_handles():
    argv = ["--threads", "1", "2", "--quick", "--json", "a.json", "--sizes", "4x4:0.5"]
    assert _child_argv(argv) == ["--quick", "--sizes", "4x4:0.5"]


def test_tiny_run_times_every_op_and_writes_json(tmp_path, capsys):
    out = tmp_path / "run.json"
    assert main([*TINY, "--dtypes", "float32", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "kernels" in table and "vs darnax" in table
    info, rows = load_rows(str(out))
    assert info["darnax_kernel_isa"] in ("avx512", "avx2", "baseline") and info["versions"]["jax"]
    assert info["cpu_model"]
    ops = {r["op"] for r in rows}
    assert ops == {"sparse_matmul", "sparse_outer", "sign dynamics", "dense async", "permutations"}
    timed = [r for r in rows if "median_s" in r]
    assert all(r["median_s"] > 0 and r["ratio_vs_darnax_jit"] > 0 for r in timed)
    errors = [r["rel_err_vs_darnax"] for r in rows if "rel_err_vs_darnax" in r]
    assert errors and max(errors) < 1e-4
    assert all(r["B"] == 3 for r in rows)


def test_compare_matches_rows_and_reports_the_change(tmp_path, capsys):
    row = {
        "op": "sparse_matmul",
        "size": "4x4 s=0.5",
        "B": 2,
        "dtype": "float32",
        "threads": 1,
        "impl": "darnax jit (XLA FFI)",
        "n_iter": None,
    }
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"machine": {}, "rows": [{**row, "median_s": 2e-3}]}))
    b.write_text(json.dumps({"machine": {}, "rows": [{**row, "median_s": 3e-3}, {**row, "B": 4, "median_s": 1.0}]}))
    (r,) = compare(str(a), str(b))
    assert r["change"] == pytest.approx(1.5)
    assert main(["--compare", str(a), str(b)]) == 0
    assert "1.50x" in capsys.readouterr().out


def test_compare_of_a_foreign_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["--compare", str(bad), str(bad)]) == 2
    assert "not a `darnax bench --json` file" in capsys.readouterr().err


def test_installed_command_runs_per_thread_count(tmp_path):
    """``darnax bench`` from the console entry point, two thread counts in two child processes."""
    out = tmp_path / "threads.json"
    cmd = [
        sys.executable,
        "-m",
        "darnax",
        "bench",
        *TINY,
        "--ops",
        "sparse_matmul",
        "--threads",
        "1",
        "2",
        "--json",
        str(out),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    _, rows = load_rows(str(out))
    assert {r["threads"] for r in rows} == {1, 2}
