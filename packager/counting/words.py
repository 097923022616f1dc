"""Encode lines word by word through a cache, for tokenizers where a space-separated word encodes alone.

On natural text most words were seen before, so the tokenizer's work per line (normalizing with
alignments, pre-tokenizing, the model, building an `Encoding`) is done once per distinct word, and numpy
gathers each line's ids from the cached ids of its words. It pays most on paragraphs and least on text
whose words are all rare; benchmarks/count_speed.py measures it (its `count_lines` row has the cache off),
and docs/results.md, "The figures behind the code's choices", has the A/B runs behind it.

This is exact, not an approximation, where the tokenizer is built from parts that allow it; elsewhere,
or for a line where it might not hold, lines are encoded whole (`encode`).

- The BERT family (mBERT, DistilmBERT; `word_rule` gives `every_word=True`): their normalizers map each
  character on its own (`BertNormalizer` cleans, spaces out CJK characters, strips accents through NFD,
  lowercases; canonical reordering never moves a mark across a space, which is a starter), their
  pre-tokenizers split at every whitespace and drop it, and the model sees one pre-token at a time. So the
  ids of "a b" are the ids of "a" followed by those of "b". Added tokens are cut out of the raw text before
  that; one whose text holds no whitespace matches the same way inside a word as in the line (`lstrip` and
  `rstrip` only eat spaces that would give no ids).
- SentencePiece Unigram tokenizers (XLM-R, multilingual-e5): SentencePiece's `Precompiled` normalizer, the
  `Replace` of runs of spaces by one, and a Metaspace pre-tokenizer that turns each space into "▁" and
  starts a piece there. The normalizer maps grapheme clusters, not characters, so a word's first character
  must not be one that joins a cluster with the space before it (marks, joiners, format characters) nor its
  last one that joins the space after it (prepended concatenation marks); and a space in the line's
  normalized text only starts a piece, except at its end, where it becomes a "▁" piece of its own. So a
  line takes this path only if none of its words normalizes to text that ends with a space or holds "▁",
  its last word does not normalize to nothing, and no word holds an added token's text (those are cut out
  with the spaces beside them). `tests/packager/counting/test_words.py` compares both paths with every assigned code
  point right after and right before a space; with e5's charsmap no cluster crosses a space at all, so the
  cluster rule is a margin for other charsmaps.

Other tokenizers keep the line-by-line path: a `Replace` of another pattern may span a space, and byte-level
BPE glues the space to the next word.
"""

import threading
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, count

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.counting.encode import Separator, encode_lines, pipeline_parts

# Distinct words kept between blocks. Natural text keeps meeting its frequent words, and they come early,
# so once the cache is full it keeps what it holds and a block's other new words serve that block only:
# memory stays flat in the corpus size and a text of many languages never thrashes the cache. Larger caches
# bought no speed and cost memory (the A/B runs are in docs/results.md).
WORD_CAPACITY = 100_000

_CHARACTER_NORMALIZERS = {"BertNormalizer", "Lowercase", "StripAccents", "NFD", "NFKD", "NFC", "NFKC"}
_WHITESPACE_SPLITTERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}  # split at whitespace, drop it
_INNER_SPLITTERS = {"Punctuation", "Digits"}  # split only where they find their characters


def _has_whitespace(text: str) -> bool:
    return any(char.isspace() or unicodedata.category(char) == "Zs" for char in text)


@dataclass(frozen=True)
class WordRule:
    """Which lines of a tokenizer encode as their space-separated words (module docstring)."""

    every_word: bool  # True: every line (BERT family); False: see `WordCache._metaspace_flags`
    added_texts: tuple[str, ...] = ()


# Characters that may join a grapheme cluster with a space before them (Grapheme_Cluster_Break Extend, ZWJ,
# SpacingMark: marks, format characters, modifier letters and symbols, and two Lo vowel signs), or with a
# space after them (Prepend: format characters and the Lo letters below); unassigned code points (Cn) in
# Python's Unicode database may be assigned either by the newer one of `tokenizers`.
_JOINS_SPACE_BEFORE_CATEGORIES = {"Mn", "Mc", "Me", "Cf", "Cn", "Co", "Cs", "Lm", "Sk"}
_JOINS_SPACE_BEFORE_CHARS = {"\u0e33", "\u0eb3"}
_JOINS_SPACE_AFTER_CATEGORIES = {"Cf", "Cn", "Co", "Cs"}
_JOINS_SPACE_AFTER_CHARS = {
    chr(c)
    for c in (
        0x0D4E,
        0x111C2,
        0x111C3,
        0x113D1,
        0x1193F,
        0x11941,
        0x11A3A,
        *range(0x11A84, 0x11A8A),
        0x11D46,
        0x11F02,
    )
}
_METASPACE_NORMALIZERS = {"Precompiled", "NFD", "NFKD", "NFC", "NFKC", "Lowercase", "StripAccents"}
_COLLAPSE_SPACES = {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}
_NORMALIZE_SEPARATOR = "\x00"  # new words are normalized in one call, joined by it: it maps to itself


