"""Package-level behaviour: clear import errors, the README example runs."""

import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_missing_extension_raises_import_error_with_fix():
    result = _run("import sys; sys.modules['darnax._ext'] = None; import darnax.ops")
    assert result.returncode != 0
    assert "ImportError: darnax's compiled extension `darnax._ext` could not be imported" in result.stderr
    assert "pip install" in result.stderr


def test_older_jaxlib_than_the_build_is_refused():
    code = "import jaxlib; jaxlib.__version__ = '0.0.1'; import darnax.ops"
    result = _run(code)
    assert result.returncode != 0
    assert "darnax was built against jaxlib" in result.stderr and "0.0.1 is installed" in result.stderr


def test_import_darnax_alone_does_not_load_the_extension():
    result = _run("import sys, darnax; print('darnax._ext' in sys.modules)")
    assert result.returncode == 0 and result.stdout.strip() == "False"


def test_import_of_the_ops_leaves_jax_backends_alone():
    """Targets are registered on the first op, so jax.distributed.initialize may still follow the import."""
    code = (
        "import darnax.ops, numpy as np; from jax._src import xla_bridge as xb; "
        "print(xb.backends_are_initialized()); "
        "p = darnax.ops.SparsityPattern.from_mask(np.eye(2, dtype=bool)); "
        "print(darnax.ops.sparse_matmul(np.ones((1, 2), np.float32), np.array([2.0, 3.0], np.float32), p).tolist())"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["False", "[[2.0, 3.0]]"]


def _readme_block(marker: str) -> str:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if marker in b]
    assert len(blocks) == 1, f"README: expected one Python example with {marker!r}"
    return blocks[0]


def test_readme_ops_example_runs():
    code = _readme_block("sparse_outer(") + "\nassert y.shape == (16, 2000) and dW.shape == (pattern.nnz,)"
    result = _run(code)
    assert result.returncode == 0, result.stderr


def test_readme_seed_style_example_learns():
    code = _readme_block("DynamicalTrainer(") + "\nassert float(metrics['accuracy']) > 0.6"
    result = _run(code)
    assert result.returncode == 0, result.stderr


def test_readme_api_example_runs():
    code = _readme_block("cosine_decay_schedule(") + "\nassert sum(a.size for a in jax.tree.leaves(params)) > 0"
    result = _run(code)
    assert result.returncode == 0, result.stderr
