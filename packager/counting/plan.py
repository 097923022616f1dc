"""`langtrim count` as a library call: count a language's corpus into a token statistics file, resumably.

A count is planned (`start_count`: inputs cut into shards, see `inputs`), its shards are counted
(`counter`) here one after the other or on a Dask cluster (`dask_cluster.DaskExecutor`), and the shards' statistics are
summed into `OUT` (`finish_count`). `count_in_memory` counts the same way into memory, for `trim --corpus`. Each finished shard's statistics are written to `OUT.partial/` first;
a compressed file, which is one shard, also saves its running counts every `shard_bytes` of text. A count
that is interrupted and run again with the same arguments skips what is finished and gives identical
statistics; run with other arguments, it refuses the checkpoints rather than mix two counts.
"""

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from tokenizers import Tokenizer

from langtrim.packager.counting.counter import CountKey, count_key, count_shard, iter_shard_parts
from langtrim.packager.counting.inputs import (
    DEFAULT_SHARD_BYTES,
    DEFAULT_TEXT_COLUMN,
    MAX_LINE_CHARS,
    Shard,
    plan_shards,
)
from langtrim.packager.errors import OutputError, SelectionError
from langtrim.packager.models.tokenizer import unpadded
from langtrim.packager.outputs import check_writable_parent
from langtrim.packager.selection.stats import DEFAULT_MIN_LINE_CHARS, TokenStats
from langtrim.runtime.errors import UsageError

__all__ = [
    "DEFAULT_MIN_LINE_CHARS",
    "DEFAULT_SHARD_BYTES",
    "DEFAULT_TEXT_COLUMN",
    "CountPlan",
    "CountProgress",
    "CountSettings",
    "LocalExecutor",
    "ProgressCallback",
    "ProgressTracker",
    "ShardExecutor",
    "count_corpus",
    "count_in_memory",
    "finish_count",
    "start_count",
]
_PLAN_FORMAT = 1
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CountProgress:
    """Where a count stands; `bytes_*` are storage bytes (compressed for compressed files)."""

    bytes_done: int  # including shards finished by an earlier, interrupted run
    bytes_total: int
    lines: int  # lines read by this run (counted and skipped)
    text_bytes: int  # text bytes read by this run, decompressed
    seconds: float  # since this run started
    shards_done: int  # finished and checkpointed, including those of an earlier run
    shards_total: int
    shards_resumed: int  # shards found finished in the checkpoints when this run started

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    @property
    def megabytes_per_second(self) -> float:
        """Text throughput of this run, in MB (10^6 bytes) of decompressed text per second."""
        return self.text_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[CountProgress], None]


@dataclass(frozen=True)
class CountSettings:
    """How a corpus is counted: `langtrim count`'s --min-line-chars, --text-column and --shard-mb."""

    min_line_chars: int = DEFAULT_MIN_LINE_CHARS
    text_column: str = DEFAULT_TEXT_COLUMN
    shard_bytes: int = DEFAULT_SHARD_BYTES  # also the text a compressed file counts between two checkpoints

    def __post_init__(self) -> None:
        if self.min_line_chars < 0:
            raise UsageError(
                f"--min-line-chars {self.min_line_chars} is out of range: give 0 or more characters"
            )
        if self.shard_bytes < 1:
            raise UsageError(
                f"--shard-bytes {self.shard_bytes} is out of range: give a positive number of bytes"
            )


@dataclass(frozen=True)
class CountPlan:
    """A count ready to run: its shards, where their checkpoints go, and where the result goes."""

    tokenizer: Tokenizer  # without padding or truncation
    key: CountKey
    shard_bytes: int  # also the text a compressed file counts between two checkpoints
    shards: tuple[Shard, ...]
    inputs: tuple[str, ...]  # one description per input file, for people
    out: Path
    checkpoints: Path  # OUT.partial/

    def shard_file(self, index: int) -> Path:
        return self.checkpoints / f"shard-{index:06d}.npz"

    def running_file(self, index: int) -> Path:
        """Running counts of a compressed file's shard, saved every `shard_bytes` of its text."""
        return self.checkpoints / f"shard-{index:06d}.running.npz"

    def pending(self) -> list[tuple[int, Shard]]:
        return [
            (index, shard) for index, shard in enumerate(self.shards) if not self.shard_file(index).is_file()
        ]


