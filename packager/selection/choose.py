"""Choose the kept tokens for a list of languages, each from the best source available for it.

Sources, per language: the token statistics of the user's corpus when given (counted from text by
`langtrim.packager.counting`, or read from the file `langtrim count` wrote, so a large corpus is counted once
for any number of thresholds); otherwise, with `source="auto"`, the paper's published list for
mBERT-vocabulary models and the 15 XNLI languages, else the offline word-frequency estimate (wordfreq). The
special tokens, the pieces of the texts the model always sees (such as multilingual-e5's "query: " prefix)
and, by default, the fallback single-character pieces of the languages' scripts are kept whatever the
counts say.
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.errors import SelectionError
from langtrim.packager.models.tokenizer import special_token_ids, unigram_keep_ids
from langtrim.packager.selection import paper
from langtrim.packager.selection.languages import Language
from langtrim.packager.selection.stats import DEFAULT_MIN_LINE_CHARS, TokenStats
from langtrim.packager.selection.threshold import (
    DEFAULT_THRESHOLD,
    Selection,
    check_threshold,
    frequent_token_ids,
    union_selection,
)
from langtrim.runtime.errors import UsageError

SourceName = Literal["auto", "wordfreq", "paper"]
SOURCE_NAMES: tuple[str, ...] = ("auto", "wordfreq", "paper")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectionSettings:
    threshold: float = DEFAULT_THRESHOLD  # fraction of lines a token must occur in
    max_tokens_per_language: int | None = None
    source: SourceName = "auto"  # for languages without a corpus
    fallback: bool = True  # keep single-character pieces of the languages' scripts
    fallback_all_scripts: bool = False  # ... of every script the tokenizer has (docs/coverage.md measures it)
    keep_texts: tuple[str, ...] = field(default_factory=tuple)  # texts whose pieces are always kept
    min_line_chars: int = DEFAULT_MIN_LINE_CHARS  # lines of a corpus shorter than this are not counted

    def __post_init__(self) -> None:
        if self.source not in SOURCE_NAMES:
            raise UsageError(f"--source {self.source!r} is not one of {', '.join(SOURCE_NAMES)}")
        check_threshold(self.threshold)


def check_corpus_languages(languages: Sequence[Language], corpus_languages: Iterable[str]) -> None:
    """Refuse a corpus for a language that is not selected: its tokens would be counted for nothing."""
    codes = {language.code for language in languages}
    for language in corpus_languages:
        if language not in codes:
            raise SelectionError(
                f"--corpus {language}=... names a language not in --languages ({', '.join(sorted(codes))}): "
                f"add {language} to --languages or drop that corpus"
            )


def _language_ids(
    tokenizer: Tokenizer, language: Language, stats: TokenStats | None, settings: SelectionSettings
) -> tuple[np.ndarray, str]:
    if stats is None and (
        settings.source == "paper"
        or (
            settings.source == "auto"
            and language.code in paper.PAPER_LANGUAGES
            and paper.has_mbert_vocabulary(tokenizer)
        )
    ):
        return paper.paper_token_ids(tokenizer, language.code), paper.SOURCE_DESCRIPTION
    if stats is None:
        from langtrim.packager.selection.wordfreq_source import wordfreq_statistics

        estimate = wordfreq_statistics(tokenizer, language.code)
        ids = frequent_token_ids(
            estimate, threshold=settings.threshold, max_tokens=settings.max_tokens_per_language
        )
        return ids, estimate.describe()
    ids = frequent_token_ids(stats, threshold=settings.threshold, max_tokens=settings.max_tokens_per_language)
    return ids, f"{stats.describe()} ({stats.n_lines:,} lines)"


def text_piece_ids(tokenizer: Tokenizer, texts: Iterable[str]) -> list[int]:
    return sorted({i for text in texts for i in tokenizer.encode(text, add_special_tokens=False).ids})


def choose_tokens(
    tokenizer: Tokenizer,
    languages: Sequence[Language],
    statistics: Mapping[str, TokenStats] | None = None,
    settings: SelectionSettings = SelectionSettings(),
) -> Selection:
    """The kept tokens of `languages`; `statistics` holds, by language code, those counted from a corpus."""
    statistics = dict(statistics or {})
    check_corpus_languages(languages, statistics)
    per_language: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for language in languages:
        ids, description = _language_ids(tokenizer, language, statistics.get(language.code), settings)
        per_language[language.code], sources[language.code] = ids, description
        log.info("%s: %d tokens from %s", language.code, len(ids), description)

    special = (
        special_token_ids(tokenizer)
        + unigram_keep_ids(tokenizer)
        + text_piece_ids(tokenizer, settings.keep_texts)
    )
    if paper.has_mbert_vocabulary(tokenizer) and any(d == paper.SOURCE_DESCRIPTION for d in sources.values()):
        special += paper.paper_special_ids(tokenizer).tolist()
    fallback: list[int] = []
    if settings.fallback:
        from langtrim.packager.selection.fallback import fallback_ids, tokenizer_scripts

        scripts = sorted({script for language in languages for script in language.scripts})
        if settings.fallback_all_scripts:
            scripts = tokenizer_scripts(tokenizer)
        fallback = fallback_ids(tokenizer, scripts).tolist()
    return union_selection(
        per_language,
        sources=sources,
        special_ids=special,
        fallback_ids=fallback,
        original_vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
    )
