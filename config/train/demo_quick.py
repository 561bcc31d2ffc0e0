"""Example: the packaged quick CPU demo ``demo`` (3 epochs on the 10 bundled faces)::

    bob facerev train -vv config/train/demo_quick.py     # the same as: bob facerev train demo
    bob facerev train -vv config/train/demo_quick.py --epochs 6 --resume   # continue
"""

from bob_facerev.config.train.demo import *  # noqa: F401,F403

output = "results/demo/generator_dlib"
