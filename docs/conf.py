"""Sphinx configuration for the heterovae documentation.

Build with ``pip install -c constraints.txt -e ".[docs]" && sphinx-build -b html docs docs/_build/html``.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "heterovae"
author = "heterovae developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
source_suffix = ".rst"
exclude_patterns = ["_build"]
templates_path = ["_templates"]  # autosummary: class pages list their methods
html_theme = "alabaster"


def _skip_metadata_requests(app, what, name, obj, skip, options):
    # scikit-learn generates set_*_request methods whose docstrings link into its own docs
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
