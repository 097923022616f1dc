"""Does a bundle cover a text? Two cheap signals from the bundle's own tokenizer, thresholds from the packager.

A bundle keeps the pieces its languages use; text in another language is still embedded, silently badly
(docs/coverage.md measures how badly). Two signals tell such text apart, each measured on the text alone
(no prompt, no special tokens):

- unknown share: the share of the text's pieces that are the unknown token. Text in a script the bundle
  keeps no characters of (Cyrillic for an en,fr,de bundle) is mostly unknown tokens.
- foreign-script share: the share of its pieces whose letters are all of scripts none of the bundle's
  languages is written in. A bundle packed with `--fallback-all-scripts` keeps every script's characters,
  so such text has no unknown tokens: it is characters of a foreign script instead. It counts with the
  unknown share against the same threshold.
- dropped-word share: the share of the text's words (runs of 2+ letters, lowercased) that the original
  vocabulary holds as one piece and the trim dropped. Text in a same-script language the bundle was not
  trimmed for (Spanish for en,fr,de) has no unknown token, but its common words are whole pieces of the
  original vocabulary that the bundle no longer has; its own languages' common words are kept.

A text is covered when the unknown and foreign-script shares together, and the dropped-word share, are
each at most the manifest's thresholds, which `langtrim pack` calibrates
on the bundle's own languages' sentences and stores under the manifest's "coverage" field with the unknown
token's id. The dropped words are a file of the bundle (`WORDS_FILE`): the sorted crc32 of each word's
lowercased UTF-8, as uint32 (.npy, read without pickle). A crc32 collision can only call a covered word
dropped, with odds of about (number of words) / 2^32 per word.

Bundles packed before the check existed have no "coverage" field: they are checked on the unknown share
alone, against `DEFAULT_MAX_UNKNOWN_SHARE`, and `dropped_word_share` is None, so only text in a script the
bundle lacks is caught; re-pack them to catch the rest.
"""

import json
import re
import unicodedata
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from langtrim.runtime.bundle import ID_MAP_FILE, Manifest
from langtrim.runtime.errors import BundleError

WORDS_FILE = "coverage_words.npy"
COVERAGE_FORMAT = 1
# Bundles without calibrated thresholds: a text with more than this share of unknown pieces is uncovered.
# An emoji or a foreign name in an otherwise covered sentence is one or two unknown pieces among ten or more.
DEFAULT_MAX_UNKNOWN_SHARE = 0.1
# A word: a run of two or more letters (no digits, no underscore), in any script.
WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class CoverageThresholds:
    """What the manifest's "coverage" field says: a text above either share is not covered."""

    max_unknown_share: float
    max_dropped_word_share: float | None  # None: the bundle has no dropped-word list (packed before it)
    unknown_id: int | None = None  # the trimmed tokenizer's unknown token; None: read from id_map.json
    words_file: str | None = None  # the bundle's dropped-word list
    scripts: tuple[str, ...] | None = None  # the scripts the bundle's languages are written in; None: unknown

    def to_json(self) -> dict[str, Any]:
        return {
            "format": COVERAGE_FORMAT,
            "max_unknown_share": self.max_unknown_share,
            "max_dropped_word_share": self.max_dropped_word_share,
            "unknown_id": self.unknown_id,
            "words_file": self.words_file,
            "scripts": None if self.scripts is None else list(self.scripts),
        }


@dataclass(frozen=True)
class TextCoverage:
    """One text's coverage: `covered` is what a server acts on, the shares say why."""

    covered: bool
    unknown_share: float  # unknown pieces / pieces (0 for a text with none)
    foreign_share: float | None  # pieces of other scripts only / pieces; None: the manifest lists no scripts
    dropped_word_share: float | None  # dropped words / words (0 without words); None without a word list
    pieces: int
    words: int


def word_hash(word: str) -> int:
    """The crc32 of a word's lowercased UTF-8: what the dropped-word list holds."""
    return zlib.crc32(word.lower().encode("utf-8"))


def character_script(character: str) -> str:
    """The first word of the Unicode name of `character` ("LATIN SMALL LETTER E" -> "LATIN"); "" for unnamed
    ones (controls, private use)."""
    name = unicodedata.name(character, "")
    return re.split(r"[ -]", name, maxsplit=1)[0]


