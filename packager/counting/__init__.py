"""Token statistics of corpora of any size: read every input kind (`inputs`), cut shards, count them fast
(`counter`, `encode`, `words`), checkpoint and resume (`plan`), here or on Dask (`dask_cluster`).

`job` is `langtrim count` and the counting behind `trim --corpus`.
"""
