"""The demo grid (the same as ``bob facerev demo``): see bob_facerev/config/grid/demo.py."""

from bob_facerev.config.grid.demo import *  # noqa: F401,F403
