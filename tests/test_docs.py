"""Every public class and function of the library appears in the API reference (docs/api), with a
docstring for autodoc to render; the docs build itself (`python -m sphinx -W`) checks the rest."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
pytestmark = pytest.mark.skipif(
    not (DOCS / "api").is_dir(), reason="docs/ is not beside tests/ (a copy of tests/ alone)"
)

#: Packages whose every public module is reference material, and the command's public modules
#: (its other modules are the command's own machinery: checkpoints, launching, progress).
PACKAGES = ("ops", "states", "layer_maps", "modules", "orchestrators", "trainers", "utils", "datasets")
CLI_MODULES = ("darnax.cli", "darnax.cli.config", "darnax.cli.network")
DIRECTIVE = re.compile(r"^\.\. auto(module|class|function|data|exception):: +(\S+)\n((?: +:.*\n)*)", re.M)


def _public_modules() -> list[str]:
    names = list(CLI_MODULES)
    for package in PACKAGES:
        module = importlib.import_module(f"darnax.{package}")
        names.append(module.__name__)
        names += [m.name for m in pkgutil.walk_packages(module.__path__, f"{module.__name__}.")]
    return [n for n in names if not any(part.startswith("_") for part in n.split("."))]


def _defined_in(module_name: str) -> dict[str, object]:
    module = importlib.import_module(module_name)
    return {
        name: obj
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module_name
    }


def _resolve(path: str) -> object:
    """A module-level object, found as autodoc finds it: its module, then the attribute."""
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _documented() -> set[int]:
    """Ids of the objects the API pages render."""
    objects = set()
    for page in (DOCS / "api").glob("*.md"):
        for kind, path, options in DIRECTIVE.findall(page.read_text()):
            if kind != "module":
                objects.add(id(_resolve(path)))
                continue
            listed = re.search(r":members: *(.*)", options)
            if ":no-members:" in options:
                continue
            if listed and listed.group(1).strip():
                objects.update(id(_resolve(f"{path}.{name.strip()}")) for name in listed.group(1).split(","))
            else:
                objects.update(id(obj) for obj in _defined_in(path).values())
    return objects


def test_every_public_name_is_in_the_api_reference():
    objects = _documented()
    missing = [
        f"{m}.{name}" for m in _public_modules() for name, obj in _defined_in(m).items() if id(obj) not in objects
    ]
    assert not missing, f"add these to docs/api/*.md: {missing}"


def test_every_public_name_has_a_docstring():
    """Autodoc leaves out members without a docstring, so an undocumented name would vanish."""
    bare = [f"{m}.{name}" for m in _public_modules() for name, obj in _defined_in(m).items() if not inspect.getdoc(obj)]
    assert not bare, f"write docstrings for: {bare}"
