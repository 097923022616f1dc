"""Count token statistics on a Dask cluster: one task per shard, merged (and checkpointed) by the client.

`DaskExecutor` counts the shards, checkpoints and result of `plan.py`'s `count_corpus`, so a Dask count equals a single-process count
exactly (integer sums), and an interrupted Dask count resumes with either. Workers need the same langtrim
and `tokenizers` versions as the client (checked before counting), and must reach the input paths or URLs
(shared storage, or object storage through fsspec); only the client writes, next to `--out`. The tokenizer
travels to each worker as its JSON string and is built there once. Dask is imported here only: install the
`langtrim[distributed]` extra.
"""

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tokenizers
from tokenizers import Tokenizer

from langtrim.packager.counting.counter import CountKey, count_shard
from langtrim.packager.counting.inputs import Shard
from langtrim.packager.counting.plan import CountPlan, ProgressTracker
from langtrim.packager.errors import SelectionError
from langtrim.packager.models.tokenizer import unpadded
from langtrim.packager.selection.stats import TokenStats, tokenizer_sha256
from langtrim.runtime import __version__
from langtrim.runtime.errors import LangtrimError, UsageError

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
def dask_client(scheduler: str, *, timeout: float = 20.0) -> Iterator[Any]:
    """A client of the scheduler at an address, or of a local cluster (`local[:N]`) closed on exit.

    A local cluster runs N single-threaded worker processes on 127.0.0.1 without a dashboard; each worker's
    tokenizer uses cores / N threads so the workers do not compete for the same cores. `timeout` is how long
    to try to reach a scheduler, in seconds.
    """
    distributed = _import_distributed()
    address, workers = parse_scheduler(scheduler)
    if address is not None:
        try:
            client = distributed.Client(address, timeout=f"{timeout}s")
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


def _versions() -> dict[str, str]:
    return {"langtrim": __version__, "tokenizers": tokenizers.__version__}


def _worker_tokenizer(tokenizer_json: str, tokenizer_sha: str, versions: dict[str, str]) -> Tokenizer:
    """This worker's tokenizer, built once from its JSON; refuses versions that could count differently."""
    if _versions() != versions:
        raise SelectionError(
            f"a Dask worker runs {_versions()}, the client {versions}: install the same langtrim and tokenizers "
            "on every worker (one container image for all)"
        )
    tokenizer = _WORKER_TOKENIZERS.get(tokenizer_sha)
    if tokenizer is None:
        tokenizer = _WORKER_TOKENIZERS[tokenizer_sha] = Tokenizer.from_str(tokenizer_json)
    return tokenizer


def _prepare_worker(tokenizer_json: str, tokenizer_sha: str, versions: dict[str, str]) -> bool:
    _worker_tokenizer(tokenizer_json, tokenizer_sha, versions)
    return True


def prepare_workers(client: Any, tokenizer: Tokenizer, *, wait_seconds: float = 60.0) -> int:
    """Check that every worker can count (same langtrim and tokenizers) and build the tokenizer there now.

    Fails fast, with the fix named, instead of on the first shard; waits up to `wait_seconds` for a first
    worker (an adaptive cluster may start with none). Returns the number of workers.
    """
    try:
        client.wait_for_workers(1, timeout=wait_seconds)
    except (TimeoutError, OSError):
        raise UsageError(
            f"the Dask cluster has no worker after {wait_seconds:g} s: start workers with `dask worker ADDRESS`"
        ) from None
    tokenizer = unpadded(tokenizer)
    sha = tokenizer_sha256(tokenizer)
    try:
        ready = client.run(_prepare_worker, tokenizer.to_str(), sha, _versions())
    except LangtrimError:
        raise
    except Exception as error:  # a worker without langtrim fails to unpickle the function, etc.
        raise UsageError(
            f"a Dask worker cannot run langtrim's counting ({type(error).__name__}: {error}): install "
            f"langtrim[distributed] {__version__} on every worker"
        ) from None
    return len(ready)


def _count_on_worker(
    tokenizer_json: str, versions: dict[str, str], key: CountKey, shard: Shard
) -> TokenStats:
    tokenizer = _worker_tokenizer(tokenizer_json, key.tokenizer_sha256, versions)
    return count_shard(tokenizer, key, shard)


class DaskExecutor:
    """Counts a plan's shards as tasks on the workers of a Dask `client` (see `dask_client`), one per shard.

    Pass it to `count_corpus(..., executor=DaskExecutor(client))`. This process keeps planning, checkpointing
    and summing, so the result equals a single-process count exactly; progress comes once per finished shard.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def count(self, plan: CountPlan, pending: list[tuple[int, Shard]], tracker: ProgressTracker) -> None:
        client, distributed = self.client, _import_distributed()
        prepare_workers(client, plan.tokenizer)
        tokenizer_json = client.scatter(plan.tokenizer.to_str(), broadcast=True)
        run = uuid.uuid4().hex[:12]  # task keys unique to this count, even on a shared scheduler
        futures = {
            client.submit(
                _count_on_worker,
                tokenizer_json,
                _versions(),
                plan.key,
                shard,
                key=f"langtrim-count-{plan.key.language}-{index}-{run}",
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
