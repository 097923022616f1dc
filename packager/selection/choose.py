"""Choose the kept tokens for a list of languages, each from the best source available for it.

Sources, per language: the user's corpus (`--corpus fr=PATH`: text to count, or the token statistics
`langtrim count` wrote, so a large corpus is counted once for any number of thresholds) when given;
otherwise, with `source="auto"`, the paper's published list for mBERT-vocabulary models and the 15 XNLI
languages, else the offline word-frequency approximation (wordfreq). The special tokens, the pieces of
the texts the model always sees (such as multilingual-e5's "query: " prefix) and, by default, the fallback
single-character pieces of the languages' scripts are kept whatever the counts say.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.counting.corpus import CorpusSpec, iter_corpus_lines
from langtrim.packager.errors import SelectionError
from langtrim.packager.models.tokenizer import special_token_ids, unigram_keep_ids
from langtrim.packager.selection import paper
from langtrim.packager.selection.languages import Language
from langtrim.packager.selection.stats import is_token_stats_file, load_line_frequencies
from langtrim.packager.selection.threshold import (
    DEFAULT_THRESHOLD,
    Selection,
    check_threshold,
    count_line_frequencies,
    frequent_token_ids,
    union_selection,
)

SourceName = Literal["auto", "wordfreq", "paper"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectionSettings:
    threshold: float = DEFAULT_THRESHOLD  # fraction of lines a token must occur in
    max_tokens_per_language: int | None = None
    source: SourceName = "auto"  # for languages without a corpus
    fallback: bool = True  # keep single-character pieces of the languages' scripts
    keep_texts: tuple[str, ...] = field(default_factory=tuple)  # texts whose pieces are always kept
    min_line_chars: int = 1


def _language_ids(
    tokenizer: Tokenizer, language: Language, corpus: CorpusSpec | None, settings: SelectionSettings
) -> tuple[np.ndarray, str]:
    if corpus is not None and is_token_stats_file(corpus.path):
        frequencies = load_line_frequencies(corpus.path, tokenizer, language.code)
    elif corpus is not None:
        frequencies = count_line_frequencies(
            tokenizer,
            iter_corpus_lines(corpus.path),
            language=language.code,
            source=f"corpus {corpus.path}",
            min_line_chars=settings.min_line_chars,
        )
    elif settings.source == "paper" or (
        settings.source == "auto"
        and language.code in paper.PAPER_LANGUAGES
        and paper.has_mbert_vocabulary(tokenizer)
    ):
        return paper.paper_token_ids(tokenizer, language.code), paper.SOURCE_DESCRIPTION
    else:
        from langtrim.packager.selection.wordfreq_source import wordfreq_line_frequencies

        frequencies = wordfreq_line_frequencies(tokenizer, language.code)
    ids = frequent_token_ids(
        frequencies, threshold=settings.threshold, max_tokens=settings.max_tokens_per_language
    )
    if corpus is not None:
        return ids, f"{frequencies.source} ({frequencies.n_lines:,} lines)"
    return ids, frequencies.source


def text_piece_ids(tokenizer: Tokenizer, texts: Iterable[str]) -> list[int]:
    return sorted({i for text in texts for i in tokenizer.encode(text, add_special_tokens=False).ids})


def choose_tokens(
    tokenizer: Tokenizer,
    languages: Sequence[Language],
    corpora: Sequence[CorpusSpec] = (),
    settings: SelectionSettings = SelectionSettings(),
) -> Selection:
    check_threshold(settings.threshold)
    codes = {language.code for language in languages}
    by_language = {spec.language: spec for spec in corpora}
    for spec in corpora:
        if spec.language not in codes:
            raise SelectionError(
                f"--corpus {spec.language}=... names a language not in --languages ({', '.join(sorted(codes))}): "
                f"add {spec.language} to --languages or drop that corpus"
            )
    per_language: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for language in languages:
        ids, description = _language_ids(tokenizer, language, by_language.get(language.code), settings)
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
        from langtrim.packager.selection.fallback import fallback_ids

        scripts = sorted({script for language in languages for script in language.scripts})
        fallback = fallback_ids(tokenizer, scripts).tolist()
    return union_selection(
        per_language,
        sources=sources,
        special_ids=special,
        fallback_ids=fallback,
        original_vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
    )
