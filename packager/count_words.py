"""Encode lines word by word through a cache, for tokenizers where a space-separated word encodes alone.

On natural text most words were seen before: in a 1 MB block of ~760-byte Tatoeba paragraphs, 1 word in 10
is new to the block. The tokenizer's work per line (normalizing with alignments, pre-tokenizing, WordPiece,
building an `Encoding`) is then done once per distinct word, and numpy gathers each line's ids from the
cached ids of its words. Measured on 2 cores, 10 MB of mBERT paragraphs (a one-off script): 2.3 CPU s
joined line by line (`count_encode`), 0.8 CPU s through a per-block word cache.

This is exact, not an approximation, for tokenizers built from the parts listed below, the BERT family
(mBERT, DistilmBERT): their normalizers map each character on its own (`BertNormalizer` cleans, spaces out
CJK characters, strips accents through NFD, lowercases; canonical reordering never moves a mark across a
space, which is a starter), their pre-tokenizers split at every whitespace and drop it, and the model sees
one pre-token at a time. So the ids of "a b" are the ids of "a" followed by those of "b". Added tokens
are cut out of the raw text before that; one whose text holds no whitespace matches the same way inside a
word as in the line (`lstrip`/`rstrip` only eat spaces that would give no ids). Other tokenizers keep the
line-by-line path: a Metaspace pre-tokenizer turns a trailing space into a "▁" piece, SentencePiece's
`Precompiled` normalizer maps grapheme clusters that may start with a space, a `Replace` pattern may span
one, and byte-level BPE glues the space to the next word.
"""

import json
import threading
import unicodedata
from collections import deque
from collections.abc import Iterator
from itertools import chain, count
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.count_encode import Separator, encode_lines

# Distinct words kept between blocks. Natural text keeps meeting its frequent words, and they come early,
# so once the cache is full it keeps what it holds and a block's other new words serve that block only:
# memory stays flat in the corpus size and a text of many languages never thrashes the cache. Measured by
# `langtrim count` on 10 MB of words drawn from wordfreq's lists (one-off A/B runs, 2 cores, medians of 2):
# 50k, 100k and 200k words give 12.1, 13.1 and 12.5 MB/s on German, 8.1, 8.7 and 8.8 MB/s on 15 languages
# mixed (8.3 line by line); peak RSS +24, +29 and +46 MB over line by line on the mixed text.
WORD_CAPACITY = 100_000

_CHARACTER_NORMALIZERS = {"BertNormalizer", "Lowercase", "StripAccents", "NFD", "NFKD", "NFC", "NFKC"}
_WHITESPACE_SPLITTERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}  # split at whitespace, drop it
_INNER_SPLITTERS = {"Punctuation", "Digits"}  # split only where they find their characters


def _parts(state: bytes | str | None, sequence_key: str) -> list[dict[str, Any]] | None:
    """A normalizer's or pre-tokenizer's parts, `Sequence`s flattened; None for a missing one."""
    if state is None:
        return None
    node = json.loads(state)
    if node.get("type") != "Sequence":
        return [node]
    return list(
        chain.from_iterable(_parts(json.dumps(child), sequence_key) or [] for child in node[sequence_key])
    )


def _has_whitespace(text: str) -> bool:
    return any(char.isspace() or unicodedata.category(char) == "Zs" for char in text)


def splits_at_spaces(tokenizer: Tokenizer) -> bool:
    """Whether every line encodes exactly as its space-separated words one after another (module docstring)."""
    if tokenizer.truncation is not None or tokenizer.padding is not None:
        return False
    normalizers = _parts(
        None if tokenizer.normalizer is None else tokenizer.normalizer.__getstate__(), "normalizers"
    )
    pre_tokenizers = _parts(
        None if tokenizer.pre_tokenizer is None else tokenizer.pre_tokenizer.__getstate__(), "pretokenizers"
    )
    if pre_tokenizers is None:
        return False
    pre_tokenizer_types = {part.get("type") for part in pre_tokenizers}
    return (
        all(part.get("type") in _CHARACTER_NORMALIZERS for part in normalizers or [])
        and bool(pre_tokenizer_types & _WHITESPACE_SPLITTERS)
        and pre_tokenizer_types <= _WHITESPACE_SPLITTERS | _INNER_SPLITTERS
        and not any(_has_whitespace(token.content) for token in tokenizer.get_added_tokens_decoder().values())
    )