class ProgressTracker:
    """Adds up what shards report and hands a `CountProgress` to the caller's callback."""

    def __init__(self, plan: CountPlan, callback: ProgressCallback | None) -> None:
        finished = [index for index in range(len(plan.shards)) if plan.shard_file(index).is_file()]
        self._callback, self._started = callback, time.perf_counter()
        self._bytes_total = sum(shard.size for shard in plan.shards)
        self._bytes_done = sum(plan.shards[index].size for index in finished)
        self._shards_total, self._shards_done = len(plan.shards), len(finished)
        self.shards_resumed = len(finished)
        self._lines = self._text_bytes = 0
        self.report()

    def advance(self, storage_bytes: int, lines: int, text_bytes: int) -> None:
        self._bytes_done += storage_bytes
        self._lines += lines
        self._text_bytes += text_bytes
        self.report()

    def shard_done(self, shard: Shard, storage_bytes_reported: int) -> None:
        """Count a finished, checkpointed shard; its storage bytes become exact (block reports estimate)."""
        self._bytes_done += shard.size - storage_bytes_reported
        self._shards_done += 1
        self.report()

    def report(self) -> None:
        if self._callback is not None:
            self._callback(
                CountProgress(
                    bytes_done=self._bytes_done,
                    bytes_total=self._bytes_total,
                    lines=self._lines,
                    text_bytes=self._text_bytes,
                    seconds=time.perf_counter() - self._started,
                    shards_done=self._shards_done,
                    shards_total=self._shards_total,
                    shards_resumed=self.shards_resumed,
                )
            )


def _open_checkpoints(directory: Path, plan_key: dict[str, Any]) -> None:
    """Create the checkpoint folder with the plan's key, or check an existing one belongs to this count."""
    plan_file = directory / "plan.json"
    if plan_file.is_file():
        try:
            saved = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SelectionError(
                f"checkpoints {str(directory)!r} are unreadable ({error}): delete the folder to start over"
            ) from None
        changed = sorted(key for key in plan_key.keys() | saved.keys() if saved.get(key) != plan_key.get(key))
        if changed == ["inputs"]:
            # The files changed (e.g. fixed after the error a count stopped on): no checkpoint of theirs can
            # be used, and none mixes into the new count.
            log.warning(
                "the corpus files changed since the checkpoints in %s were made: counting anew", directory
            )
            shutil.rmtree(directory)
            _open_checkpoints(directory, plan_key)
            return
        if changed:
            raise SelectionError(
                f"checkpoints in {str(directory)!r} belong to a count with other {', '.join(changed)}: run the "
                "interrupted command again unchanged, or delete that folder to start over"
            )
        log.info("resuming the count from the checkpoints in %s", directory)
        return
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / ".plan.json.tmp"
    temporary.write_text(json.dumps(plan_key, indent=1), encoding="utf-8")
    os.replace(temporary, plan_file)


def start_count(
    tokenizer: Tokenizer,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    language: str,
    out: str | os.PathLike[str],
    settings: CountSettings = CountSettings(),
    overwrite: bool = False,
) -> CountPlan:
    """Check the arguments, cut the inputs into shards and open (or resume) the checkpoints next to `out`."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = Path(out)
    if out.exists() and not (overwrite and out.is_file()):
        raise OutputError(f"{str(out)!r} exists: choose another --out, or delete it to count again")
    check_writable_parent(out)
    shards, files = plan_shards(inputs, shard_bytes=settings.shard_bytes, text_column=settings.text_column)
    if sum(file.size for file in files) == 0:
        raise SelectionError(
            f"the corpus for {language!r} is empty ({', '.join(file.url for file in files)}): give files with "
            "one sentence or paragraph a line"
        )
    tokenizer = unpadded(tokenizer)
    key = count_key(tokenizer, language, settings.min_line_chars, settings.text_column)
    checkpoints = Path(f"{out}.partial")
    plan_key = {
        "format": _PLAN_FORMAT,
        "tokenizer_sha256": key.tokenizer_sha256,
        "language": language,
        "min_line_chars": settings.min_line_chars,
        "shard_bytes": settings.shard_bytes,
        "text_column": settings.text_column,
        "inputs": [[file.url, file.size, file.stamp] for file in files],
    }
    _open_checkpoints(checkpoints, plan_key)
    return CountPlan(
        tokenizer=tokenizer,
        key=key,
        shard_bytes=settings.shard_bytes,
        shards=tuple(shards),
        inputs=tuple(file.describe(settings.text_column) for file in files),
        out=out,
        checkpoints=checkpoints,
    )


def finish_count(plan: CountPlan) -> TokenStats:
    """Sum the finished shards, write `plan.out` and remove the checkpoints."""
    key = plan.key
    total = TokenStats.empty(
        key.tokenizer_sha256, key.language, key.vocab_size, min_line_chars=key.min_line_chars
    )
    for index in range(len(plan.shards)):
        total = total.merge(TokenStats.load(plan.shard_file(index)))
    total = replace(total, inputs=plan.inputs)
    if total.n_lines == 0:
        shutil.rmtree(plan.checkpoints, ignore_errors=True)
        _refuse_empty(total, key.min_line_chars)
    total.save(plan.out)
    shutil.rmtree(plan.checkpoints, ignore_errors=True)
    return total


def _refuse_empty(total: TokenStats, min_line_chars: int) -> None:
    """SelectionError for statistics that counted no line, saying whether there was no text or only short lines."""
    where = ", ".join(total.inputs)
    if total.n_skipped_lines == 0:
        raise SelectionError(
            f"the corpus for {total.language!r} holds no text ({where}): give files with one "
            "sentence or paragraph a line"
        )
    raise SelectionError(
        f"no line of the corpus for {total.language!r} has from {min_line_chars} to {MAX_LINE_CHARS:,} "
        f"characters ({total.n_skipped_lines:,} shorter or longer lines read): give real text, one sentence or "
        "paragraph a line, or lower --min-line-chars"
    )


def _count_shard_resumably(plan: CountPlan, index: int, shard: Shard, tracker: ProgressTracker) -> None:
    """Count a shard into its checkpoint; a compressed file also saves its running counts as it goes."""
    running_file = plan.running_file(index)
    running = TokenStats.load(running_file) if running_file.is_file() else None
    streamed = shard.kind not in ("plain", "parquet")
    reported = 0

    def on_block(storage: int, lines: int, text_bytes: int) -> None:
        nonlocal reported
        reported += storage
        tracker.advance(storage, lines, text_bytes)

    parts = iter_shard_parts(
        plan.tokenizer,
        plan.key,
        shard,
        skip_bytes=running.n_bytes if running is not None else 0,
        part_bytes=plan.shard_bytes if streamed else None,
        on_block=on_block,
    )
    for part in parts:
        running = part if running is None else running.merge(part)
        if streamed:
            running.save(running_file)
    assert running is not None
    # Saved before the progress report, so a count stopped from the report (Ctrl-C) keeps this shard.
    replace(running, inputs=(shard.describe(),)).save(plan.shard_file(index))
    running_file.unlink(missing_ok=True)
    tracker.shard_done(shard, reported)


class ShardExecutor(Protocol):
    """Counts a plan's pending shards into their checkpoints (`plan.shard_file`), reporting to `tracker`."""

    def count(self, plan: CountPlan, pending: list[tuple[int, Shard]], tracker: ProgressTracker) -> None: ...


