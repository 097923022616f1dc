"""Count token statistics over a corpus of any size: streamed, sharded, checkpointed.

Inputs are text files (plain, `.gz`, `.bz2`, `.xz`, `.zst`), Parquet files (`.parquet`, `.pq`) with a text
column, and directories of them (every file below, sorted, except names starting with "." or "_" such as
Spark's `_SUCCESS`). Paths may be fsspec URLs (`file://`, `memory://`, `s3://` with s3fs installed...).

Lines are split on "\\n"; a "\\r" before it is dropped (CRLF files count like LF files). A Parquet value is
split into lines the same way, so a column of whole articles counts their paragraphs, like a text dump.
A line counts when it has at least `min_line_chars` characters after stripping surrounding whitespace;
shorter lines are read and skipped. The default, 5, is the paper's: its notebook keeps `len(line) > 5` with
`line` still ending in its newline, that is lines of 5 characters or more.

Work is cut into shards: byte ranges of `shard_bytes` of a plain file (a range owns the lines that *start*
inside it, so lines straddling a boundary are counted once), a whole compressed file (a stream cannot be
entered in the middle), or consecutive row groups of a Parquet file. Each finished shard's statistics are
written to `OUT.partial/`; a compressed file also saves its running counts every `shard_bytes` of text. An
interrupted count run again with the same arguments skips what is finished and gives identical statistics.
Each batch of about 1 MB of text goes through the fast tokenizer's batch encoder and numpy counts, for
every token, the lines it occurs in; memory stays flat in the corpus size.
"""

import bz2
import gzip
import io
import json
import logging
import lzma
import os
import shutil
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import IO, Any

import fsspec
import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.token_stats import TokenStats, tokenizer_sha256
from langtrim.packager.tokenizer_remap import unpadded
from langtrim.runtime.errors import OutputError, SelectionError

DEFAULT_MIN_LINE_CHARS = 5
DEFAULT_SHARD_BYTES = 64 * 1024 * 1024
DEFAULT_TEXT_COLUMN = "text"
_BLOCK_BYTES = 1024 * 1024  # text per encode_batch call: large enough to keep every core busy
_PARQUET_ROWS = 64  # rows per Parquet record batch; lines then gather into blocks of _BLOCK_BYTES
_CODECS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_PLAN_FORMAT = 1
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """One unit of work: a byte range of a plain file, a compressed file, or row groups of a Parquet file."""

    url: str  # local path or fsspec URL
    kind: str  # "plain", "gzip", "bz2", "xz", "zstd" or "parquet"
    start: int  # plain: first byte of the range; parquet: first row group; else 0
    stop: int  # plain: end of the range (lines starting before it are this shard's); parquet: last row group + 1
    size: int  # bytes this shard reads from storage (compressed size for compressed files): progress unit

    def describe(self) -> str:
        if self.kind == "plain":
            return f"{self.url} bytes {self.start}-{self.stop}"
        if self.kind == "parquet":
            return f"{self.url} row groups {self.start}-{self.stop - 1}"
        return self.url


@dataclass(frozen=True)
class CountProgress:
    """Where a count stands; `bytes_*` are storage bytes (compressed for compressed files)."""

    bytes_done: int  # including shards finished by an earlier, interrupted run
    bytes_total: int
    lines: int  # lines read by this run (counted and skipped)
    text_bytes: int  # text bytes read by this run, decompressed
    seconds: float  # since this run started
    shards_done: int
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
class CountPlan:
    """A count ready to run: its shards, which are finished, and where results go."""

    tokenizer: Tokenizer  # without padding or truncation
    tokenizer_sha256: str
    language: str
    min_line_chars: int
    text_column: str
    shard_bytes: int  # also the text a compressed file counts between two checkpoints
    shards: tuple[Shard, ...]
    inputs: tuple[str, ...]  # one description per input file
    out: Path
    checkpoints: Path  # OUT.partial/

    def shard_file(self, index: int) -> Path:
        return self.checkpoints / f"shard-{index:06d}.npz"

    def pending(self) -> list[tuple[int, Shard]]:
        return [
            (index, shard) for index, shard in enumerate(self.shards) if not self.shard_file(index).is_file()
        ]


