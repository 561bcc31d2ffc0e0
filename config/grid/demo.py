"""Example: the demo grid (``bob facerev grid demo``, the same as ``bob facerev demo``) into
another folder::

    bob facerev grid config/grid/demo.py
"""

from bob_facerev.config.grid.demo import *  # noqa: F401,F403

output = "results/demo"