class LocalExecutor:
    """Counts the shards in this process, one after the other; the tokenizer uses every core."""

    def count(self, plan: CountPlan, pending: list[tuple[int, Shard]], tracker: ProgressTracker) -> None:
        for index, shard in pending:
            _count_shard_resumably(plan, index, shard, tracker)


def count_corpus(
    tokenizer: Tokenizer,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    language: str,
    out: str | os.PathLike[str],
    settings: CountSettings = CountSettings(),
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
    executor: ShardExecutor | None = None,
) -> TokenStats:
    """Count a language's corpus into token statistics, written to `out` (an `.npz` file), and return them.

    `executor` counts the shards: here one after the other (the default, `LocalExecutor`), or on a Dask
    cluster (`dask_cluster.DaskExecutor`); either way this process checkpoints each finished shard in
    `OUT.partial/` and sums them, so the result is the same to the last count and an interrupted count
    resumes with either. `progress` is
    called after every block of about 1 MB of text (with Dask, after every shard). Raises SelectionError for
    missing, unreadable, corrupt or empty inputs, OutputError when `out` exists (unless `overwrite`).
    """
    plan = start_count(tokenizer, inputs, language=language, out=out, settings=settings, overwrite=overwrite)
    executor = executor or LocalExecutor()
    tracker = ProgressTracker(plan, progress)
    pending = plan.pending()
    if tracker.shards_resumed:
        log.info(
            "%d of %d shards were counted before; counting the other %d",
            tracker.shards_resumed,
            len(plan.shards),
            len(pending),
        )
    if pending:
        executor.count(plan, pending, tracker)
    return finish_count(plan)


def count_in_memory(
    tokenizer: Tokenizer,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    language: str,
    settings: CountSettings = CountSettings(),
) -> TokenStats:
    """The statistics `count_corpus` would write, without a file or checkpoints: what `trim --corpus` counts.

    The same reader (every input kind) and the same counting, so `trim --corpus fr=x.txt` and `langtrim count`
    then `trim --corpus fr=x.npz` select the same tokens.
    """
    shards, files = plan_shards(inputs, shard_bytes=settings.shard_bytes, text_column=settings.text_column)
    tokenizer = unpadded(tokenizer)
    key = count_key(tokenizer, language, settings.min_line_chars, settings.text_column)
    total = TokenStats.empty(
        key.tokenizer_sha256, language, key.vocab_size, min_line_chars=key.min_line_chars
    )
    for shard in shards:
        total = total.merge(count_shard(tokenizer, key, shard))
    total = replace(total, inputs=tuple(file.describe(settings.text_column) for file in files))
    if total.n_lines == 0:
        _refuse_empty(total, key.min_line_chars)
    return total
