"""Token selection, the paper's method: count lines per token, keep the frequent ones, union over languages.

"Load What You Need" (Abdaoui et al. 2020) keeps, for each language, the tokens that occur in at least a
threshold fraction of that language's lines, takes the union over the chosen languages and always keeps the
special tokens. The statistics come in as `TokenStats` (see `stats`); counting them from a corpus at scale is
`langtrim.packager.counting`'s job.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from langtrim.packager.errors import SelectionError
from langtrim.packager.selection.stats import TokenStats

DEFAULT_THRESHOLD = 0.0005  # 0.05% of lines, as the paper's text says


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0 or math.isnan(threshold):
        raise SelectionError(
            f"threshold {threshold} is out of range: give a fraction of lines between 0 and 1 "
            f"(the default {DEFAULT_THRESHOLD} keeps tokens seen in at least 0.05% of lines)"
        )
    return threshold


def frequent_token_ids(
    stats: TokenStats, *, threshold: float = DEFAULT_THRESHOLD, max_tokens: int | None = None
) -> np.ndarray:
    """Ids (ascending) of the tokens seen in at least `threshold` of the lines, at least once.

    With `max_tokens`, only the `max_tokens` most frequent of those are kept (ties broken by lower id).
    """
    check_threshold(threshold)
    if max_tokens is not None and max_tokens < 1:
        raise SelectionError(
            f"--max-tokens-per-language {max_tokens} is out of range: give a positive number"
        )
    if stats.n_lines == 0:
        raise SelectionError(
            f"no line of {stats.describe()} is long enough to count for {stats.language!r}: "
            "give a corpus with real text"
        )
    min_count = max(1, math.ceil(threshold * stats.n_lines - 1e-9))
    kept = np.flatnonzero(stats.line_counts >= min_count)
    if max_tokens is not None and len(kept) > max_tokens:
        order = np.lexsort((kept, -stats.line_counts[kept]))
        kept = np.sort(kept[order[:max_tokens]])
    return kept.astype(np.int64)


@dataclass(frozen=True)
class Selection:
    """The tokens a trimmed model keeps, and why."""

    kept_ids: np.ndarray  # [n_kept] int64, ascending original ids: new id i is original id kept_ids[i]
    per_language: dict[str, int]  # tokens each language selected on its own
    sources: dict[str, str]  # how each language's tokens were chosen, for people
    n_special: int  # special tokens kept whatever the languages
    n_fallback: int  # fallback pieces (single characters) added beyond the languages' own selection
    original_vocab_size: int


def union_selection(
    per_language_ids: dict[str, np.ndarray],
    *,
    sources: dict[str, str],
    special_ids: Iterable[int],
    fallback_ids: Iterable[int] = (),
    original_vocab_size: int,
) -> Selection:
    """Union of the languages' selections, the special tokens and the fallback pieces."""
    special = np.asarray(sorted(set(special_ids)), dtype=np.int64)
    fallback = np.asarray(sorted(set(fallback_ids)), dtype=np.int64)
    languages = np.unique(np.concatenate([np.empty(0, np.int64), *per_language_ids.values()]))
    with_special = np.union1d(languages, special)
    kept = np.union1d(with_special, fallback).astype(np.int64)
    if len(kept) and (kept[0] < 0 or kept[-1] >= original_vocab_size):
        raise SelectionError("a selected token id lies outside the tokenizer's vocabulary: this is a bug")
    return Selection(
        kept_ids=kept,
        per_language={language: len(ids) for language, ids in per_language_ids.items()},
        sources=dict(sources),
        n_special=len(np.setdiff1d(special, languages)),
        n_fallback=len(kept) - len(with_special),
        original_vocab_size=original_vocab_size,
    )