def words_of(text: str) -> list[str]:
    """The text's words as the dropped-word share counts them: runs of two or more letters."""
    return WORD.findall(text)


def thresholds_of(manifest: Manifest, label: str) -> CoverageThresholds:
    """The manifest's thresholds, or the unknown-share default for a bundle packed before calibration."""
    field = manifest.coverage
    if field is None:
        return CoverageThresholds(DEFAULT_MAX_UNKNOWN_SHARE, None)

    def bad(problem: str) -> BundleError:
        return BundleError(
            f"bundle {label!r}: manifest.json field 'coverage' {problem}; re-run langtrim pack"
        )

    if field.get("format") != COVERAGE_FORMAT:
        raise bad(f"has format {field.get('format')!r}; this langtrim reads format {COVERAGE_FORMAT}")
    shares: dict[str, float | None] = {}
    for name in ("max_unknown_share", "max_dropped_word_share"):
        value = field.get(name)
        if value is None and name == "max_dropped_word_share":
            shares[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise bad(f"'{name}' must be a share from 0 to 1, got {json.dumps(value)[:40]}")
        shares[name] = float(value)
    unknown_id, words_file = field.get("unknown_id"), field.get("words_file")
    if unknown_id is not None and (isinstance(unknown_id, bool) or not isinstance(unknown_id, int)):
        raise bad(f"'unknown_id' must be an integer, got {json.dumps(unknown_id)[:40]}")
    if words_file is not None and words_file not in manifest.files:
        raise bad(f"names words_file {words_file!r}, which the bundle does not list")
    if (words_file is None) != (shares["max_dropped_word_share"] is None):
        raise bad("must give both 'words_file' and 'max_dropped_word_share', or neither")
    scripts = field.get("scripts")
    if scripts is not None and (
        not isinstance(scripts, list) or not all(isinstance(s, str) for s in scripts)
    ):
        raise bad(f"'scripts' must be a list of script names, got {json.dumps(scripts)[:40]}")
    return CoverageThresholds(
        float(shares["max_unknown_share"] or 0.0),
        shares["max_dropped_word_share"],
        unknown_id,
        words_file,
        None if scripts is None else tuple(scripts),
    )


class CoverageCheck:
    """A bundle's coverage check: its thresholds, its unknown token and its dropped-word list, loaded once."""

    def __init__(
        self,
        thresholds: CoverageThresholds,
        unknown_id: int,
        dropped_words: np.ndarray | None,
        foreign: np.ndarray | None = None,
    ):
        self.thresholds, self.unknown_id = thresholds, unknown_id
        self._dropped = dropped_words  # sorted uint32 hashes, or None
        self._foreign = foreign  # [vocabulary] bool: a piece of other scripts only; None without scripts

    @classmethod
    def load(cls, directory: Path, manifest: Manifest, label: str) -> "CoverageCheck":
        thresholds = thresholds_of(manifest, label)
        unknown_id = thresholds.unknown_id
        if unknown_id is None:  # an older bundle: the id map knows the unknown token
            unknown_id = _id_map_unknown(directory, label)
        dropped = (
            None if thresholds.words_file is None else read_words(directory / thresholds.words_file, label)
        )
        return cls(thresholds, unknown_id, dropped)

    def with_vocab(self, vocab: Callable[[], Mapping[str, int]]) -> "CoverageCheck":
        """This check with the foreign-script lookup of the pieces `vocab()` gives (piece -> id; one pass over
        the vocabulary, read only when the thresholds name scripts)."""
        if self.thresholds.scripts is None:
            return self
        foreign = foreign_pieces(vocab(), set(self.thresholds.scripts))
        return CoverageCheck(self.thresholds, self.unknown_id, self._dropped, foreign)

    def measure(self, ids: Sequence[Sequence[int]], texts: Sequence[str]) -> list[TextCoverage]:
        """One record per text, in order; `ids` are the texts' ids without special tokens (`plain_ids`)."""
        words = [words_of(text) for text in texts]
        dropped_counts = self._dropped_counts(words)
        limit_unknown, limit_words = self.thresholds.max_unknown_share, self.thresholds.max_dropped_word_share
        records = []
        for text_ids, text_words, dropped in zip(map(list, ids), words, dropped_counts, strict=True):
            pieces = len(text_ids)
            unknown_share = text_ids.count(self.unknown_id) / pieces if pieces else 0.0
            foreign_share = None
            if self._foreign is not None:
                foreign_share = float(self._foreign[text_ids].sum()) / pieces if pieces else 0.0
            word_share = None if dropped is None else (dropped / len(text_words) if text_words else 0.0)
            covered = unknown_share + (foreign_share or 0.0) <= limit_unknown and (
                word_share is None or limit_words is None or word_share <= limit_words
            )
            records.append(
                TextCoverage(covered, unknown_share, foreign_share, word_share, pieces, len(text_words))
            )
        return records

    def _dropped_counts(self, words: list[list[str]]) -> list[int | None]:
        """Per text, how many of its words are in the dropped-word list: one sorted search for all texts."""
        if self._dropped is None:
            return [None] * len(words)
        sizes = [len(text) for text in words]
        hashes = np.fromiter(
            (word_hash(w) for text in words for w in text), dtype=np.uint32, count=sum(sizes)
        )
        if not len(self._dropped) or not len(hashes):
            return [0] * len(words)
        at = np.minimum(np.searchsorted(self._dropped, hashes), len(self._dropped) - 1)
        owner = np.repeat(np.arange(len(words)), sizes)  # the text each word belongs to
        counts = np.bincount(owner[self._dropped[at] == hashes], minlength=len(words))
        return [int(n) for n in counts]


def plain_ids(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Each text's ids without special tokens, not truncated, by `tokenizer` (no truncation, no padding)."""
    # One text at a time: encode_batch's thread pool, started while onnxruntime's threads still spin after
    # a run (as in a server), took ~15x longer for 32 sentences on 2 cores (benchmarks/coverage_detection.py).
    return [tokenizer.encode(text, add_special_tokens=False).ids for text in texts]


def foreign_pieces(vocab: Mapping[str, int], scripts: set[str]) -> np.ndarray:
    """[vocabulary size] bool: the pieces with letters, every one of a script outside `scripts`."""
    foreign = np.zeros(max(vocab.values(), default=-1) + 1, dtype=bool)
    for piece, token_id in vocab.items():
        letters = [c for c in piece if c.isalpha()]
        # ASCII letters are LATIN: cheap to rule out for the many pieces of a Latin-script bundle.
        if letters and not ("LATIN" in scripts and any(c.isascii() for c in letters)):
            foreign[token_id] = all(character_script(c) not in scripts for c in letters)
    return foreign


def read_words(path: Path, label: str) -> np.ndarray:
    """The dropped-word list: a 1-D sorted uint32 array (.npy, never unpickled)."""
    try:
        words = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BundleError(
            f"bundle {label!r}: {path.name} cannot be read ({error}); re-run langtrim pack"
        ) from None
    if words.dtype != np.uint32 or words.ndim != 1 or np.any(np.diff(words.astype(np.int64)) <= 0):
        raise BundleError(
            f"bundle {label!r}: {path.name} must be a sorted, unique 1-D uint32 array; re-run langtrim pack"
        )
    return words


def _id_map_unknown(directory: Path, label: str) -> int:
    try:
        unknown = json.loads((directory / ID_MAP_FILE).read_text(encoding="utf-8")).get("unk_id")
    except (OSError, ValueError, AttributeError):
        unknown = None
    if isinstance(unknown, bool) or not isinstance(unknown, int):
        raise BundleError(f"bundle {label!r}: {ID_MAP_FILE} has no integer 'unk_id'; re-run langtrim pack")
    return unknown


def summary(records: Sequence[TextCoverage]) -> Mapping[str, float]:
    """Shares over many texts: uncovered, and the mean of each signal."""
    n = max(len(records), 1)
    return {
        "uncovered_share": sum(not r.covered for r in records) / n,
        "unknown_share": sum(r.unknown_share for r in records) / n,
        "foreign_share": sum(r.foreign_share or 0.0 for r in records) / n,
        "dropped_word_share": sum(r.dropped_word_share or 0.0 for r in records) / n,
    }
