"""``-l facerev-local-gpu``: local CPU workers plus one worker per GPU advertising ``GPU=1``.

GPU-tagged steps (``facerev_gpu``: extraction, reconstruction) are routed to the GPU workers. On a
machine without a GPU one such worker still starts and computes on the CPU. Worker counts:
``bob config set bob_facerev.dask.cpu_workers N`` / ``bob_facerev.dask.gpu_workers N``.
"""

from bob_facerev.dask_clusters import local_gpu_client

dask_client = local_gpu_client()
