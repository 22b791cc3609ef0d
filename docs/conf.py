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
html_theme = "alabaster"
