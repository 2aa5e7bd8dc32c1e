"""Sphinx configuration of the anyws documentation (Markdown through MyST)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anyws.version import __version__  # noqa: E402

project = "anyws"
author = "The anyws developers"
copyright = "the anyws developers, MIT licence"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "**/*.py"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# NamedTuple fields are documented by autodoc already: "Attributes:" as
# :ivar: fields avoids describing them twice.
napoleon_use_ivar = True

html_theme = "alabaster"
html_title = f"anyws {__version__}"
