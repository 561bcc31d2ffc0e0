"""``-p facerev-arcface`` (cosine), ``-p facerev-arcface-pemiu-k{16,32,64,128}`` (PE-MIU).

ArcFace IResNet-100; weights: ``bob config set bob_facerev.arcface.checkpoint PATH``.
Weights load on the first sample, not here.
"""

from bob_facerev.pipelines import verification_pipeline

pipeline = verification_pipeline("arcface")
pipeline_pemiu_k16 = verification_pipeline("arcface", block_size=16)
pipeline_pemiu_k32 = verification_pipeline("arcface", block_size=32)
pipeline_pemiu_k64 = verification_pipeline("arcface", block_size=64)
pipeline_pemiu_k128 = verification_pipeline("arcface", block_size=128)
