"""`langtrim count`, and `trim` selecting from the statistics it writes: count once, select many times."""

import bz2
import json
from pathlib import Path

import numpy as np
import pytest

from langtrim.packager.counting.inputs import CorpusSpec
from langtrim.packager.counting.job import corpus_statistics
from langtrim.packager.counting.plan import count_corpus
from langtrim.packager.errors import SelectionError
from langtrim.packager.selection.choose import SelectionSettings, choose_tokens
from langtrim.packager.selection.languages import parse_languages
from langtrim.packager.selection.stats import TokenStats
from langtrim.packager.selection.threshold import frequent_token_ids
from tests.support.cli import run_cli


@pytest.fixture()
def texts(tmp_path: Path, sentences) -> dict[str, Path]:
    """Real French (plain) and German (.bz2) sentences, one a line."""
    fr = tmp_path / "fr.txt"
    fr.write_text("\n".join(sentences("fr")) + "\n", encoding="utf-8")
    de = tmp_path / "de.txt.bz2"
    de.write_bytes(bz2.compress(("\n".join(sentences("de")) + "\n").encode("utf-8")))
    return {"fr": fr, "de": de}


def test_count_writes_statistics_and_a_table(e5_tokenizer, texts, tmp_path, monkeypatch, capsys):
    out = tmp_path / "fr.npz"
    code, stdout, stderr = run_cli(
        ["count", "--corpus", f"fr={texts['fr']}", "--out", str(out)], monkeypatch, capsys
    )
    assert code == 0, stderr
    stats = TokenStats.load(out)
    expected = count_corpus(e5_tokenizer, [texts["fr"]], language="fr", out=tmp_path / "library.npz")
    assert stats.n_lines == expected.n_lines == 500
    assert np.array_equal(stats.line_counts, expected.line_counts)
    assert "token statistics" in stdout and "--corpus fr=" in stdout
    assert "lines/s" in stderr and "MB/s" in stderr  # the progress bar


def test_count_of_several_languages_writes_one_file_each_as_json(texts, tmp_path, monkeypatch, capsys):
    out = tmp_path / "stats"
    args = ["count", "--corpus", f"fr={texts['fr']}", "--corpus", f"de={texts['de']}", "--out", str(out)]
    code, stdout, stderr = run_cli([*args, "--json"], monkeypatch, capsys)
    assert code == 0, stderr
    rows = json.loads(stdout)
    assert [(row["language"], row["output"]) for row in rows] == [
        ("fr", str(out / "fr.npz")),
        ("de", str(out / "de.npz")),
    ]
    assert TokenStats.load(out / "de.npz").n_lines == rows[1]["lines_counted"] > 0


