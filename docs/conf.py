"""Sphinx configuration: autodoc + napoleon (Google-style docstrings) + MyST (Markdown pages).

Build (fails on any warning)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import trajkit  # noqa: E402

project = "trajkit"
author = "trajkit contributors"
release = trajkit.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_mock_imports = ["ray", "pybullet", "pybullet_envs_gymnasium"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# "Attributes:" sections become :ivar: fields, so dataclass fields are not documented twice.
napoleon_use_ivar = True
# Methods overriding gymnasium's (e.g. ``step``) would inherit docstrings written for
# another toolchain; document only what trajkit itself says.
autodoc_inherit_docstrings = False

# Type hints name third-party classes that have no documentation here; cross-reference
# failures for them are not errors in *our* docs.
nitpicky = False
suppress_warnings: list[str] = []

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_theme = "alabaster"
html_title = f"trajkit {release}"
