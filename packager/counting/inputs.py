"""Corpus inputs, for every command that reads text (`count`, `trim`/`pack --corpus`, `--eval-text`): find the
files, cut them into shards, read a shard as blocks of whole lines.

Inputs are text files (plain, `.gz`, `.bz2`, `.xz`, `.zst`), Parquet files (`.parquet`, `.pq`) with a text
column, and directories of them (every file below, sorted, except names starting with "." or "_" such as
Spark's `_SUCCESS`). Paths may be fsspec URLs (`file://`, `memory://`, `s3://` with s3fs installed...).

A shard is a unit of work that can be counted alone, on any machine that reaches the file: a byte range of
`shard_bytes` of a plain file (a range owns the lines that *start* inside it, so lines straddling a boundary
are counted once), a whole compressed file (a stream cannot be entered in the middle), or consecutive row
groups of a Parquet file. A Parquet value is split into lines like a file, so a column of whole articles
counts their paragraphs, like a text dump.
"""

import bz2
import gzip
import io
import lzma
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from langtrim.packager.errors import SelectionError
from langtrim.packager.selection.languages import parse_languages
from langtrim.runtime.errors import UsageError

DEFAULT_SHARD_BYTES = 64 * 1024 * 1024
DEFAULT_TEXT_COLUMN = "text"
_BLOCK_BYTES = 1024 * 1024  # text per block, so per encode_batch call: large enough to keep every core busy
# Longest line counted. A line is a sentence or a paragraph; one of megabytes (a dump without line breaks)
# would make the tokenizer hold many times its size at once, so it is skipped like a too-short line.
MAX_LINE_CHARS = 100_000
_PARQUET_ROWS = 64  # rows per Parquet record batch; lines then gather into blocks of _BLOCK_BYTES
_CODECS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class CorpusSpec:
    """A user's corpus for one language (`--corpus fr=PATH`, repeatable): files, directories or fsspec URLs.

    Paths stay strings as written (`~` expanded): a `Path` would fold the `//` of `s3://bucket`.
    """

    language: str
    paths: tuple[str, ...]


def parse_corpus_options(values: Sequence[str], option: str = "--corpus") -> list[CorpusSpec]:
    """`LANG=PATH` options, grouped by language in the order given; unknown language codes are refused."""
    paths: dict[str, list[str]] = {}
    for value in values:
        language, sep, path = value.partition("=")
        if not sep or not language.strip() or not path.strip():
            raise UsageError(
                f"{option} {value!r} is not LANG=PATH: write it as e.g. {option} fr=corpus/fr.txt.gz"
            )
        path = path.strip()
        paths.setdefault(language.strip().lower(), []).append(
            path if "://" in path else os.path.expanduser(path)
        )
    if paths:
        parse_languages(",".join(paths))  # refuses unknown codes, naming the known ones
    return [CorpusSpec(language, tuple(found)) for language, found in paths.items()]


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
class InputFile:
    """One file of the corpus as planned: a checkpoint is valid only for the same url, size and stamp."""

    url: str
    size: int  # bytes in storage
    stamp: str  # modification time or ETag, where the filesystem gives one

    def describe(self, text_column: str) -> str:
        column = f" column {text_column!r}" if input_kind(self.url) == "parquet" else ""
        return f"{self.url}{column} ({self.size:,} bytes)"


def input_kind(url: str) -> str:
    """The kind of file from its name: "parquet", a codec ("gzip", "bz2", "xz", "zstd") or "plain"."""
    name = url.rsplit("/", 1)[-1].lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return next((codec for suffix, codec in _CODECS.items() if name.endswith(suffix)), "plain")


def _list_files(value: str) -> list[tuple[str, dict[str, Any]]]:
    """(url, fsspec info) of each file an input names: itself, or the files below a directory, sorted."""
    import fsspec  # here, not at the top: the CLI (also `langtrim serve`, without the packager extra) reads
    # this module's defaults

    try:
        fs, path = fsspec.core.url_to_fs(value)
    except (ImportError, ValueError) as error:
        raise SelectionError(
            f"cannot open corpus input {value!r} ({error}): install the fsspec filesystem for its protocol "
            "(e.g. pip install s3fs) or give a local path"
        ) from None
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
            # A URL keeps the user's spelling (protocol chain, bucket, options) with the file's path appended.
            found.append((name if local else f"{value.rstrip('/')}/{relative}", member))
    if not found:
        raise SelectionError(
            f"corpus directory {value!r} holds no files: give text, compressed text or Parquet files"
        )
    return found


def _stamp(info: dict[str, Any]) -> str:
    return str(next((info[key] for key in ("mtime", "LastModified", "ETag", "created") if key in info), ""))


def _parquet_shards(url: str, shard_bytes: int, text_column: str) -> list[Shard]:
    import fsspec
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
) -> tuple[list[Shard], list[InputFile]]:
    """The shards of the inputs, in a fixed order, and the files they come from."""
    if shard_bytes < 1:
        raise UsageError(f"--shard-bytes {shard_bytes} is out of range: give a positive number of bytes")
    if not inputs:
        raise SelectionError("no corpus given: pass at least one file or directory")
    shards: list[Shard] = []
    files: list[InputFile] = []
    for value in inputs:
        for url, info in _list_files(os.fspath(value)):
            size, kind = int(info.get("size") or 0), input_kind(url)
            files.append(InputFile(url, size, _stamp(info)))
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


