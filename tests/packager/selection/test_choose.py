"""Choosing the kept tokens per language: from a corpus's statistics, the paper's lists, or kept texts."""

import pytest

from langtrim.packager.errors import SelectionError
from langtrim.packager.selection.choose import SelectionSettings, choose_tokens
from langtrim.packager.selection.languages import get_language, parse_languages
from langtrim.packager.selection.paper import PAPER_LANGUAGES, paper_special_ids, paper_token_ids
from langtrim.runtime.errors import UsageError
from tests.support.stats import line_statistics


def test_paper_lists_reproduce_table_1(mbert_tokenizer):
    assert len(paper_token_ids(mbert_tokenizer, "en")) == 28_458
    selection = choose_tokens(
        mbert_tokenizer,
        parse_languages(",".join(PAPER_LANGUAGES)),
        settings=SelectionSettings(source="paper", fallback=False),
    )
    assert selection.per_language["en"] == 28_458
    assert len(selection.kept_ids) == 71_577
    assert set(paper_special_ids(mbert_tokenizer)) <= set(selection.kept_ids.tolist())


def test_paper_source_is_refused_for_another_vocabulary(e5_tokenizer):
    with pytest.raises(SelectionError, match="mBERT"):
        choose_tokens(e5_tokenizer, [get_language("en")], settings=SelectionSettings(source="paper"))


def test_corpus_selection_keeps_the_corpus_tokens(e5_tokenizer, sentences):
    statistics = {"fr": line_statistics(e5_tokenizer, "fr", sentences("fr"))}
    selection = choose_tokens(
        e5_tokenizer, [get_language("fr")], statistics, SelectionSettings(threshold=0.0, fallback=False)
    )
    every_token = {i for s in sentences("fr") for i in e5_tokenizer.encode(s, add_special_tokens=False).ids}
    assert every_token <= set(selection.kept_ids.tolist())
    assert selection.sources["fr"] == "test (500 lines)"


def test_a_language_without_statistics_falls_back_to_the_offline_estimate(e5_tokenizer, sentences):
    statistics = {"fr": line_statistics(e5_tokenizer, "fr", sentences("fr"))}
    selection = choose_tokens(e5_tokenizer, parse_languages("fr,de"), statistics)
    assert selection.sources["de"].startswith("wordfreq de word list")
    assert selection.per_language["de"] > 1000


def test_kept_texts_are_always_kept(e5_tokenizer):
    selection = choose_tokens(
        e5_tokenizer,
        [get_language("de")],
        {"de": line_statistics(e5_tokenizer, "de", ["Guten Tag"])},
        SelectionSettings(threshold=0.0, fallback=False, keep_texts=("query: ",)),
    )
    prefix = e5_tokenizer.encode("query: ", add_special_tokens=False).ids  # ▁que ry :
    assert set(prefix) <= set(selection.kept_ids.tolist())


def test_unknown_language_lists_the_known_ones():
    with pytest.raises(SelectionError, match="unknown language code 'xx': use one of .*en.*fr"):
        parse_languages("en,xx")


def test_corpus_for_a_language_not_selected_is_refused(e5_tokenizer):
    with pytest.raises(SelectionError, match="--corpus it=... names a language not in --languages"):
        choose_tokens(
            e5_tokenizer, [get_language("fr")], {"it": line_statistics(e5_tokenizer, "it", ["Ciao"])}
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("source", "corpus", "--source 'corpus' is not one of"),
        ("threshold", 2.0, "threshold 2.0 is out of range"),
    ],
)
def test_bad_settings_are_refused_when_made(field, value, message):
    with pytest.raises((UsageError, SelectionError), match=message):
        SelectionSettings(**{field: value})