def word_rule(tokenizer: Tokenizer) -> WordRule | None:
    """How lines of `tokenizer` may be encoded word by word; None if not at all (module docstring)."""
    if tokenizer.truncation is not None or tokenizer.padding is not None:
        return None
    normalizer = tokenizer.normalizer
    normalizers = pipeline_parts(normalizer, "normalizers") or []
    pre_tokenizers = pipeline_parts(tokenizer.pre_tokenizer, "pretokenizers")
    if pre_tokenizers is None:
        return None
    added = tuple(token.content for token in tokenizer.get_added_tokens_decoder().values() if token.content)
    pre_tokenizer_types = {part.get("type") for part in pre_tokenizers}
    if (
        all(part.get("type") in _CHARACTER_NORMALIZERS for part in normalizers)
        and pre_tokenizer_types & _WHITESPACE_SPLITTERS
        and pre_tokenizer_types <= _WHITESPACE_SPLITTERS | _INNER_SPLITTERS
        and not any(_has_whitespace(text) for text in added)
    ):
        return WordRule(every_word=True)
    metaspace = pre_tokenizers[0]
    if (
        len(pre_tokenizers) == 1
        and metaspace.get("type") == "Metaspace"
        and metaspace.get("replacement") == "▁"
        and metaspace.get("prepend_scheme") == "always"
        and metaspace.get("split") is True
        and all(
            part.get("type") in _METASPACE_NORMALIZERS or part == _COLLAPSE_SPACES for part in normalizers
        )
        and (normalizer is None or normalizer.normalize_str("a b\x00c") == "a b\x00c")
    ):
        return WordRule(every_word=False, added_texts=added)
    return None


