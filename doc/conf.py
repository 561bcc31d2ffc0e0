"""Sphinx configuration of bob_facerev's documentation (built with ``sphinx-build -W`` in CI)."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

project = "bob_facerev"
author = "bob_facerev developers"
copyright = "2026, bob_facerev developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "sphinx_click",
]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_default_options = {
    "members": True,
    "show-inheritance": False,
    # scikit-learn's generated metadata-routing setters carry docstrings with sklearn-only labels
    "exclude-members": "set_transform_request, set_fit_request, set_score_request, "
    "set_predict_request, set_partial_fit_request",
}
# parameters documented as "array_like" etc. are prose, not cross-reference targets
nitpicky = False

# no "smart" typography: "--" in command examples (``--size``, click's option tables) must stay
# two hyphens, or pasted commands fail (tests/test_docs.py checks the built commands page)
smartquotes = False

templates_path = []
exclude_patterns = ["_build"]
html_theme = "sphinx_rtd_theme"
html_static_path = ["_static"]
