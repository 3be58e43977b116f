"""Sphinx configuration: the Markdown pages as they are, and the API from the docstrings."""

import sklrec

project = "sklrec"
release = version = sklrec.__version__
extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
# one page per public name, from the tables of api.rst
autosummary_generate = True
# each class page lists its methods through numpydoc's autosummary table
numpydoc_show_class_members = True
numpydoc_class_members_toctree = False
numpydoc_show_inherited_class_members = True
myst_heading_anchors = 3
html_theme = "alabaster"
