"""``-l facerev-sge-gpu``: an SGE cluster (dask-jobqueue) with CPU workers and GPU workers.

Loading this resource starts the scheduler here and submits the worker jobs (``qsub``), as Bob's
own cluster configs do. GPU jobs go to the GPU queue with ``-l gpu=1`` and their worker advertises
``GPU=1``. Settings (Bob config keys): ``bob_facerev.sge.project`` (else ``sge.project``),
``bob_facerev.sge.cpu_queue`` (``all.q``), ``bob_facerev.sge.gpu_queue`` (``gpu.q``),
``bob_facerev.sge.gpu_resource_spec`` (``gpu=1``), and the ``bob_facerev.dask.*`` keys of
``facerev-slurm-gpu``. See doc/dask.rst.
"""

from bob_facerev.dask_clusters import sge_gpu_client

dask_client = sge_gpu_client()