# --- inputs and shards -------------------------------------------------------------------------------------


def _kind(url: str) -> str:
    name = url.rsplit("/", 1)[-1].lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return next((codec for suffix, codec in _CODECS.items() if name.endswith(suffix)), "plain")


def _list_files(value: str) -> list[tuple[str, dict[str, Any]]]:
    """(url, fsspec info) of each file an input names: itself, or the files below a directory, sorted."""
    fs, path = fsspec.core.url_to_fs(value)
    local = isinstance(fs, fsspec.implementations.local.LocalFileSystem)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise SelectionError(
            f"corpus input {value!r} does not exist: check the path given to --corpus"
        ) from None
    if info["type"] != "directory":
        return [(value, info)]
    root = path.rstrip("/")
    found = []
    for name, member in sorted(fs.find(path, detail=True).items()):
        relative = name[len(root) :].lstrip("/")
        if member["type"] == "file" and not any(part[:1] in (".", "_") for part in relative.split("/")):
            found.append((name if local else fs.unstrip_protocol(name), member))
    if not found:
        raise SelectionError(
            f"corpus directory {value!r} holds no files: give text, compressed text or Parquet files"
        )
    return found


def _stamp(info: dict[str, Any]) -> str:
    """What tells a changed file from the one a checkpoint counted, besides its size."""
    return str(next((info[key] for key in ("mtime", "LastModified", "ETag", "created") if key in info), ""))


