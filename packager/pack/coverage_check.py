"""Calibrate the serve-time coverage check at pack time: the dropped-word list and the two thresholds.

`langtrim.runtime.coverage` flags a text when its unknown-token share or its dropped-word share is above
the manifest's thresholds. Here, at pack time, the dropped words are listed (whole-word pieces of the
original vocabulary that the trim dropped, in any case form) and both shares are measured on real
sentences of each of the bundle's languages: a threshold is the share that leaves all but
`1 - CALIBRATION_QUANTILE` of those sentences covered, and never below its floor, so that one foreign name or
symbol in an otherwise covered sentence does not flag it. benchmarks/coverage_detection.py measures what
the thresholds flag on held-out sentences of the bundle's languages and of others.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.models.tokenizer import unpadded
from langtrim.packager.pack.parity import load_eval_texts
from langtrim.packager.selection.fallback import writing_scripts
from langtrim.packager.selection.languages import get_language
from langtrim.packager.shipped_text import TATOEBA_CREDIT, shipped_pairs
from langtrim.runtime import bundle
from langtrim.runtime.coverage import (
    WORD,
    WORDS_FILE,
    CoverageCheck,
    CoverageThresholds,
    plain_ids,
    word_hash,
)

# Share of the calibration sentences each threshold leaves covered.
CALIBRATION_QUANTILE = 0.995
# Floors: one unknown piece in twenty (an emoji, a foreign name), one dropped word in ten (a rare word).
MIN_MAX_UNKNOWN_SHARE = 0.05
MIN_MAX_DROPPED_WORD_SHARE = 0.1


@dataclass(frozen=True)
class CoverageCalibration:
    thresholds: CoverageThresholds
    dropped_words: int
    flagged: dict[str, float]  # per language: share of its calibration sentences flagged
    sentences: dict[str, int]
    text_source: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self.thresholds.to_json(),
            "dropped_words": self.dropped_words,
            "calibration": {
                "quantile": CALIBRATION_QUANTILE,
                "text": self.text_source,
                "languages": {
                    language: {"sentences": self.sentences[language], "flagged_share": round(share, 4)}
                    for language, share in self.flagged.items()
                },
            },
        }


def dropped_word_hashes(original: Tokenizer | Path, trimmed: Tokenizer) -> np.ndarray:
    """Sorted unique uint32 `word_hash`es of the words (2+ letters, lowercased) that the original vocabulary
    holds as a whole-word piece and the trimmed one holds in no case form. `original` may be the tokenizer
    or its tokenizer.json (whose words are read once per process: a quarter of a million pieces for e5)."""
    if isinstance(original, Path):
        stat = original.stat()
        words = _file_word_pieces(str(original.resolve()), stat.st_size, stat.st_mtime_ns)
    else:
        words = frozenset(_word_pieces(original))
    dropped = words - _word_pieces(trimmed)
    return np.unique(np.fromiter((word_hash(word) for word in dropped), dtype=np.uint32, count=len(dropped)))


@lru_cache(maxsize=2)
def _file_word_pieces(path: str, size: int, mtime_ns: int) -> frozenset[str]:
    """`_word_pieces` of a tokenizer file, cached by its path, size and modification time."""
    return frozenset(_word_pieces(Tokenizer.from_file(path)))


def _word_pieces(tokenizer: Tokenizer) -> set[str]:
    """The lowercased words a tokenizer has whole-word pieces for (Unigram "▁word", WordPiece "word")."""
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    if type(tokenizer.model).__name__ == "Unigram":
        pieces = (piece[1:] for piece in vocab if piece.startswith("▁"))
    else:
        prefix = getattr(tokenizer.model, "continuing_subword_prefix", None) or "##"
        pieces = (piece for piece in vocab if not piece.startswith(prefix))
    return {piece.lower() for piece in pieces if WORD.fullmatch(piece)}


def calibration_texts(
    languages: Sequence[str], eval_texts: Mapping[str, Sequence[str]] | None
) -> tuple[dict[str, list[str]], str]:
    """Per language: the parity sentences (`--eval-text`, else the shipped ones), else the language's side of
    the shipped pairs; and a description of where they came from."""
    found = {
        language: sentences
        for language, (_, sentences) in load_eval_texts(languages, eval_texts or {}).items()
    }
    for language in languages:
        if language not in found and (pairs := shipped_pairs(language)) is not None:
            found[language] = pairs[0]
    where = "--eval-text where given, else " if eval_texts else ""
    return found, f"{where}the Tatoeba sentences shipped with langtrim, {TATOEBA_CREDIT}"


def calibrate_coverage(
    bundle_dir: Path,
    original_tokenizer: Path,
    languages: Sequence[str],
    eval_texts: Mapping[str, Sequence[str]] | None = None,
) -> CoverageCalibration:
    """Write the dropped-word list into the bundle and its thresholds into the manifest (files re-hashed)."""
    trimmed = unpadded(Tokenizer.from_file(str(bundle_dir / bundle.TOKENIZER_FILE)))  # as the Encoder's
    words = dropped_word_hashes(original_tokenizer, trimmed)
    np.save(bundle_dir / WORDS_FILE, words, allow_pickle=False)
    unknown_id = int(json.loads((bundle_dir / bundle.ID_MAP_FILE).read_text(encoding="utf-8"))["unk_id"])
    texts, source = calibration_texts(languages, eval_texts)
    scripts = tuple(writing_scripts(s for code in languages for s in get_language(code).scripts))
    measuring = CoverageThresholds(1.0, 1.0, unknown_id, WORDS_FILE, scripts)
    vocab = lambda: trimmed.get_vocab(with_added_tokens=False)  # noqa: E731
    ids = {language: plain_ids(trimmed, sentences) for language, sentences in texts.items()}
    check = CoverageCheck(measuring, unknown_id, words).with_vocab(vocab)
    records = {language: check.measure(ids[language], sentences) for language, sentences in texts.items()}
    every = [record for found in records.values() for record in found]
    thresholds = CoverageThresholds(
        max_unknown_share=_threshold(
            [r.unknown_share + (r.foreign_share or 0.0) for r in every], MIN_MAX_UNKNOWN_SHARE
        ),
        max_dropped_word_share=_threshold(
            [r.dropped_word_share or 0.0 for r in every], MIN_MAX_DROPPED_WORD_SHARE
        ),
        unknown_id=unknown_id,
        words_file=WORDS_FILE,
        scripts=scripts,
    )
    final = CoverageCheck(thresholds, unknown_id, words).with_vocab(vocab)
    flagged = {
        language: float(np.mean([not r.covered for r in final.measure(ids[language], sentences)]))
        for language, sentences in texts.items()
    }
    calibration = CoverageCalibration(
        thresholds, len(words), flagged, {language: len(found) for language, found in texts.items()}, source
    )
    bundle.record_coverage(bundle_dir, calibration.to_json())
    return calibration


def _threshold(shares: Sequence[float], floor: float) -> float:
    """The CALIBRATION_QUANTILE of the shares, at least `floor` (the floor alone without sentences)."""
    if not shares:
        return floor
    return round(max(floor, float(np.quantile(shares, CALIBRATION_QUANTILE))), 4)
