"""The offline selection source: wordfreq word frequencies turned into per-token line counts.

Selections use the real multilingual-e5 (XLM-R Unigram) tokenizer and, where said, the real mBERT
WordPiece vocabulary; coverage is measured on real Tatoeba sentences (shipped in langtrim.packager/data/text/tatoeba).
"""

from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.packager.errors import SelectionError
from langtrim.packager.selection.stats import TokenStats
from langtrim.packager.selection.wordfreq_source import NOMINAL_LINES, wordfreq_statistics

TATOEBA = Path(str(files("langtrim.packager") / "data" / "text" / "tatoeba"))
THRESHOLD = 0.0005  # the default share of lines a token must occur in


def kept_tokens(tokenizer: Tokenizer, frequencies: TokenStats) -> set[str]:
    kept = np.flatnonzero(frequencies.line_counts >= THRESHOLD * frequencies.n_lines)
    return {tokenizer.id_to_token(int(token_id)) for token_id in kept}


def pieces_of(tokenizer: Tokenizer, text: str, part: str) -> list[str]:
    """The pieces `tokenizer` gives `part` where it occurs inside `text`."""
    start = text.index(part)
    encoding = tokenizer.encode(text, add_special_tokens=False)
    return [
        token
        for token, (piece_start, piece_end) in zip(encoding.tokens, encoding.offsets, strict=True)
        if piece_start < start + len(part) and piece_end > start
    ]


@pytest.fixture(scope="module")
def french(e5_tokenizer: Tokenizer) -> TokenStats:
    return wordfreq_statistics(e5_tokenizer, "fr")


@pytest.fixture(scope="module")
def german(e5_tokenizer: Tokenizer) -> TokenStats:
    return wordfreq_statistics(e5_tokenizer, "de")


def test_line_counts_span_the_vocabulary_over_nominal_lines(e5_tokenizer, french):
    assert french.language == "fr"
    assert french.n_lines == NOMINAL_LINES
    assert french.line_counts.dtype == np.int64
    assert french.line_counts.shape == (e5_tokenizer.get_vocab_size(with_added_tokens=True),)
    assert french.line_counts.min() >= 0 and french.line_counts.max() <= NOMINAL_LINES
    assert "wordfreq" in french.describe()


def test_tokens_of_another_script_occur_in_no_line(e5_tokenizer, french):
    assert french.line_counts[e5_tokenizer.token_to_id("的")] == 0
    assert french.line_counts[e5_tokenizer.token_to_id("▁это")] == 0


def test_more_frequent_words_occur_in_more_lines(e5_tokenizer, french):
    counts = french.line_counts
    assert counts[e5_tokenizer.token_to_id("▁de")] > counts[e5_tokenizer.token_to_id("▁maison")] > 0


def test_french_keeps_the_pieces_of_a_word_after_an_apostrophe(e5_tokenizer, french):
    pieces = pieces_of(e5_tokenizer, "J'aime le chocolat.", "aime")
    assert pieces == ["aime"]  # no "▁": the word is glued to "J'"
    assert set(pieces) <= kept_tokens(e5_tokenizer, french)


def test_capitalised_sentence_starts_are_kept(e5_tokenizer, french):
    assert {"▁Pourquoi", "▁Quand", "▁Elle"} <= kept_tokens(e5_tokenizer, french)


def test_punctuation_pieces_are_kept(e5_tokenizer, french):
    punctuation = {",", ".", "?", "!", "▁?", "▁!", "-", "'", '"', ":", ";", "▁(", ")", "▁«", "▁»", "..."}
    assert punctuation <= kept_tokens(e5_tokenizer, french)


def test_numbers_are_kept(e5_tokenizer, french):
    assert {"▁1", "▁10", "▁2020", "▁100"} <= kept_tokens(e5_tokenizer, french)


def test_german_keeps_eszett_spellings_that_wordfreq_folds_to_ss(e5_tokenizer, german):
    kept = kept_tokens(e5_tokenizer, german)
    for word in ("Straße", "groß", "weiß", "heißt"):
        assert set(pieces_of(e5_tokenizer, f"Das ist {word}.", word)) <= kept, word
    assert any("ß" in token for token in kept)


def test_german_keeps_capitalised_nouns(e5_tokenizer, german):
    assert {"▁Haus", "▁Zeit", "▁Kinder"} <= kept_tokens(e5_tokenizer, german)


def test_greek_keeps_final_sigma_that_wordfreq_folds(e5_tokenizer):
    greek = wordfreq_statistics(e5_tokenizer, "el", top_n_words=5_000)
    kept = kept_tokens(e5_tokenizer, greek)
    assert {"▁της", "▁τους"} <= kept
    assert "▁τησ" not in kept


def test_chinese_keeps_traditional_spellings(e5_tokenizer):
    chinese = wordfreq_statistics(e5_tokenizer, "zh", top_n_words=5_000)
    kept = kept_tokens(e5_tokenizer, chinese)
    assert set(pieces_of(e5_tokenizer, "我們去學校。", "我們")) <= kept  # listed only as Simplified 我们
    assert set(pieces_of(e5_tokenizer, "這是什麼？", "什麼")) <= kept  # listed as 什么


def test_wordpiece_tokenizers_get_pieces_without_continuation_after_an_apostrophe(mbert_tokenizer):
    french = wordfreq_statistics(mbert_tokenizer, "fr", top_n_words=5_000)
    kept = kept_tokens(mbert_tokenizer, french)
    assert pieces_of(mbert_tokenizer, "J'aime le chocolat.", "aime") == ["aime"]
    assert {"aime", "école", "'", ",", "?", "Quand", "Elle"} <= kept


def test_more_words_per_line_keep_more_tokens(e5_tokenizer):
    short = wordfreq_statistics(e5_tokenizer, "en", top_n_words=2_000, words_per_line=20)
    long = wordfreq_statistics(e5_tokenizer, "en", top_n_words=2_000, words_per_line=200)
    assert len(kept_tokens(e5_tokenizer, long)) > len(kept_tokens(e5_tokenizer, short))
    assert np.all(long.line_counts >= short.line_counts)


def test_selection_covers_most_real_french_sentences(e5_tokenizer, french):
    # Measured 98% with the defaults (benchmarks/offline_coverage.py); the bar leaves room for retuning.
    kept = np.zeros(e5_tokenizer.get_vocab_size(with_added_tokens=True), dtype=bool)
    kept[french.line_counts >= THRESHOLD * french.n_lines] = True
    sentences = (TATOEBA / "fr.txt").read_text(encoding="utf-8").splitlines()
    encodings = e5_tokenizer.encode_batch(sentences, add_special_tokens=False)
    coverage = np.mean([kept[encoding.ids].all() for encoding in encodings])
    assert coverage >= 0.95


@pytest.mark.parametrize("language", ["th", "sw"])
def test_language_without_a_word_list_asks_for_a_corpus(e5_tokenizer, language):
    with pytest.raises(SelectionError, match=rf"no offline word list.*--corpus {language}=PATH"):
        wordfreq_statistics(e5_tokenizer, language)


def test_unknown_language_names_the_known_codes(e5_tokenizer):
    with pytest.raises(SelectionError, match="unknown language code 'xx'"):
        wordfreq_statistics(e5_tokenizer, "xx")


@pytest.mark.parametrize(("option", "value"), [("top_n_words", 0), ("words_per_line", 0.5)])
def test_out_of_range_options_are_named(e5_tokenizer, option, value):
    with pytest.raises(SelectionError, match=option):
        wordfreq_statistics(e5_tokenizer, "en", **{option: value})
