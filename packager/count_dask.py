"""Count token statistics on a Dask cluster: one task per shard, merged (and checkpointed) by the client.

The shards, checkpoints and result are those of `count.py`, so a Dask count equals a single-process count
exactly (integer sums), and an interrupted Dask count resumes with either. Workers need the same langtrim
and `tokenizers` versions as the client, and must reach the input paths or URLs (shared storage or object
storage through fsspec). The tokenizer travels once to each worker as its JSON string and is built there
once. Dask is imported here only: install the `langtrim[distributed]` extra.
"""

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import tokenizers
from tokenizers import Tokenizer

from langtrim.packager.count import (
    DEFAULT_MIN_LINE_CHARS,
    DEFAULT_SHARD_BYTES,
    DEFAULT_TEXT_COLUMN,
    ProgressCallback,
    ProgressTracker,
    Shard,
    count_shard,
    finish_count,
    start_count,
)
from langtrim.packager.token_stats import TokenStats
from langtrim.runtime.errors import SelectionError, UsageError

log = logging.getLogger(__name__)
_WORKER_TOKENIZERS: dict[str, Tokenizer] = {}  # per worker process: sha256 -> tokenizer built from JSON


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageError(
            "counting on Dask needs dask.distributed: pip install 'langtrim[distributed]'"
        ) from None
    return distributed


def parse_scheduler(value: str) -> tuple[str | None, int | None]:
    """`local`, `local:N` -> (None, workers); anything else is a scheduler address -> (address, None)."""
    if value == "local" or value.startswith("local:"):
        workers = value.partition(":")[2]
        if not workers:
            return None, os.cpu_count() or 1
        if not workers.isdigit() or int(workers) < 1:
            raise UsageError(
                f"--dask {value!r}: write local:N with N a positive number of workers, e.g. local:4"
            )
        return None, int(workers)
    if not value.strip():
        raise UsageError("--dask-scheduler is empty: give an address such as tcp://10.0.0.5:8786")
    return value.strip(), None


@contextmanager
def dask_client(scheduler: str) -> Iterator[Any]:
    """A client of the scheduler at an address, or of a local cluster (`local[:N]`) closed on exit.

    A local cluster runs N single-threaded worker processes on 127.0.0.1 without a dashboard; each worker's
    tokenizer uses cores / N threads so the workers do not compete for the same cores.
    """
    distributed = _import_distributed()
    address, workers = parse_scheduler(scheduler)
    if address is not None:
        try:
            client = distributed.Client(address, timeout="20s")
        except (OSError, TimeoutError) as error:
            raise UsageError(
                f"cannot reach the Dask scheduler at {address!r} ({error}): start one with `dask scheduler` "
                "and workers with `dask worker ADDRESS`, or count on this machine with --dask local:N"
            ) from None
        with client:
            yield client
        return
    assert workers is not None
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env={"RAYON_NUM_THREADS": threads},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _count_on_worker(
    tokenizer_json: str,
    tokenizer_sha: str,
    tokenizers_version: str,
    shard: Shard,
    language: str,
    min_line_chars: int,
    text_column: str,
) -> TokenStats:
    if tokenizers.__version__ != tokenizers_version:
        raise SelectionError(
            f"a Dask worker has tokenizers {tokenizers.__version__}, the client {tokenizers_version}: install the "
            "same versions on every worker (one container image for all)"
        )
    tokenizer = _WORKER_TOKENIZERS.get(tokenizer_sha)
    if tokenizer is None:
        tokenizer = _WORKER_TOKENIZERS[tokenizer_sha] = Tokenizer.from_str(tokenizer_json)
    return count_shard(
        tokenizer,
        shard,
        tokenizer_sha=tokenizer_sha,
        language=language,
        min_line_chars=min_line_chars,
        text_column=text_column,
    )


def count_corpus_dask(
    tokenizer: Tokenizer,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    language: str,
    out: str | os.PathLike[str],
    scheduler: str,
    min_line_chars: int = DEFAULT_MIN_LINE_CHARS,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    text_column: str = DEFAULT_TEXT_COLUMN,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> TokenStats:
    """`count_corpus` with every shard counted on a Dask worker; `scheduler` is an address or `local[:N]`.

    The client checkpoints each finished shard in `OUT.partial/`, so an interrupted count resumes (with
    Dask or without). `progress` is called once per finished shard.
    """
    plan = start_count(
        tokenizer,
        inputs,
        language=language,
        out=out,
        min_line_chars=min_line_chars,
        shard_bytes=shard_bytes,
        text_column=text_column,
        overwrite=overwrite,
    )
    tracker = ProgressTracker(plan, progress)
    pending = plan.pending()
    if pending:
        distributed = _import_distributed()
        with dask_client(scheduler) as client:
            tokenizer_json = client.scatter(plan.tokenizer.to_str(), broadcast=True)
            futures = {
                client.submit(
                    _count_on_worker,
                    tokenizer_json,
                    plan.tokenizer_sha256,
                    tokenizers.__version__,
                    shard,
                    plan.language,
                    plan.min_line_chars,
                    plan.text_column,
                    key=f"langtrim-count-{plan.tokenizer_sha256[:12]}-{index}-{os.getpid()}",
                    pure=False,
                ): (index, shard)
                for index, shard in pending
            }
            try:
                for future in distributed.as_completed(futures):
                    index, shard = futures[future]
                    stats = future.result()
                    future.release()
                    stats.save(plan.shard_file(index))
                    tracker.advance(0, stats.n_lines + stats.n_skipped_lines, stats.n_bytes)
                    tracker.shard_done(shard, 0)
            finally:
                client.cancel(list(futures))
    return finish_count(plan)