def test_count_on_a_local_dask_cluster_equals_counting_here(texts, tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    corpora = ["--corpus", f"fr={texts['fr']}", "--corpus", f"de={texts['de']}", "--shard-mb", "0.01"]
    code, _, stderr = run_cli(["count", *corpora, "--out", str(tmp_path / "here")], monkeypatch, capsys)
    assert code == 0, stderr
    code, _, stderr = run_cli(
        ["count", *corpora, "--out", str(tmp_path / "dask"), "--dask", "local:2"], monkeypatch, capsys
    )
    assert code == 0, stderr
    for language in ("fr", "de"):
        here, dask = (TokenStats.load(tmp_path / where / f"{language}.npz") for where in ("here", "dask"))
        assert dask.language == language and dask.n_lines == here.n_lines
        assert np.array_equal(dask.line_counts, here.line_counts)
        assert np.array_equal(dask.occurrences, here.occurrences)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--corpus", "fr={fr}"], "no output: pass --out"),
        (["--corpus", "{fr}", "--out", "x.npz"], "is not LANG=PATH"),
        (["--out", "x.npz"], "no corpus given"),
        (["--corpus", "xx={fr}", "--out", "x.npz"], "xx"),
        (
            ["--corpus", "fr={fr}", "--corpus", "de={de}", "--out", "x.npz"],
            "is one file but --corpus names 2",
        ),
        (
            ["--corpus", "fr={fr}", "--out", "x.npz", "--dask", "local", "--dask-scheduler", "tcp://h:1"],
            "not both",
        ),
        (["--corpus", "fr={fr}", "--out", "x.npz", "--dask", "tcp://h:1"], "use --dask-scheduler"),
        (
            ["--corpus", "fr={fr}", "--out", "x.npz", "--min-line-chars", "-1"],
            "--min-line-chars -1 is out of range",
        ),
        (["--corpus", "fr={missing}", "--out", "x.npz"], "missing.txt' does not exist"),
    ],
)
def test_bad_count_input_gets_one_clear_line(args, message, texts, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    paths = {"fr": texts["fr"], "de": texts["de"], "missing": tmp_path / "missing.txt"}
    code, _, stderr = run_cli(["count", *[arg.format(**paths) for arg in args]], monkeypatch, capsys)
    assert code == 1
    assert message in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


def test_a_truncated_compressed_corpus_gets_one_clear_line(texts, tmp_path, monkeypatch, capsys):
    data = texts["de"].read_bytes()
    broken = tmp_path / "cut" / "de.txt.bz2"
    broken.parent.mkdir()
    broken.write_bytes(data[: len(data) * 2 // 3])
    code, _, stderr = run_cli(
        ["count", "--corpus", f"de={broken}", "--out", str(tmp_path / "de.npz")], monkeypatch, capsys
    )
    assert code == 1, stderr
    assert "de.txt.bz2' cannot be read as bz2" in stderr and "truncated or corrupt" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "de.npz").exists()


def test_an_existing_statistics_file_is_replaced_only_with_force(texts, tmp_path, monkeypatch, capsys):
    args = ["count", "--corpus", f"fr={texts['fr']}", "--out", str(tmp_path / "fr.npz")]
    assert run_cli(args, monkeypatch, capsys)[0] == 0
    code, _, stderr = run_cli(args, monkeypatch, capsys)
    assert code == 1 and "fr.npz' exists" in stderr and "--force" in stderr
    assert run_cli([*args, "--force"], monkeypatch, capsys)[0] == 0


def test_trim_corpus_and_count_then_trim_select_the_same_tokens(e5_tokenizer, sentences, tmp_path):
    """`trim --corpus fr=x.txt` and `count` then `trim --corpus fr=x.npz`, both with their defaults."""
    corpus, stats = tmp_path / "fr.txt", tmp_path / "fr.npz"
    corpus.write_text("\n".join([*sentences("fr"), "Oui.", "Non", "Ah !"]) + "\n", encoding="utf-8")
    count_corpus(e5_tokenizer, [corpus], language="fr", out=stats)
    from_text = corpus_statistics(e5_tokenizer, CorpusSpec("fr", (str(corpus),)))
    from_file = corpus_statistics(e5_tokenizer, CorpusSpec("fr", (str(stats),)))
    assert (from_file.n_lines, from_file.n_skipped_lines) == (from_text.n_lines, from_text.n_skipped_lines)
    assert from_text.n_skipped_lines >= 3  # both skip the lines under the one minimum length
    languages = parse_languages("fr")
    for threshold in (0.0005, 0.02):
        settings = SelectionSettings(threshold=threshold, fallback=False)
        text_selection = choose_tokens(e5_tokenizer, languages, {"fr": from_text}, settings)
        file_selection = choose_tokens(e5_tokenizer, languages, {"fr": from_file}, settings)
        assert np.array_equal(file_selection.kept_ids, text_selection.kept_ids), threshold
        assert file_selection.sources["fr"].startswith(f"token statistics {stats}")


def test_selection_refuses_statistics_of_another_tokenizer(e5_tokenizer, mbert_tokenizer, texts, tmp_path):
    stats = tmp_path / "fr.npz"
    count_corpus(e5_tokenizer, [texts["fr"]], language="fr", out=stats)
    with pytest.raises(SelectionError, match=r"fr\.npz' were counted with another tokenizer"):
        corpus_statistics(mbert_tokenizer, CorpusSpec("fr", (str(stats),)))


def test_statistics_and_text_of_one_language_add_up(e5_tokenizer, texts, tmp_path):
    stats = tmp_path / "fr.npz"
    count_corpus(e5_tokenizer, [texts["fr"]], language="fr", out=stats)
    both = corpus_statistics(e5_tokenizer, CorpusSpec("fr", (str(stats), str(texts["fr"]))))
    alone = TokenStats.load(stats)
    assert both.n_lines == 2 * alone.n_lines
    assert np.array_equal(both.line_counts, 2 * alone.line_counts)


def test_trim_selects_from_statistics_files(tiny_models, texts, tmp_path, monkeypatch, capsys):
    stats = tmp_path / "fr.npz"
    code, _, stderr = run_cli(
        ["count", str(tiny_models["xlmr"]), "--corpus", f"fr={texts['fr']}", "--out", str(stats)],
        monkeypatch,
        capsys,
    )
    assert code == 0, stderr
    args = ["trim", str(tiny_models["xlmr"]), "-l", "fr", "--corpus", f"fr={stats}", "--threshold", "0.01"]
    code, stdout, stderr = run_cli([*args, "--dry-run", "--json"], monkeypatch, capsys)
    assert code == 0, stderr
    report = json.loads(stdout)
    counted = TokenStats.load(stats)
    assert report["tokens_per_language"]["fr"] == len(frequent_token_ids(counted, threshold=0.01))
    assert report["sources"]["fr"].startswith(f"token statistics {stats}")