def _parquet_shards(url: str, shard_bytes: int, text_column: str) -> list[Shard]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with fsspec.open(url, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            metadata, schema = parquet.metadata, parquet.schema_arrow
    except (pa.ArrowException, OSError) as error:
        raise SelectionError(
            f"corpus file {url!r} is not a readable Parquet file ({error}): check the file"
        ) from None
    if text_column not in schema.names:
        raise SelectionError(
            f"Parquet file {url!r} has no column {text_column!r} (it has {', '.join(schema.names)}): "
            "name the text column with --text-column"
        )
    field_type = schema.field(text_column).type
    if not (pa.types.is_string(field_type) or pa.types.is_large_string(field_type)):
        raise SelectionError(
            f"column {text_column!r} of Parquet file {url!r} holds {field_type}, not text: name the text column "
            "with --text-column"
        )
    sizes = []
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        chunks = (row_group.column(i) for i in range(row_group.num_columns))
        sizes.append(sum(c.total_compressed_size for c in chunks if c.path_in_schema == text_column))
    shards, first = [], 0
    for group in range(len(sizes)):
        if sum(sizes[first : group + 1]) >= shard_bytes or group == len(sizes) - 1:
            shards.append(Shard(url, "parquet", first, group + 1, sum(sizes[first : group + 1])))
            first = group + 1
    return shards


def plan_shards(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    text_column: str = DEFAULT_TEXT_COLUMN,
) -> tuple[list[Shard], list[tuple[str, int, str]]]:
    """The shards of the inputs, in a fixed order, and each input file's (url, size, change stamp)."""
    if shard_bytes < 1:
        raise SelectionError(f"shard size {shard_bytes} is out of range: give a positive number of bytes")
    if not inputs:
        raise SelectionError("no corpus given: pass at least one file or directory")
    shards: list[Shard] = []
    files: list[tuple[str, int, str]] = []
    for value in inputs:
        for url, info in _list_files(os.fspath(value)):
            size, kind = int(info.get("size") or 0), _kind(url)
            files.append((url, size, _stamp(info)))
            if kind == "parquet":
                shards += _parquet_shards(url, shard_bytes, text_column)
            elif kind != "plain":
                shards.append(Shard(url, kind, 0, size, size))
            else:
                shards += [
                    Shard(url, "plain", start, min(start + shard_bytes, size), min(shard_bytes, size - start))
                    for start in range(0, size, shard_bytes)
                ]
    return shards, files


# --- reading -----------------------------------------------------------------------------------------------


class _ZstdReader(io.RawIOBase):
    """A .zst stream (one or more frames) that raises EOFError when the file ends inside a frame.

    zstandard's own `stream_reader` returns a truncated file's data without a word; a count from a cut
    download must fail instead.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._raw, self._decompressor = raw, zstandard.ZstdDecompressor()
        self._frame = self._decompressor.decompressobj()
        self._in_frame = False
        self._pending, self._offset = memoryview(b""), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import zstandard

        while self._offset >= len(self._pending):
            data = self._raw.read(64 * 1024)
            if not data:
                if self._in_frame:
                    raise EOFError("compressed file ended before the end of its last zstd frame")
                return 0
            pieces = []
            while data:
                if self._frame.eof:
                    self._frame = self._decompressor.decompressobj()
                self._in_frame = True
                try:
                    pieces.append(self._frame.decompress(data))
                except zstandard.ZstdError as error:
                    raise OSError(str(error)) from None
                data = self._frame.unused_data if self._frame.eof else b""
                self._in_frame = not self._frame.eof
            self._pending, self._offset = memoryview(b"".join(pieces)), 0
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        return n


def _decompressed(kind: str, raw: IO[bytes]) -> IO[bytes]:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(raw)
    if kind == "xz":
        return lzma.LZMAFile(raw)
    return io.BufferedReader(_ZstdReader(raw), buffer_size=_BLOCK_BYTES)


def _range_blocks(raw: IO[bytes], start: int, stop: int) -> Iterator[bytes]:
    """Blocks of whole lines: those that start in [start, stop) of a plain file."""
    position = 0
    if start > 0:
        raw.seek(start - 1)  # a line starts at `start` exactly when the byte before it ends one
        position = start - 1 + len(raw.readline())
    while position < stop:
        block = raw.read(min(_BLOCK_BYTES, stop - position))
        if not block:
            return
        if not block.endswith(b"\n"):
            block += raw.readline()  # the last line started inside the range: it is ours to its end
        position += len(block)
        yield block


def _stream_blocks(stream: IO[bytes], skip: int) -> Iterator[bytes]:
    """Blocks of whole lines of a decompressed stream, after its first `skip` bytes (a line boundary)."""
    while skip > 0:
        skipped = len(stream.read(min(skip, _BLOCK_BYTES)))
        if not skipped:
            raise EOFError(f"the stream ended before byte {skip} where the checkpoint stopped")
        skip -= skipped
    while block := stream.read(_BLOCK_BYTES):
        if not block.endswith(b"\n"):
            block += stream.readline()
        yield block


def _text_blocks(shard: Shard, text_column: str, skip: int) -> Iterator[tuple[str, int, int]]:
    """(text of whole lines, its UTF-8 bytes, storage bytes read since the previous block) of a shard."""
    if shard.kind == "parquet":
        yield from _parquet_blocks(shard, text_column)
        return
    with fsspec.open(shard.url, "rb") as raw:
        try:
            if shard.kind == "plain":
                blocks, where, offset = _range_blocks(raw, shard.start, shard.stop), "", shard.start
            else:
                stream = _decompressed(shard.kind, raw)
                blocks, where, offset = _stream_blocks(stream, skip), " of its decompressed text", skip
            read = 0
            for block in blocks:
                try:
                    text = block.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise SelectionError(
                        f"corpus file {shard.url!r} is not UTF-8 text (byte {offset + error.start}{where}): "
                        "convert it with e.g. `iconv -t UTF-8`"
                    ) from None
                offset += len(block)
                if shard.kind == "plain":
                    yield text, len(block), len(block)
                else:  # the compressed bytes consumed so far (decompressors read ahead: an estimate)
                    advance, read = raw.tell() - read, raw.tell()
                    yield text, len(block), advance
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as error:
            raise SelectionError(
                f"corpus file {shard.url!r} cannot be read as {shard.kind} ({error}): it is truncated or corrupt; "
                "download or compress it again"
            ) from None


def _parquet_blocks(shard: Shard, text_column: str) -> Iterator[tuple[str, int, int]]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with fsspec.open(shard.url, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
            groups = range(shard.start, shard.stop)
            total_rows = sum(parquet.metadata.row_group(group).num_rows for group in groups) or 1
            rows = reported = text_bytes = 0
            values: list[str] = []
            for batch in parquet.iter_batches(
                batch_size=_PARQUET_ROWS, row_groups=groups, columns=[text_column]
            ):
                column = batch.column(0)
                values += [value for value in column.to_pylist() if value is not None]
                text_bytes += pc.sum(pc.binary_length(column)).as_py() or 0
                rows += batch.num_rows
                if text_bytes >= _BLOCK_BYTES or rows == total_rows:
                    storage = shard.size * rows // total_rows
                    yield "\n".join(values), text_bytes, storage - reported
                    values, text_bytes, reported = [], 0, storage
            if values:
                yield "\n".join(values), text_bytes, shard.size - reported
        except (pa.ArrowException, OSError) as error:
            raise SelectionError(
                f"Parquet file {shard.url!r} cannot be read ({error}): check the file"
            ) from None


# --- counting ----------------------------------------------------------------------------------------------


class _Counter:
    """Running counts of one part of a corpus: per token, the lines it occurs in and its occurrences."""

    def __init__(self, tokenizer: Tokenizer, vocab_size: int, min_line_chars: int) -> None:
        self._encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # same ids, no offsets
        self._vocab_size, self._min_line_chars = vocab_size, min_line_chars
        # (line, token) pairs are keyed line * vocab_size + id; int32 keys sort about twice as fast.
        self._key_type = np.int32 if vocab_size < 2**30 else np.int64
        self._lines_per_key_chunk = max(1, (np.iinfo(self._key_type).max - vocab_size) // vocab_size)
        self.line_counts = np.zeros(vocab_size, dtype=np.int64)
        self.occurrences = np.zeros(vocab_size, dtype=np.int64)
        self.n_lines = self.n_skipped_lines = self.n_bytes = 0

    def add(self, text: str, n_bytes: int) -> int:
        """Count the lines of `text` (whole lines); returns the number of lines read."""
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        minimum = self._min_line_chars
        kept = [line for line in lines if len(line.strip()) >= minimum] if minimum > 0 else lines
        self.n_lines += len(kept)
        self.n_skipped_lines += len(lines) - len(kept)
        self.n_bytes += n_bytes
        if kept:
            self._count(kept)
        return len(lines)

    def _count(self, lines: list[str]) -> None:
        id_lists = [encoding.ids for encoding in self._encode(lines, add_special_tokens=False)]
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=self._key_type, count=int(lengths.sum()))
        self.occurrences += np.bincount(ids, minlength=self._vocab_size)
        first_token = 0
        for first_line in range(0, len(lines), self._lines_per_key_chunk):
            chunk_lengths = lengths[first_line : first_line + self._lines_per_key_chunk]
            n_tokens = int(chunk_lengths.sum())
            line_index = np.arange(len(chunk_lengths), dtype=self._key_type)
            keys = np.repeat(line_index * self._vocab_size, chunk_lengths)
            keys += ids[first_token : first_token + n_tokens]
            first_token += n_tokens
            # One key per occurrence; after sorting, the first of equal keys marks a (line, token) pair.
            keys.sort()
            first = np.empty(len(keys), dtype=bool)
            first[:1] = True
            np.not_equal(keys[1:], keys[:-1], out=first[1:])
            self.line_counts += np.bincount(keys[first] % self._vocab_size, minlength=self._vocab_size)

    def stats(self, plan_sha: str, language: str, inputs: tuple[str, ...]) -> TokenStats:
        return TokenStats(
            tokenizer_sha256=plan_sha,
            language=language,
            n_lines=self.n_lines,
            line_counts=self.line_counts,
            occurrences=self.occurrences,
            min_line_chars=self._min_line_chars,
            inputs=inputs,
            n_skipped_lines=self.n_skipped_lines,
            n_bytes=self.n_bytes,
        )


def iter_shard_parts(
    tokenizer: Tokenizer,
    shard: Shard,
    *,
    tokenizer_sha: str,
    language: str,
    min_line_chars: int,
    text_column: str = DEFAULT_TEXT_COLUMN,
    skip_bytes: int = 0,
    part_bytes: int | None = None,
    on_block: Callable[[int, int, int], None] | None = None,
) -> Iterator[TokenStats]:
    """Statistics of a shard, in parts of about `part_bytes` of text (the whole shard when None).

    `skip_bytes` (compressed files) starts after that much decompressed text, where an earlier part ended.
    `on_block(storage_bytes, lines, text_bytes)` is called after each block with what it read.
    `tokenizer` must not pad or truncate (see `unpadded`).
    """
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    counter = _Counter(tokenizer, vocab_size, min_line_chars)
    for text, n_bytes, storage in _text_blocks(shard, text_column, skip_bytes):
        lines = counter.add(text, n_bytes)
        if on_block is not None:
            on_block(storage, lines, n_bytes)
        if part_bytes is not None and counter.n_bytes >= part_bytes:
            yield counter.stats(tokenizer_sha, language, (shard.describe(),))
            counter = _Counter(tokenizer, vocab_size, min_line_chars)
    yield counter.stats(tokenizer_sha, language, (shard.describe(),))


def count_shard(
    tokenizer: Tokenizer,
    shard: Shard,
    *,
    tokenizer_sha: str,
    language: str,
    min_line_chars: int,
    text_column: str,
) -> TokenStats:
    """Statistics of one whole shard (what a Dask worker runs). `tokenizer` must not pad or truncate."""
    (stats,) = iter_shard_parts(
        tokenizer,
        shard,
        tokenizer_sha=tokenizer_sha,
        language=language,
        min_line_chars=min_line_chars,
        text_column=text_column,
    )
    return stats


# --- a count's life: plan, progress, checkpoints, result ---------------------------------------------------


class ProgressTracker:
    """Adds up what shards report and hands a `CountProgress` to the caller's callback."""

    def __init__(self, plan: CountPlan, callback: ProgressCallback | None) -> None:
        finished = [index for index, _ in enumerate(plan.shards) if plan.shard_file(index).is_file()]
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
        """Count a finished shard; its storage bytes are made exact (block reports are estimates)."""
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
    plan_file = directory / "plan.json"
    if plan_file.is_file():
        try:
            saved = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SelectionError(
                f"checkpoints {str(directory)!r} are unreadable ({error}): delete the folder"
            ) from None
        changed = sorted(key for key in plan_key.keys() | saved.keys() if saved.get(key) != plan_key.get(key))
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
    min_line_chars: int = DEFAULT_MIN_LINE_CHARS,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    text_column: str = DEFAULT_TEXT_COLUMN,
    overwrite: bool = False,
) -> CountPlan:
    """Check the arguments, cut the inputs into shards and open (or resume) the checkpoints next to `out`."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if min_line_chars < 0:
        raise SelectionError(f"--min-line-chars {min_line_chars} is out of range: give 0 or more characters")
    out = Path(out)
    if out.exists() and not (overwrite and out.is_file()):
        raise OutputError(f"{str(out)!r} exists: choose another --out, or delete it to count again")
    shards, files = plan_shards(inputs, shard_bytes=shard_bytes, text_column=text_column)
    if sum(size for _, size, _ in files) == 0:
        raise SelectionError(
            f"the corpus for {language!r} is empty ({', '.join(url for url, _, _ in files)}): give files with one "
            "sentence or paragraph a line"
        )
    tokenizer = unpadded(tokenizer)
    sha = tokenizer_sha256(tokenizer)
    checkpoints = Path(f"{out}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    plan_key = {
        "format": _PLAN_FORMAT,
        "tokenizer_sha256": sha,
        "language": language,
        "min_line_chars": min_line_chars,
        "shard_bytes": shard_bytes,
        "text_column": text_column,
        "inputs": [list(file) for file in files],
    }
    _open_checkpoints(checkpoints, plan_key)
    column = f" column {text_column!r}"
    descriptions = tuple(
        f"{url}{column if _kind(url) == 'parquet' else ''} ({size:,} bytes)" for url, size, _ in files
    )
    return CountPlan(
        tokenizer,
        sha,
        language,
        min_line_chars,
        text_column,
        shard_bytes,
        tuple(shards),
        descriptions,
        out,
        checkpoints,
    )


def finish_count(plan: CountPlan) -> TokenStats:
    """Sum the finished shards, write `plan.out` and remove the checkpoints."""
    vocab_size = plan.tokenizer.get_vocab_size(with_added_tokens=True)
    total = TokenStats.empty(
        plan.tokenizer_sha256, plan.language, vocab_size, min_line_chars=plan.min_line_chars
    )
    for index in range(len(plan.shards)):
        total = total.merge(TokenStats.load(plan.shard_file(index)))
    total = replace(total, inputs=plan.inputs)
    if total.n_lines == 0:
        shutil.rmtree(plan.checkpoints, ignore_errors=True)
        raise SelectionError(
            f"no line of the corpus for {plan.language!r} has {plan.min_line_chars} characters or more "
            f"({total.n_skipped_lines:,} shorter lines read): give real text, one sentence or paragraph a line, "
            "or lower --min-line-chars"
        )
    total.save(plan.out)
    shutil.rmtree(plan.checkpoints, ignore_errors=True)
    return total


def _count_shard_resumably(plan: CountPlan, index: int, shard: Shard, tracker: ProgressTracker) -> TokenStats:
    """Count a shard; a compressed file saves its running counts every shard's worth of text, to resume."""
    running_file = plan.checkpoints / f"shard-{index:06d}.running.npz"
    running = TokenStats.load(running_file) if running_file.is_file() else None
    streamed = shard.kind not in ("plain", "parquet")
    reported = 0

    def on_block(storage: int, lines: int, text_bytes: int) -> None:
        nonlocal reported
        reported += storage
        tracker.advance(storage, lines, text_bytes)

    parts = iter_shard_parts(
        plan.tokenizer,
        shard,
        tokenizer_sha=plan.tokenizer_sha256,
        language=plan.language,
        min_line_chars=plan.min_line_chars,
        text_column=plan.text_column,
        skip_bytes=running.n_bytes if running is not None else 0,
        part_bytes=plan.shard_bytes if streamed else None,
        on_block=on_block,
    )
    for part in parts:
        running = part if running is None else running.merge(part)
        if streamed:
            running.save(running_file)
    assert running is not None
    tracker.shard_done(shard, reported)
    return replace(running, inputs=(shard.describe(),))


def count_corpus(
    tokenizer: Tokenizer,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    language: str,
    out: str | os.PathLike[str],
    min_line_chars: int = DEFAULT_MIN_LINE_CHARS,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    text_column: str = DEFAULT_TEXT_COLUMN,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> TokenStats:
    """Count a language's corpus into token statistics, written to `out` (an `.npz` file), and return them.

    Resumes from `OUT.partial/` when an earlier run with the same arguments was interrupted; `progress` is
    called after every block of about 1 MB of text. Raises SelectionError for missing, unreadable, corrupt or
    empty inputs, OutputError when `out` exists (unless `overwrite`).
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
    if tracker.shards_resumed:
        log.info(
            "%d of %d shards were counted before; counting the other %d",
            tracker.shards_resumed,
            len(plan.shards),
            len(pending),
        )
    for index, shard in pending:
        _count_shard_resumably(plan, index, shard, tracker).save(plan.shard_file(index))
    return finish_count(plan)
