"""Fallback pieces: the single characters that let any word of a script split into kept pieces.

Uses the real multilingual-e5 (XLM-R Unigram) tokenizer, the real mBERT WordPiece vocabulary and real
Tatoeba sentences (shipped in langtrim.packager/data/text/tatoeba).
"""

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.packager.errors import SelectionError
from langtrim.packager.selection.fallback import character_script, fallback_ids
from langtrim.packager.selection.languages import get_language

TATOEBA = Path(str(files("langtrim.packager") / "data" / "text" / "tatoeba"))


def tokens(tokenizer: Tokenizer, ids: np.ndarray) -> set[str]:
    return {tokenizer.id_to_token(int(token_id)) for token_id in ids}


def special_ids(tokenizer: Tokenizer) -> list[int]:
    return [token_id for token_id, token in tokenizer.get_added_tokens_decoder().items() if token.special]


def restricted(tokenizer: Tokenizer, kept_ids: np.ndarray) -> Tokenizer:
    """The same tokenizer with only `kept_ids` in its vocabulary (a trimmed tokenizer, built here by hand)."""
    description = json.loads(tokenizer.to_str())
    model = description["model"]
    kept = sorted(set(kept_ids.tolist()) | set(special_ids(tokenizer)))
    if model["type"] == "Unigram":
        unk_piece = model["vocab"][model["unk_id"]][0]
        model["vocab"] = [model["vocab"][token_id] for token_id in kept]
        model["unk_id"] = [piece for piece, _ in model["vocab"]].index(unk_piece)
    else:
        by_id = {token_id: piece for piece, token_id in model["vocab"].items()}
        model["vocab"] = {by_id[token_id]: new_id for new_id, token_id in enumerate(kept)}
    description["added_tokens"] = []
    description["post_processor"] = None
    return Tokenizer.from_str(json.dumps(description))


def unknown_token_id(tokenizer: Tokenizer) -> int:
    return (
        tokenizer.token_to_id("<unk>")
        if tokenizer.token_to_id("<unk>") is not None
        else tokenizer.token_to_id("[UNK]")
    )


def test_ids_are_sorted_unique_int64(e5_tokenizer):
    ids = fallback_ids(e5_tokenizer, ["LATIN"])
    assert ids.dtype == np.int64
    assert np.all(np.diff(ids) > 0)


def test_unigram_keeps_a_letter_and_its_word_initial_form(e5_tokenizer):
    kept = tokens(e5_tokenizer, fallback_ids(e5_tokenizer, ["LATIN"]))
    assert {"é", "▁é", "q", "▁Q", "ß"} <= kept


def test_unigram_keeps_the_bare_metaspace(e5_tokenizer):
    assert "▁" in tokens(e5_tokenizer, fallback_ids(e5_tokenizer, ["CJK"]))


def test_wordpiece_keeps_a_letter_and_its_continuation_form(mbert_tokenizer):
    kept = tokens(mbert_tokenizer, fallback_ids(mbert_tokenizer, ["LATIN"]))
    assert {"é", "##é", "q", "##q"} <= kept


@pytest.mark.parametrize("tokenizer_name", ["e5_tokenizer", "mbert_tokenizer"])
def test_every_single_latin_letter_in_the_vocabulary_is_kept(request, tokenizer_name):
    tokenizer = request.getfixturevalue(tokenizer_name)
    latin_letters = {
        token_id
        for piece, token_id in tokenizer.get_vocab().items()
        if len(piece) == 1 and piece.isalpha() and character_script(piece) == "LATIN"
    }
    assert len(latin_letters) > 100
    assert latin_letters <= set(fallback_ids(tokenizer, ["LATIN"]).tolist())


def test_other_scripts_are_left_out(e5_tokenizer):
    kept = tokens(e5_tokenizer, fallback_ids(e5_tokenizer, ["LATIN"]))
    assert not {"ж", "的", "α", "ا"} & kept


def test_punctuation_digits_and_common_symbols_are_kept_for_any_script(e5_tokenizer):
    kept = tokens(e5_tokenizer, fallback_ids(e5_tokenizer, ["CYRILLIC"]))
    assert {",", ".", "?", "▁?", "!", "-", "«", "»", "(", "1", "▁7", "%", "€", "°"} <= kept
    assert "ж" in kept


def test_emoji_are_not_fallback_pieces(e5_tokenizer):
    assert not {"😂", "👍"} & tokens(e5_tokenizer, fallback_ids(e5_tokenizer, ["LATIN"]))


def test_katakana_prolonged_sound_mark_counts_as_katakana(e5_tokenizer):
    assert character_script("ー") == "KATAKANA"
    assert "ー" in tokens(e5_tokenizer, fallback_ids(e5_tokenizer, get_language("ja").scripts))


@pytest.mark.parametrize("tokenizer_name", ["e5_tokenizer", "mbert_tokenizer"])
@pytest.mark.parametrize("language", ["fr", "ru", "hi", "zh"])
def test_real_sentences_never_need_the_unknown_token_with_fallback_pieces_alone(
    request, tokenizer_name, language
):
    tokenizer = request.getfixturevalue(tokenizer_name)
    trimmed = restricted(tokenizer, fallback_ids(tokenizer, get_language(language).scripts))
    sentences = (TATOEBA / f"{language}.txt").read_text(encoding="utf-8").splitlines()
    originals = tokenizer.encode_batch(sentences, add_special_tokens=False)
    trimmed_encodings = trimmed.encode_batch(sentences, add_special_tokens=False)
    for sentence, original, encoding in zip(sentences, originals, trimmed_encodings, strict=True):
        if unknown_token_id(tokenizer) in original.ids:
            continue  # a character the full vocabulary lacks too
        assert unknown_token_id(trimmed) not in encoding.ids, sentence


def test_a_script_the_tokenizer_lacks_is_named(e5_tokenizer):
    with pytest.raises(SelectionError, match="no single-character piece of script.*LATN"):
        fallback_ids(e5_tokenizer, ["LATN"])


def test_all_scripts_fallback_keeps_the_characters_of_scripts_outside_the_languages(e5_tokenizer) -> None:
    from langtrim.packager.selection.choose import SelectionSettings, choose_tokens
    from langtrim.packager.selection.fallback import tokenizer_scripts
    from langtrim.packager.selection.languages import parse_languages
    from tests.support.stats import line_statistics

    scripts = tokenizer_scripts(e5_tokenizer)
    assert {"LATIN", "CYRILLIC", "GREEK", "ARABIC", "CJK", "DEVANAGARI"} <= set(scripts)
    french = (TATOEBA / "fr.txt").read_text(encoding="utf-8").splitlines()
    statistics = {"fr": line_statistics(e5_tokenizer, "fr", french)}
    every = choose_tokens(
        e5_tokenizer, parse_languages("fr"), statistics, SelectionSettings(fallback_all_scripts=True)
    )
    kept = tokens(e5_tokenizer, every.kept_ids)
    assert {"я", "▁я", "ж", "中"} <= kept and not {"я", "ж", "中"} & tokens(
        e5_tokenizer, fallback_ids(e5_tokenizer, ["LATIN"])
    )
    assert every.n_fallback > 10 * len(fallback_ids(e5_tokenizer, ["LATIN"]))
