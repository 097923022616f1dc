"""`trim`/`pack --corpus` read corpora with count's reader and counting: every input kind, the same errors.

`corpus_statistics` is what the trim job calls for each language's `--corpus` values.
"""

import bz2
import gzip
from collections import Counter

import numpy as np
import pytest

from langtrim.packager.counting.inputs import CorpusSpec, iter_lines, parse_corpus_options
from langtrim.packager.counting.job import corpus_statistics
from langtrim.packager.counting.plan import CountSettings
from langtrim.packager.errors import SelectionError
from langtrim.runtime.errors import UsageError


def _spec(language: str, *paths) -> CorpusSpec:
    return CorpusSpec(language, tuple(str(path) for path in paths))


def test_line_counts_equal_a_set_per_line_count(e5_tokenizer, sentences, tmp_path):
    lines = sentences("de")
    corpus = tmp_path / "de.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats = corpus_statistics(e5_tokenizer, _spec("de", corpus), settings=CountSettings(min_line_chars=1))
    reference: Counter[int] = Counter()
    for line in lines:
        reference.update(set(e5_tokenizer.encode(line, add_special_tokens=False).ids))
    assert stats.n_lines == len(lines)
    assert {i: int(c) for i, c in enumerate(stats.line_counts) if c} == dict(reference)


def test_blank_and_short_lines_are_not_counted(e5_tokenizer, tmp_path):
    corpus = tmp_path / "en.txt"
    corpus.write_text("hello there\n\n   \nabc\nworld peace\n", encoding="utf-8")
    stats = corpus_statistics(e5_tokenizer, _spec("en", corpus))
    assert (stats.n_lines, stats.n_skipped_lines) == (2, 3)


def test_a_directory_of_compressed_files_is_one_corpus(e5_tokenizer, sentences, tmp_path):
    folder = tmp_path / "fr"
    folder.mkdir()
    lines = sentences("fr")
    (folder / "a.txt.gz").write_bytes(gzip.compress(("\n".join(lines[:200]) + "\n").encode()))
    (folder / "b.txt.bz2").write_bytes(bz2.compress(("\n".join(lines[200:]) + "\n").encode()))
    plain = tmp_path / "fr.txt"
    plain.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from_folder = corpus_statistics(e5_tokenizer, _spec("fr", folder))
    from_file = corpus_statistics(e5_tokenizer, _spec("fr", plain))
    assert from_folder.n_lines == from_file.n_lines
    assert np.array_equal(from_folder.line_counts, from_file.line_counts)


def test_unreadable_corpora_are_refused_naming_the_file(e5_tokenizer, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("déjà vu, encore une fois\n".encode("latin-1"))
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(gzip.compress(b"hello there\nworld peace\n" * 50)[:-12])
    for path, message in [
        (tmp_path / "missing.txt", "missing.txt' does not exist"),
        (empty, r"holds no text \(.*empty.txt \(0 bytes\)\)"),
        (latin1, "latin1.txt' is not UTF-8"),
        (broken, "broken.txt.gz' cannot be read as gzip"),
    ]:
        with pytest.raises(SelectionError, match=message):
            corpus_statistics(e5_tokenizer, _spec("fr", path))


def test_corpus_options_are_lang_equals_path_grouped_by_language(tmp_path):
    specs = parse_corpus_options(["fr=a.txt", "de=b.txt", "FR=~/c.txt", "de=s3://bucket//d.txt"])
    assert [spec.language for spec in specs] == ["fr", "de"]
    assert specs[0].paths[0] == "a.txt" and not specs[0].paths[1].startswith("~")
    assert specs[1].paths == ("b.txt", "s3://bucket//d.txt")  # a URL keeps its spelling


@pytest.mark.parametrize(
    ("value", "message"),
    [("fr.txt", "is not LANG=PATH"), ("=x", "is not LANG=PATH"), ("xx=a.txt", "unknown language code 'xx'")],
)
def test_bad_corpus_options_are_refused(value, message):
    with pytest.raises((UsageError, SelectionError), match=message):
        parse_corpus_options([value], "--eval-text")


def test_eval_text_lines_come_back_in_order(tmp_path):
    path = tmp_path / "fr.txt.gz"
    path.write_bytes(gzip.compress(b"un\r\ndeux\n\ntrois"))
    assert list(iter_lines([str(path)])) == ["un", "deux", "", "trois"]


def test_a_line_of_megabytes_is_skipped_not_tokenized(e5_tokenizer, sentences, tmp_path):
    """A dump without line breaks made the tokenizer hold many times its size; such a line is not a sentence."""
    corpus = tmp_path / "fr.txt"
    lines = sentences("fr")[:20]
    corpus.write_text("\n".join([*lines[:10], "mot " * 250_000, *lines[10:]]) + "\n", encoding="utf-8")
    stats = corpus_statistics(e5_tokenizer, _spec("fr", corpus))
    expected = corpus_statistics(e5_tokenizer, _spec("fr", _write(tmp_path / "plain.txt", lines)))
    assert (stats.n_lines, stats.n_skipped_lines) == (expected.n_lines, expected.n_skipped_lines + 1)
    assert np.array_equal(stats.line_counts, expected.line_counts)


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
