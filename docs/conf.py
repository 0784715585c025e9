# ruff: noqa: INP001 - Sphinx reads this file by path; it is not a package
"""
Sphinx configuration for the slotengine documentation: furo, MyST Markdown, and the API from the docstrings.

Build it (warnings are errors, as in CI)::

    pip install -e ".[docs]" && python -m sphinx -W --keep-going -b html docs docs/_build
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

project = "slotengine"
author = "slotengine developers"
copyright = "slotengine developers"  # noqa: A001 - the name Sphinx reads
try:
    release = version("slotengine")
except PackageNotFoundError:  # a source tree that was never installed
    release = "0.0.0"
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxcontrib.mermaid",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
# _tools holds the scripts that draw the docs' pictures; _build is the output.
exclude_patterns = ["_build", "_tools", "Thumbs.db", ".DS_Store"]

# MyST: ::: fences and definition lists; anchors for headings down to ### so links like index.md#cookbook work.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Docstrings follow Google style (STYLE habit 14) and name things in `single backticks`: make those links.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
default_role = "py:obj"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autoclass_content = "class"
add_module_names = False

# The lifecycle diagram is Mermaid source drawn from the transition table (docs/_tools/lifecycle_diagram.py).
# A ```mermaid fence stays plain Markdown (GitHub draws it too); on the site sphinxcontrib-mermaid draws it.
myst_fence_as_directive = ["mermaid"]

html_theme = "furo"
html_title = f"slotengine {release}"
html_static_path: list[str] = []
