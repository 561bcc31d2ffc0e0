"""``-l facerev-local``: local worker processes, one per core, one thread each (the default).

Same as Bob's ``local-parallel``; GPU steps run on any worker (no GPU routing).
"""

from bob_facerev.dask_clusters import local_client

dask_client = local_client()
