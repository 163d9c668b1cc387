"""Sphinx configuration of darnax's documentation: ``python -m sphinx -W -b html docs docs/_build/html``."""

import os

project = "darnax"
author = "the darnax authors"
copyright = "2026, the darnax authors"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
]

# Every page and tutorial is MyST Markdown; tutorials are text notebooks executed on every build,
# and an error in a cell fails the build.
source_suffix = {".md": "myst-nb"}
exclude_patterns = ["_build", "figures/data"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300
nb_merge_streams = True
nb_execution_in_temp = False

# Tutorials run with the docs folder as working directory; keep their jobs small and off the
# network. JAX's CPU backend needs nothing else.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("DARNAX_ALLOW_DOWNLOAD", "0")

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "separated"
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False

html_theme = "furo"
html_title = "darnax"
