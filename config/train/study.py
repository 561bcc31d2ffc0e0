"""The study's generator: Shahreza et al.'s network trained on FFHQ with ArcFace embeddings.

The recipe of Osorio-Roig et al. (WIFS 2023): unprotected FFHQ embeddings, 100 epochs, batch 32,
Adam 1e-3, StepLR(10, 0.5), loss MSE + 0.1 (1 - SSIM)/2 + 0.005 ID with ArcFace itself
(white-box), FFHQ's seeded 90/10 split. Needs FFHQ and the ArcFace weights configured::

    bob config set bob_facerev.ffhq.directory /path/to/ffhq/images1024x1024
    bob facerev db build ffhq /path/to/ffhq/images1024x1024
    bob config set bob_facerev.arcface.checkpoint /path/to/arcface_r100.pth
    bob facerev train -vv config/train/study.py

The training set (crops + embeddings of the 70,000 faces) is built once into ``training_set``;
re-running with ``--resume`` continues an interrupted training. Other extractors or protections
override options: ``-m elasticface -t results/train/ffhq_elasticface.npz -o ...``.
"""

database = "facerev-ffhq"
model = "arcface"
training_set = "results/train/ffhq_arcface.npz"
output = "results/train/arcface"

protection = "none"
epochs = 100
batch_size = 32
lr = 1e-3
lr_step = 10
lr_gamma = 0.5
w_ssim = 0.1
w_id = 0.005
id_loss = "study"  # the study's embedding MSE (not the scale-free "cosine")
split_seed = 2021
seed = 0
amp = False
workers = 4