def _joins_a_space(word: str) -> bool:
    """Whether the word's first or last character may join a grapheme cluster with a space beside it."""
    first, last = word[0], word[-1]
    return (
        unicodedata.category(first) in _JOINS_SPACE_BEFORE_CATEGORIES
        or first in _JOINS_SPACE_BEFORE_CHARS
        or unicodedata.category(last) in _JOINS_SPACE_AFTER_CATEGORIES
        or last in _JOINS_SPACE_AFTER_CHARS
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
        rule: WordRule,
        capacity: int = WORD_CAPACITY,
    ) -> None:
        self._tokenizer, self._id_type, self._separators = tokenizer, id_type, separators
        self._rule, self._capacity = rule, capacity
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._words = _Words(
            starts=np.zeros(0, dtype=np.int64),
            lengths=np.zeros(0, dtype=np.int64),
            ids=np.zeros(0, dtype=id_type),
            unsafe=np.zeros(0, dtype=bool),
            empty=np.zeros(0, dtype=bool),
        )

    def __len__(self) -> int:
        return len(self._index)

    def encode_lines(self, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(lengths [n_lines] int64, ids [sum(lengths)]): as `encode.encode_lines` gives them."""
        if not lines:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=self._id_type)
        words_per_line = [line.split(" ") for line in lines]
        n_words = np.fromiter(map(len, words_per_line), dtype=np.int64, count=len(lines))
        words = list(chain.from_iterable(words_per_line))
        with self._lock:
            codes, cached = self._look_up(words)
        lengths, ids = _gather(codes, n_words, cached)
        if self._rule.every_word:
            return lengths, ids
        last = np.cumsum(n_words) - 1
        whole = (np.add.reduceat(cached.unsafe[codes], last - n_words + 1) > 0) | cached.empty[codes[last]]
        if not whole.any():
            return lengths, ids
        return _splice(lengths, ids, whole, self._encode_whole([lines[i] for i in np.flatnonzero(whole)]))

    def _encode_whole(self, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return encode_lines(self._tokenizer, lines, self._id_type, self._separators)

    def _look_up(self, words: list[str]) -> tuple[np.ndarray, "_Words"]:
        """Each word's index, and the cached words those indices point into.

        Words not cached yet are encoded; they stay in the cache while it has room. One pass of
        `dict.setdefault` looks every word up and gives each new word a provisional index, `n_cached` + its
        first position in `words`; those become `n_cached`, `n_cached` + 1, ... below.
        """
        n_cached = len(self._words.lengths)
        lookups = map(self._index.setdefault, words, count(n_cached))
        codes = np.fromiter(lookups, dtype=np.int64, count=len(words))
        first = np.flatnonzero(codes == n_cached + np.arange(len(words)))  # first occurrences of new words
        if len(first) == 0:
            return codes, self._words
        new_words = list(_pick(words, first))
        keep = n_cached + len(new_words) <= self._capacity
        try:
            new = self._encode_words(new_words)
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
        is_new = codes >= n_cached
        codes[is_new] = provisional[codes[is_new] - n_cached]
        cached = self._words.extended(new)
        if keep:
            self._words = cached
        return codes, cached

    def _encode_words(self, words: list[str]) -> "_Words":
        lengths, ids = encode_lines(self._tokenizer, words, self._id_type, self._separators)
        unsafe, empty = (
            (np.zeros(len(words), dtype=bool),) * 2 if self._rule.every_word else self._metaspace_flags(words)
        )
        return _Words(np.cumsum(lengths) - lengths, lengths, ids, unsafe, empty)

    def _metaspace_flags(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(unsafe, empty) per word: a line holding an unsafe word, or ending in an empty one, goes whole."""
        normalizer = self._tokenizer.normalizer
        joined = _NORMALIZE_SEPARATOR.join(words)
        normalized = words
        if normalizer is not None:
            normalized = normalizer.normalize_str(joined).split(_NORMALIZE_SEPARATOR)
            if len(normalized) != len(words):  # a word holds the separator
                normalized = [normalizer.normalize_str(word) for word in words]
        added = [
            text for text in self._rule.added_texts if text in joined
        ]  # a pre-check: few blocks hold any
        unsafe = [
            bool(word)
            and (
                text.endswith(" ")
                or "▁" in text
                or _joins_a_space(word)
                or any(added_text in word for added_text in added)
            )
            for word, text in zip(words, normalized, strict=True)
        ]
        empty = [not text for text in normalized]
        return np.array(unsafe, dtype=bool), np.array(empty, dtype=bool)


@dataclass(frozen=True)
class _Words:
    """Cached words, by index: where their ids start in `ids`, how many, and `_metaspace_flags`' flags."""

    starts: np.ndarray
    lengths: np.ndarray
    ids: np.ndarray
    unsafe: np.ndarray
    empty: np.ndarray

    def extended(self, more: "_Words") -> "_Words":
        return _Words(
            np.concatenate([self.starts, len(self.ids) + more.starts]),
            np.concatenate([self.lengths, more.lengths]),
            np.concatenate([self.ids, more.ids]),
            np.concatenate([self.unsafe, more.unsafe]),
            np.concatenate([self.empty, more.empty]),
        )


def _pick(words: list[str], positions: np.ndarray) -> Iterator[str]:
    return map(words.__getitem__, positions.tolist())


def _gather(codes: np.ndarray, n_words: np.ndarray, cached: _Words) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the cached ids of each word occurrence; sum them per line."""
    per_word = cached.lengths[codes]
    word_ends = np.cumsum(per_word)  # in the block's ids, one after each word occurrence's last id
    total = int(word_ends[-1]) if len(word_ends) else 0
    # position p of occurrence k, code c: ids[starts[c] + p - (word_ends[k] - per_word[k])]
    positions = np.repeat(cached.starts[codes] - (word_ends - per_word), per_word) + np.arange(total)
    before = np.concatenate([[0], word_ends])  # ids before each word occurrence, and the total
    line_ends = np.cumsum(n_words)
    return before[line_ends] - before[line_ends - n_words], cached.ids[positions]


def _splice(
    lengths: np.ndarray, ids: np.ndarray, whole: np.ndarray, encoded: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The lines where `whole` holds replaced by their own encoding (`encoded`, in order)."""
    whole_lengths, whole_ids = encoded
    kept_ids = ids[np.repeat(~whole, lengths)]
    lengths = lengths.copy()
    lengths[whole] = whole_lengths
    from_whole = np.repeat(whole, lengths)
    spliced = np.empty(len(from_whole), dtype=ids.dtype)
    spliced[~from_whole] = kept_ids
    spliced[from_whole] = whole_ids
    return lengths, spliced
