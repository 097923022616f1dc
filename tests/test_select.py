"""Token selection: line counts, thresholds, caps, unions and the paper's published lists."""

import gzip
from collections import Counter

import numpy as np
import pytest

from langtrim.packager.counting.corpus import CorpusSpec, iter_corpus_lines, parse_corpus_option
from langtrim.packager.errors import SelectionError
from langtrim.packager.selection.choose import SelectionSettings, choose_tokens
from langtrim.packager.selection.frequencies import LineFrequencies
from langtrim.packager.selection.languages import get_language, parse_languages
from langtrim.packager.selection.paper import PAPER_LANGUAGES, paper_special_ids, paper_token_ids
from langtrim.packager.selection.threshold import count_line_frequencies, frequent_token_ids, union_selection


def test_line_counts_equal_a_straightforward_count(e5_tokenizer, sentences):
    lines = sentences("de")
    frequencies = count_line_frequencies(e5_tokenizer, lines, language="de", source="test")
    reference: Counter[int] = Counter()
    for line in lines:
        reference.update(set(e5_tokenizer.encode(line, add_special_tokens=False).ids))
    assert frequencies.n_lines == len(lines)
    assert {i: int(c) for i, c in enumerate(frequencies.line_counts) if c} == dict(reference)


def test_a_token_twice_in_a_line_counts_once(e5_tokenizer):
    frequencies = count_line_frequencies(e5_tokenizer, ["la la la", "la"], language="fr", source="test")
    assert frequencies.line_counts[e5_tokenizer.token_to_id("▁la")] == 2


def test_blank_lines_are_not_counted(e5_tokenizer):
    frequencies = count_line_frequencies(
        e5_tokenizer, ["hello", "", "   ", "world"], language="en", source="t"
    )
    assert frequencies.n_lines == 2


def _frequencies(counts: list[int], n_lines: int) -> LineFrequencies:
    return LineFrequencies("en", n_lines, np.asarray(counts, dtype=np.int64), "test")


def test_threshold_keeps_tokens_in_at_least_that_fraction_of_lines():
    frequencies = _frequencies([0, 5, 10, 20, 1], n_lines=100)
    assert frequent_token_ids(frequencies, threshold=0.1).tolist() == [2, 3]
    assert frequent_token_ids(frequencies, threshold=0.0).tolist() == [1, 2, 3, 4]


def test_cap_keeps_the_most_frequent_tokens():
    frequencies = _frequencies([0, 5, 10, 20, 1], n_lines=100)
    assert frequent_token_ids(frequencies, threshold=0.0, max_tokens=2).tolist() == [2, 3]


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_threshold_out_of_range_is_refused(threshold):
    with pytest.raises(SelectionError, match="threshold .* out of range"):
        frequent_token_ids(_frequencies([1], 1), threshold=threshold)


def test_union_always_keeps_special_tokens():
    selection = union_selection(
        {"en": np.array([5, 7]), "fr": np.array([7, 9])},
        sources={},
        special_ids=[0, 1],
        fallback_ids=[2],
        original_vocab_size=10,
    )
    assert selection.kept_ids.tolist() == [0, 1, 2, 5, 7, 9]
    assert (selection.n_special, selection.n_fallback) == (2, 1)


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


def test_corpus_selection_keeps_the_corpus_tokens(e5_tokenizer, sentences, tmp_path):
    corpus = tmp_path / "fr.txt.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as stream:
        stream.write("\n".join(sentences("fr")))
    selection = choose_tokens(
        e5_tokenizer,
        [get_language("fr")],
        [CorpusSpec("fr", corpus)],
        SelectionSettings(threshold=0.0, fallback=False),
    )
    every_token = {i for s in sentences("fr") for i in e5_tokenizer.encode(s, add_special_tokens=False).ids}
    assert every_token <= set(selection.kept_ids.tolist())
    assert "500 lines" in selection.sources["fr"]


def test_kept_texts_are_always_kept(e5_tokenizer, sentences, tmp_path):
    corpus = tmp_path / "de.txt"
    corpus.write_text("Guten Tag\n", encoding="utf-8")
    selection = choose_tokens(
        e5_tokenizer,
        [get_language("de")],
        [CorpusSpec("de", corpus)],
        SelectionSettings(threshold=0.0, fallback=False, keep_texts=("query: ",)),
    )
    prefix = e5_tokenizer.encode("query: ", add_special_tokens=False).ids  # ▁que ry :
    assert set(prefix) <= set(selection.kept_ids.tolist())


def test_unknown_language_lists_the_known_ones():
    with pytest.raises(SelectionError, match="unknown language code 'xx': use one of .*en.*fr"):
        parse_languages("en,xx")


def test_corpus_for_a_language_not_selected_is_refused(e5_tokenizer, tmp_path):
    corpus = tmp_path / "it.txt"
    corpus.write_text("Ciao\n", encoding="utf-8")
    with pytest.raises(SelectionError, match="not in --languages"):
        choose_tokens(e5_tokenizer, [get_language("fr")], [CorpusSpec("it", corpus)])


def test_corpus_option_needs_lang_equals_path():
    with pytest.raises(SelectionError, match="LANG=PATH"):
        parse_corpus_option("fr.txt")


def test_missing_empty_and_non_utf8_corpora_are_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("déjà vu\n".encode("latin-1"))
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(gzip.compress(b"hello\nworld\n")[:-12])
    for path, message in [
        (tmp_path / "missing.txt", "does not exist"),
        (empty, "is empty"),
        (latin1, "is not UTF-8"),
        (broken, "cannot be read"),
    ]:
        with pytest.raises(SelectionError, match=message):
            list(iter_corpus_lines(path))