class WordCache:
    """Token ids of the words seen so far, and the lines of a block encoded from them.

    Shared by the threads that encode blocks ahead; a lock keeps the cache consistent, and each block's
    ids are gathered from a snapshot of the arrays outside it.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        id_type: type,
        separators: list[Separator],
        capacity: int = WORD_CAPACITY,
    ) -> None:
        self._tokenizer, self._id_type, self._separators = tokenizer, id_type, separators
        self._capacity = capacity
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._starts = np.zeros(0, dtype=np.int64)  # per word, where its ids start in self._ids
        self._lengths = np.zeros(0, dtype=np.int64)
        self._ids = np.zeros(0, dtype=self._id_type)

    def __len__(self) -> int:
        return len(self._index)

    def encode_lines(self, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(lengths [n_lines] int64, ids [sum(lengths)]): as `count_encode.encode_lines` gives them."""
        if not lines:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=self._id_type)
        words_per_line = [line.split(" ") for line in lines]
        n_words = np.fromiter(map(len, words_per_line), dtype=np.int64, count=len(lines))
        words = list(chain.from_iterable(words_per_line))
        with self._lock:
            codes, starts, lengths, ids = self._look_up(words)
        return _gather(codes, n_words, starts, lengths, ids)

    def _look_up(self, words: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each word's index, and the starts, lengths and ids those indices point into.

        Words not cached yet are encoded; they stay in the cache while it has room. One pass of
        `dict.setdefault` looks every word up and gives each new word a provisional index, `n_cached` + its
        first position in `words`; those become `n_cached`, `n_cached` + 1, ... below.
        """
        n_cached = len(self._lengths)
        lookups = map(self._index.setdefault, words, count(n_cached))
        codes = np.fromiter(lookups, dtype=np.int64, count=len(words))
        first = np.flatnonzero(codes == n_cached + np.arange(len(words)))  # first occurrences of new words
        if len(first) == 0:
            return codes, self._starts, self._lengths, self._ids
        new_words = list(_pick(words, first))
        keep = n_cached + len(new_words) <= self._capacity
        try:
            lengths, ids = encode_lines(self._tokenizer, new_words, self._id_type, self._separators)
        except BaseException:
            keep = False
            raise
        finally:
            if keep:
                self._index.update(zip(new_words, range(n_cached, n_cached + len(first)), strict=True))
            else:  # full (or failed): these words serve this block only
                deque(map(self._index.pop, new_words), maxlen=0)
        provisional = np.empty(len(words), dtype=np.int64)
        provisional[first] = np.arange(n_cached, n_cached + len(first))
        new = codes >= n_cached
        codes[new] = provisional[codes[new] - n_cached]
        starts = np.concatenate([self._starts, len(self._ids) + np.cumsum(lengths) - lengths])
        lengths, ids = np.concatenate([self._lengths, lengths]), np.concatenate([self._ids, ids])
        if keep:
            self._starts, self._lengths, self._ids = starts, lengths, ids
        return codes, starts, lengths, ids


def _pick(words: list[str], positions: np.ndarray) -> Iterator[str]:
    return map(words.__getitem__, positions.tolist())


def _gather(
    codes: np.ndarray, n_words: np.ndarray, starts: np.ndarray, lengths: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the cached ids of each word occurrence; sum them per line."""
    per_word = lengths[codes]
    word_ends = np.cumsum(per_word)  # in the block's ids, one after each word occurrence's last id
    total = int(word_ends[-1]) if len(word_ends) else 0
    # position p of occurrence k, code c: ids[starts[c] + p - (word_ends[k] - per_word[k])]
    positions = np.repeat(starts[codes] - (word_ends - per_word), per_word) + np.arange(total)
    before = np.concatenate([[0], word_ends])  # ids before each word occurrence, and the total
    line_ends = np.cumsum(n_words)
    return before[line_ends] - before[line_ends - n_words], ids[positions]
