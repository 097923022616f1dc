"""Count lines per token at the speed of the fast tokenizer: one `encode_batch` per block, numpy for the rest.

The statistic is the paper's: for every token id, the number of lines it occurs in (a token repeated in a line
counts once), and beside it the total number of occurrences. Per block of about 1 MB of text, the tokenizer
encodes all lines in one call (in parallel, in Rust; see `encode`), or, where that is exact (mBERT's
WordPiece, XLM-R's SentencePiece Unigram), only the words it has not met before (`words`); numpy
de-duplicates (line, token) pairs by sorting one integer key per occurrence, so no Python loop runs per token.

A line counts when it has at least `min_line_chars` characters after stripping surrounding whitespace;
shorter lines are read and skipped (the default is `selection.stats.DEFAULT_MIN_LINE_CHARS`, the paper's).
Lines are split on "\\n"; a "\\r" before it is dropped, so CRLF files count like LF files.
"""

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.counting.encode import encode_lines, line_separators
from langtrim.packager.counting.inputs import DEFAULT_TEXT_COLUMN, Shard, split_lines, text_blocks
from langtrim.packager.counting.words import WordCache, word_rule
from langtrim.packager.models.tokenizer import id_bound
from langtrim.packager.selection.stats import TokenStats, tokenizer_sha256

# Blocks being encoded while the caller counts one (each ~1 MB of text, so memory stays flat in corpus size).
# With one, the cores waited while a block's ids became numpy arrays (Python, one core); with two, that work
# overlaps the next block's encoding, for one more block of memory.
BLOCKS_AHEAD = 2
BlockCallback = Callable[[int, int, int], None]  # (storage bytes, lines, text bytes) read by one block
# A block being encoded: (lengths, ids) to come, and lines read, text bytes, storage bytes.
_Pending = tuple[Future[tuple[np.ndarray, np.ndarray]], int, int, int]


@dataclass(frozen=True)
class EncodedBlock:
    """A block's token ids, flat, with the number of ids of each counted line."""

    lengths: np.ndarray  # [n_counted_lines] int64
    ids: np.ndarray  # [sum(lengths)] int32 (int64 for vocabularies of 2^30 or more)
    n_read: int  # lines read, counted or skipped
    n_bytes: int  # text bytes
    storage: int  # storage bytes read since the previous block


@dataclass(frozen=True)
class CountKey:
    """What every shard of one count shares besides the tokenizer; it travels to Dask workers as it is.

    Statistics merge only within one key's tokenizer, language and minimum line length (`TokenStats.merge`).
    """

    tokenizer_sha256: str  # of the tokenizer without padding or truncation (`stats.tokenizer_sha256`)
    vocab_size: int  # one more than the largest token id: the length of the count arrays
    language: str
    min_line_chars: int
    text_column: str = DEFAULT_TEXT_COLUMN  # of Parquet inputs


def count_key(tokenizer: Tokenizer, language: str, min_line_chars: int, text_column: str) -> CountKey:
    """The key of a count with `tokenizer`, which must already be unpadded (see `models.tokenizer.unpadded`)."""
    return CountKey(tokenizer_sha256(tokenizer), id_bound(tokenizer), language, min_line_chars, text_column)


def _id_type(vocab_size: int) -> type:
    """int32 keys (line * vocab_size + id) take half the memory and time of int64; they fit below 2^30 tokens."""
    return np.int32 if vocab_size < 2**30 else np.int64


LineEncoder = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]
_last_line_encoder: tuple[Tokenizer, type, str, LineEncoder] | None = None
_last_line_encoder_lock = threading.Lock()


def line_encoder(tokenizer: Tokenizer, id_type: type, language: str) -> LineEncoder:
    """Lines of `language` -> (lengths, ids): word by word through a cache where that is exact
    (`words`), else joined lines (`encode`).

    The encoder of the tokenizer and language last counted in this process is kept, so that the shards of a
    count, and the tasks a Dask worker runs, share its word cache: a fresh cache per shard would re-encode
    the frequent words every time. Another language gets a new one: a full cache keeps its words, so the first language's would
    crowd out the next one's. One encoder is kept: bounded like the cache itself.
    """
    global _last_line_encoder
    with _last_line_encoder_lock:
        last = _last_line_encoder
        if last is None or last[0] is not tokenizer or last[1:3] != (id_type, language):
            last = _last_line_encoder = (tokenizer, id_type, language, _new_line_encoder(tokenizer, id_type))
        return last[3]


def _new_line_encoder(tokenizer: Tokenizer, id_type: type) -> LineEncoder:
    separators = line_separators(tokenizer)
    rule = word_rule(tokenizer)
    if rule is None:
        return partial(encode_lines, tokenizer, id_type=id_type, separators=separators)
    return WordCache(tokenizer, id_type, separators, rule).encode_lines


