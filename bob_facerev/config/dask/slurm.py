"""``-l facerev-slurm-gpu``: a SLURM cluster (dask-jobqueue) with CPU workers and GPU workers.

Loading this resource starts the scheduler here and submits the worker jobs (``sbatch``), as
Bob's own cluster configs do. GPU jobs request ``--gres=gpu:1`` on the GPU partition and their
worker advertises ``GPU=1``. Settings (Bob config keys, ``bob config set KEY VALUE``):
``bob_facerev.slurm.account`` (else ``slurm.account``), ``bob_facerev.slurm.cpu_partition``,
``bob_facerev.slurm.gpu_partition`` (``gpu``), ``bob_facerev.slurm.gres`` (``gpu:1``),
``bob_facerev.dask.cpu_workers`` (8), ``bob_facerev.dask.gpu_workers`` (1),
``bob_facerev.dask.cpu_memory`` (8GB), ``bob_facerev.dask.gpu_memory`` (32GB),
``bob_facerev.dask.walltime`` (08:00:00), ``bob_facerev.dask.log_directory`` (./logs). See
doc/dask.rst (the old ``facerev.*`` keys are still read, with a warning).
"""

from bob_facerev.dask_clusters import slurm_gpu_client

dask_client = slurm_gpu_client()
