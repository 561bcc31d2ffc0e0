"""``bob facerev train demo``: a quick CPU demo, a dlib generator trained on the 10 demo faces.

Builds the training set (dlib crops + 128-d embeddings) once, then trains 3 epochs (a few
seconds each on a laptop CPU) with the dlib network as the identity loss. The faces it makes are
blurry averages: 10 faces are far too few; the point is to see every part run::

    bob facerev train -vv demo
    bob facerev train -vv demo --epochs 6 --resume   # continue
"""

database = "facerev-demo"
model = "dlib"
training_set = "results/demo/train_dlib.npz"
output = "results/demo/generator_dlib"
quick = True
batch_size = 4
validation_fraction = 0.2
device = "cpu"
