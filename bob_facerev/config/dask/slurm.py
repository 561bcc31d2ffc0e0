"""``-l facerev-slurm-gpu``: a SLURM cluster (dask-jobqueue) with CPU workers and GPU workers.

Loading this resource starts the scheduler here and submits the worker jobs (``sbatch``), as
Bob's own cluster configs do. GPU jobs request ``--gres=gpu:1`` on the GPU partition and their
worker advertises ``GPU=1``. Settings (Bob config keys, ``bob config set KEY VALUE``):
``facerev.slurm.account`` (else ``slurm.account``), ``facerev.slurm.cpu_partition``,
``facerev.slurm.gpu_partition`` (``gpu``), ``facerev.slurm.gres`` (``gpu:1``),
``facerev.dask.cpu_workers`` (8), ``facerev.dask.gpu_workers`` (1), ``facerev.dask.cpu_memory``
(8GB), ``facerev.dask.gpu_memory`` (32GB), ``facerev.dask.walltime`` (08:00:00),
``facerev.dask.log_directory`` (./logs). See doc/dask.rst.
"""

from bob_facerev.dask_clusters import slurm_gpu_client

dask_client = slurm_gpu_client()