def encoded_blocks(
    tokenizer: Tokenizer, blocks: Iterable[tuple[str, int, int]], key: CountKey
) -> Iterator[EncodedBlock]:
    """Encode `text_blocks` output `BLOCKS_AHEAD` blocks ahead, in threads, while the caller counts.

    `encode_batch` releases the GIL and runs on every core; without this, the cores would wait while this
    thread reads, decompresses and counts between two calls.
    """
    encode = line_encoder(tokenizer, _id_type(key.vocab_size), key.language)
    pool = ThreadPoolExecutor(max_workers=BLOCKS_AHEAD, thread_name_prefix="langtrim-encode")
    pending: deque[_Pending] = deque()

    def finished(ahead: _Pending) -> EncodedBlock:
        future, n_read, n_bytes, storage = ahead
        lengths, ids = future.result()
        return EncodedBlock(lengths, ids, n_read, n_bytes, storage)

    try:
        for text, n_bytes, storage in blocks:
            lines, n_read = split_lines(text, key.min_line_chars)
            future = pool.submit(encode, lines)
            pending.append((future, n_read, n_bytes, storage))
            if len(pending) > BLOCKS_AHEAD:
                yield finished(pending.popleft())
        while pending:
            yield finished(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class LineCounter:
    """Running counts of one part of a corpus: per token, the lines it occurs in and its occurrences."""

    def __init__(self, key: CountKey) -> None:
        self._key = key
        vocab_size = self._vocab_size = key.vocab_size
        self._lines_per_key_chunk = max(
            1, (int(np.iinfo(_id_type(vocab_size)).max) - vocab_size) // vocab_size
        )
        self.line_counts = np.zeros(vocab_size, dtype=np.int64)
        self.occurrences = np.zeros(vocab_size, dtype=np.int64)
        self.n_lines = self.n_skipped_lines = self.n_bytes = 0

    def add(self, block: EncodedBlock) -> None:
        self.n_lines += len(block.lengths)
        self.n_skipped_lines += block.n_read - len(block.lengths)
        self.n_bytes += block.n_bytes
        if len(block.ids) == 0:
            return
        self.occurrences += np.bincount(block.ids, minlength=self._vocab_size)
        first_token = 0
        for first_line in range(0, len(block.lengths), self._lines_per_key_chunk):
            chunk_lengths = block.lengths[first_line : first_line + self._lines_per_key_chunk]
            n_tokens = int(chunk_lengths.sum())
            line_index = np.arange(len(chunk_lengths), dtype=block.ids.dtype)
            keys = np.repeat(line_index * self._vocab_size, chunk_lengths)
            keys += block.ids[first_token : first_token + n_tokens]
            first_token += n_tokens
            # One key per occurrence; after sorting, the first of equal keys marks a (line, token) pair.
            keys.sort()
            first = np.empty(len(keys), dtype=bool)
            first[:1] = True
            np.not_equal(keys[1:], keys[:-1], out=first[1:])
            self.line_counts += np.bincount(keys[first] % self._vocab_size, minlength=self._vocab_size)

    def stats(self, inputs: tuple[str, ...]) -> TokenStats:
        return TokenStats(
            tokenizer_sha256=self._key.tokenizer_sha256,
            language=self._key.language,
            n_lines=self.n_lines,
            line_counts=self.line_counts,
            occurrences=self.occurrences,
            min_line_chars=self._key.min_line_chars,
            inputs=inputs,
            n_skipped_lines=self.n_skipped_lines,
            n_bytes=self.n_bytes,
        )


def iter_shard_parts(
    tokenizer: Tokenizer,
    key: CountKey,
    shard: Shard,
    *,
    skip_bytes: int = 0,
    part_bytes: int | None = None,
    on_block: BlockCallback | None = None,
) -> Iterator[TokenStats]:
    """Statistics of a shard, in parts of about `part_bytes` of text each (the whole shard when None).

    A caller saves each part to resume from it: `skip_bytes` (compressed files) starts after that much
    decompressed text, where the saved parts end. `on_block` is called after each block with what it read.
    """
    counter = LineCounter(key)
    blocks = text_blocks(shard, key.text_column, skip_bytes)
    for block in encoded_blocks(tokenizer, blocks, key):
        counter.add(block)
        if on_block is not None:
            on_block(block.storage, block.n_read, block.n_bytes)
        if part_bytes is not None and counter.n_bytes >= part_bytes:
            yield counter.stats((shard.describe(),))
            counter = LineCounter(key)
    yield counter.stats((shard.describe(),))


def count_shard(tokenizer: Tokenizer, key: CountKey, shard: Shard) -> TokenStats:
    """Statistics of one whole shard: what a Dask worker runs, and what an in-memory count adds up."""
    (stats,) = iter_shard_parts(tokenizer, key, shard)
    return stats