def split_lines(
    text: str, min_line_chars: int, max_line_chars: int | None = MAX_LINE_CHARS
) -> tuple[list[str], int]:
    """The lines of `text` to count, and the number of lines read (the last "\\n" optional).

    A line counts with at least `min_line_chars` characters after stripping and at most `max_line_chars`;
    the others are read and skipped.
    """
    if not text:
        return [], 0
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    if min_line_chars > 0 or max_line_chars is not None:
        longest = max_line_chars if max_line_chars is not None else len(text)
        counted = [line for line in lines if len(line) <= longest and min_line_chars <= len(line.strip())]
        return counted, len(lines)
    return lines, len(lines)


def iter_lines(
    inputs: Sequence[str | os.PathLike[str]], *, text_column: str = DEFAULT_TEXT_COLUMN
) -> Iterator[str]:
    """Every line of the inputs, in order, without line ends: what `--eval-text` reads, with count's reader."""
    shards, _ = plan_shards(inputs, text_column=text_column)
    for shard in shards:
        for text, _, _ in text_blocks(shard, text_column):
            yield from split_lines(text, 0, None)[0]


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


def _decompressed(kind: str, raw: IO[bytes]) -> io.BufferedIOBase:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(raw)
    if kind == "xz":
        return lzma.LZMAFile(raw)
    return io.BufferedReader(_ZstdReader(raw), buffer_size=_BLOCK_BYTES)


def _range_blocks(raw: IO[bytes], start: int, stop: int) -> Iterator[tuple[int, bytes]]:
    """(file offset, block of whole lines) for the lines that start in [start, stop) of a plain file."""
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
        yield position, block
        position += len(block)


def _stream_blocks(stream: io.BufferedIOBase, skip: int) -> Iterator[tuple[int, bytes]]:
    """(offset, block of whole lines) of a decompressed stream, after its first `skip` bytes (a line end)."""
    position = 0
    while position < skip:
        skipped = len(stream.read(min(skip - position, _BLOCK_BYTES)))
        if not skipped:
            raise EOFError(f"the text ended before byte {skip}, where the checkpoint stopped")
        position += skipped
    while block := stream.read(_BLOCK_BYTES):
        if not block.endswith(b"\n"):
            block += stream.readline()
        yield position, block
        position += len(block)


def text_blocks(shard: Shard, text_column: str, skip: int = 0) -> Iterator[tuple[str, int, int]]:
    """(text of whole lines, its UTF-8 bytes, storage bytes read since the previous block) of a shard.

    `skip` (compressed files only) starts after that many bytes of decompressed text, a line boundary where
    an earlier, interrupted count stopped. Blocks hold about 1 MB of text and end with a whole line.
    """
    import fsspec

    if shard.kind == "parquet":
        yield from _parquet_blocks(shard, text_column)
        return
    compressed = shard.kind != "plain"
    where = " of its decompressed text" if compressed else ""
    try:
        with fsspec.open(shard.url, "rb") as raw:
            if compressed:
                blocks = _stream_blocks(_decompressed(shard.kind, raw), skip)
            else:
                blocks = _range_blocks(raw, shard.start, shard.stop)
            read = 0
            for offset, block in blocks:
                try:
                    text = block.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise SelectionError(
                        f"corpus file {shard.url!r} is not UTF-8 text (byte {offset + error.start}{where}): "
                        "convert it with e.g. `iconv -t UTF-8`"
                    ) from None
                if compressed:  # the compressed bytes consumed so far (decompressors read ahead: an estimate)
                    advance, read = raw.tell() - read, raw.tell()
                    yield text, len(block), advance
                else:
                    yield text, len(block), len(block)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as error:
        if not compressed:
            raise SelectionError(
                f"corpus file {shard.url!r} cannot be read ({error}): check the file"
            ) from None
        raise SelectionError(
            f"corpus file {shard.url!r} cannot be read as {shard.kind} ({error}): it is truncated or corrupt; "
            "download or compress it again"
        ) from None


def _parquet_blocks(shard: Shard, text_column: str) -> Iterator[tuple[str, int, int]]:
    """Blocks of a Parquet shard: its non-null values joined by newlines (so one value may hold many lines)."""
    import fsspec
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        with fsspec.open(shard.url, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            groups = range(shard.start, shard.stop)
            total_rows = sum(parquet.metadata.row_group(group).num_rows for group in groups) or 1
            rows = reported = text_bytes = 0
            values: list[str] = []
            batches = parquet.iter_batches(batch_size=_PARQUET_ROWS, row_groups=groups, columns=[text_column])
            for batch in batches:
                column = batch.column(0)
                values += [value for value in column.to_pylist() if value is not None]
                text_bytes += pc.sum(pc.binary_length(column)).as_py() or 0
                rows += batch.num_rows
                if text_bytes >= _BLOCK_BYTES or rows == total_rows:
                    storage = shard.size * rows // total_rows
                    # Bytes as in a text file: the values and one line end after each.
                    yield "\n".join(values), text_bytes + len(values), storage - reported
                    values, text_bytes, reported = [], 0, storage
            if values:
                yield "\n".join(values), text_bytes + len(values), shard.size - reported
    except (pa.ArrowException, OSError) as error:
        raise SelectionError(f"Parquet file {shard.url!r} cannot be read ({error}): check the file") from None
