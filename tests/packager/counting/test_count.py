"""Counting at corpus scale: streamed, sharded, compressed, Parquet, resumable; statistics as files."""

import bz2
import gzip
import lzma
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.packager.counting.plan import (
    CountProgress,
    CountSettings,
    count_corpus,
    count_in_memory,
    plan_shards,
)
from langtrim.packager.errors import OutputError, SelectionError
from langtrim.packager.selection.stats import TokenStats, load_checked, merge_all
from tests.support.counting import assert_same_counts, count_french


def reference_counts(
    tokenizer: Tokenizer, lines: list[str], min_line_chars: int
) -> tuple[int, Counter, Counter]:
    """The paper's loop, on the fast tokenizer: one Python set per line."""
    n_lines, per_line, total = 0, Counter(), Counter()
    for line in lines:
        if len(line.strip()) >= min_line_chars:
            ids = tokenizer.encode(line, add_special_tokens=False).ids
            n_lines += 1
            per_line.update(set(ids))
            total.update(ids)
    return n_lines, per_line, total


def nonzero(counts: np.ndarray) -> dict[int, int]:
    return {int(i): int(counts[i]) for i in np.flatnonzero(counts)}


@pytest.fixture(scope="module")
def mixed_lines(sentences) -> list[str]:
    """Real French and Russian sentences, with blank, short and whitespace-padded lines among them."""
    lines = sentences("fr")[:150] + ["", "Oui.", "   ", "  Bonjour tout le monde  ", "abcd", "abcde"]
    return lines + sentences("ru")[:150]


@pytest.fixture()
def corpus(tmp_path: Path, mixed_lines: list[str]) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(mixed_lines) + "\n", encoding="utf-8")
    return path


def count(tokenizer: Tokenizer, inputs, tmp_path: Path, name: str = "stats.npz", **options) -> TokenStats:
    return count_french(tokenizer, inputs, tmp_path / name, **options)


@pytest.mark.parametrize("name", ["e5_tokenizer", "mbert_tokenizer"])  # joined lines; the word cache
def test_counts_equal_a_set_per_line_reference(name, corpus, mixed_lines, tmp_path, request):
    tokenizer = request.getfixturevalue(name)
    stats = count(tokenizer, corpus, tmp_path)
    n_lines, per_line, total = reference_counts(tokenizer, mixed_lines, 5)
    assert stats.n_lines == n_lines
    assert stats.n_lines + stats.n_skipped_lines == len(mixed_lines)
    assert nonzero(stats.line_counts) == dict(per_line)
    assert nonzero(stats.occurrences) == dict(total)
    assert stats.n_bytes == corpus.stat().st_size


def test_an_in_memory_count_equals_the_written_one(e5_tokenizer, corpus, tmp_path):
    """`trim --corpus` counts in memory (`count_in_memory`) exactly what `langtrim count` writes."""
    stats = count(e5_tokenizer, corpus, tmp_path, min_line_chars=1)
    in_memory = count_in_memory(
        e5_tokenizer, [corpus], language="fr", settings=CountSettings(min_line_chars=1)
    )
    assert_same_counts(in_memory, stats)


def test_default_minimum_follows_the_papers_len_line_above_5(e5_tokenizer, tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("abcd\nabcde\n    abcd    \nabcdef\n", encoding="utf-8")
    stats = count(e5_tokenizer, path, tmp_path)
    # The paper keeps len(line) > 5 with the newline still on: "abcde\n" (5 characters) stays, "abcd\n" goes.
    assert (stats.n_lines, stats.n_skipped_lines) == (2, 2)


def test_a_token_twice_in_a_line_counts_once_but_occurs_twice(e5_tokenizer, tmp_path):
    path = tmp_path / "la.txt"
    path.write_text("la la la la\nla vie est belle\n", encoding="utf-8")
    stats = count(e5_tokenizer, path, tmp_path)
    la = e5_tokenizer.token_to_id("▁la")
    assert (stats.line_counts[la], stats.occurrences[la]) == (2, 5)


def test_sharded_counts_equal_a_single_pass(e5_tokenizer, corpus, tmp_path):
    single = count(e5_tokenizer, corpus, tmp_path, "single.npz")
    sharded = count(e5_tokenizer, corpus, tmp_path, "sharded.npz", shard_bytes=997)
    assert len(plan_shards([corpus], shard_bytes=997)[0]) > 10
    assert_same_counts(sharded, single)


BOUNDARY_LINES = ["Le chat dort.", "", "Un très long paragraphe " * 8, "é", "Fin du texte à la fin, enfin."]


@pytest.fixture(scope="module")
def small_tokenizer(e5_tokenizer) -> Tokenizer:
    """The e5 tokenizer trimmed to the pieces of BOUNDARY_LINES: same segmentation, a vocabulary of ~40.

    Tests that write hundreds of shard checkpoints use it; with 250k tokens each checkpoint holds 4 MB.
    """
    from langtrim.packager.models.tokenizer import special_token_ids, unigram_keep_ids
    from langtrim.packager.trim.tokenizer_remap import remap_tokenizer

    pieces = {i for line in BOUNDARY_LINES for i in e5_tokenizer.encode(line, add_special_tokens=False).ids}
    kept = sorted(pieces | set(special_token_ids(e5_tokenizer)) | set(unigram_keep_ids(e5_tokenizer)))
    trimmed, _ = remap_tokenizer(e5_tokenizer, np.asarray(kept))
    assert trimmed.get_vocab_size(with_added_tokens=True) < 100
    return trimmed


def _boundary_file(tmp_path: Path, line_end: str, trailing: bool) -> Path:
    path = tmp_path / "lines.txt"
    path.write_bytes((line_end.join(BOUNDARY_LINES) + (line_end if trailing else "")).encode("utf-8"))
    return path


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("trailing", [True, False], ids=["trailing-newline", "no-trailing-newline"])
def test_byte_range_shards_read_every_byte_exactly_once(tmp_path, line_end, trailing):
    from langtrim.packager.counting.inputs import text_blocks

    path = _boundary_file(tmp_path, line_end, trailing)
    data = path.read_bytes()
    for shard_bytes in range(1, len(data) + 2):
        shards, _ = plan_shards([path], shard_bytes=shard_bytes)
        blocks = [text for shard in shards for text, _, _ in text_blocks(shard, "text")]
        assert "".join(blocks).encode("utf-8") == data, shard_bytes
        assert all(block.endswith("\n") for block in blocks[:-1]), shard_bytes


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("trailing", [True, False], ids=["trailing-newline", "no-trailing-newline"])
def test_byte_range_shards_count_every_line_exactly_once(small_tokenizer, tmp_path, line_end, trailing):
    path = _boundary_file(tmp_path, line_end, trailing)
    n_lines, per_line, _ = reference_counts(small_tokenizer, BOUNDARY_LINES, 0)
    for shard_bytes in (3, 16, 10_000):  # with 3, most shards own no line start
        stats = count(
            small_tokenizer, path, tmp_path, f"s{shard_bytes}.npz", shard_bytes=shard_bytes, min_line_chars=0
        )
        assert stats.n_lines == n_lines == len(BOUNDARY_LINES), shard_bytes
        assert nonzero(stats.line_counts) == dict(per_line), shard_bytes
        assert stats.n_bytes == path.stat().st_size


def _zstd(data: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor().compress(data)


COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress, ".zst": _zstd}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_files_count_like_plain_text(e5_tokenizer, corpus, tmp_path, suffix):
    compressed = tmp_path / f"corpus.txt{suffix}"
    compressed.write_bytes(COMPRESSORS[suffix](corpus.read_bytes()))
    assert_same_counts(
        count(e5_tokenizer, compressed, tmp_path, "c.npz"), count(e5_tokenizer, corpus, tmp_path)
    )


def test_concatenated_gzip_members_and_zstd_frames_are_read_to_the_end(e5_tokenizer, corpus, tmp_path):
    data = corpus.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    for suffix in (".gz", ".zst"):
        path = tmp_path / f"two-parts.txt{suffix}"
        path.write_bytes(COMPRESSORS[suffix](data[:half]) + COMPRESSORS[suffix](data[half:]))
        stats = count(e5_tokenizer, path, tmp_path, f"two{suffix}.npz")
        assert_same_counts(stats, count(e5_tokenizer, corpus, tmp_path, f"plain{suffix}.npz"))


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_a_truncated_compressed_file_is_a_clear_error(e5_tokenizer, corpus, tmp_path, suffix):
    compressed = COMPRESSORS[suffix](corpus.read_bytes() * 20)
    path = tmp_path / f"cut.txt{suffix}"
    path.write_bytes(compressed[: len(compressed) * 2 // 3])
    with pytest.raises(SelectionError, match=r"cut\.txt.* truncated or corrupt"):
        count(e5_tokenizer, path, tmp_path)


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_a_corrupt_compressed_file_is_a_clear_error(e5_tokenizer, tmp_path, suffix):
    path = tmp_path / f"not-really.txt{suffix}"
    path.write_bytes(b"this is plain text, not compressed at all\n" * 50)
    with pytest.raises(SelectionError, match=r"not-really\.txt.* cannot be read as .*corrupt"):
        count(e5_tokenizer, path, tmp_path)


def test_text_that_is_not_utf8_is_a_clear_error(e5_tokenizer, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Première ligne correcte\nÉté à Paris\n".encode("latin-1"))
    # "Premi\xe8re": the first byte that is not UTF-8 is the sixth.
    with pytest.raises(SelectionError, match=r"latin1\.txt.* is not UTF-8 text \(byte 5\)"):
        count(e5_tokenizer, path, tmp_path)


def test_text_that_is_not_utf8_is_located_in_the_file_whatever_the_shard(e5_tokenizer, tmp_path):
    path = tmp_path / "mixed.txt"
    good = "Une première ligne correcte.\nUne deuxième ligne correcte.\n".encode()
    path.write_bytes(good + "Été à Paris\n".encode("latin-1"))
    with pytest.raises(SelectionError, match=rf"mixed\.txt.* is not UTF-8 text \(byte {len(good)}\)"):
        count(e5_tokenizer, path, tmp_path, shard_bytes=10)


def test_an_empty_corpus_is_a_clear_error(e5_tokenizer, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(SelectionError, match=r"corpus for 'fr' is empty"):
        count(e5_tokenizer, tmp_path / "empty.txt", tmp_path)


def test_a_corpus_of_only_short_lines_is_a_clear_error(e5_tokenizer, tmp_path):
    (tmp_path / "short.txt").write_text("a\nbb\n\n", encoding="utf-8")
    with pytest.raises(
        SelectionError,
        match=r"no line .* has from 5 to 100,000 characters \(3 shorter or longer lines read\)",
    ):
        count(e5_tokenizer, tmp_path / "short.txt", tmp_path)
    assert not (tmp_path / "stats.npz").exists()


def test_a_missing_input_is_a_clear_error(e5_tokenizer, tmp_path):
    with pytest.raises(SelectionError, match=r"nowhere\.txt' does not exist"):
        count(e5_tokenizer, tmp_path / "nowhere.txt", tmp_path)


def test_an_existing_output_is_not_overwritten_unless_asked(e5_tokenizer, corpus, tmp_path):
    count(e5_tokenizer, corpus, tmp_path)
    with pytest.raises(OutputError, match=r"stats\.npz' exists"):
        count(e5_tokenizer, corpus, tmp_path)
    count(e5_tokenizer, corpus, tmp_path, overwrite=True)


def test_a_directory_counts_its_files_and_skips_hidden_and_underscore_names(e5_tokenizer, corpus, tmp_path):
    folder = tmp_path / "dump"
    (folder / "part").mkdir(parents=True)
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "a.txt").write_text("".join(lines[:100]), encoding="utf-8")
    (folder / "part" / "b.txt.gz").write_bytes(gzip.compress("".join(lines[100:]).encode()))
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".notes.txt").write_text("des notes privées qui ne comptent pas\n", encoding="utf-8")
    stats = count(e5_tokenizer, folder, tmp_path, "dir.npz")
    assert_same_counts(stats, count(e5_tokenizer, corpus, tmp_path))
    assert [item.split(" (")[0] for item in stats.inputs] == [
        str(folder / "a.txt"),
        str(folder / "part" / "b.txt.gz"),
    ]


def _write_parquet(
    path: Path, values: list[str | None], column: str = "text", row_group_size: int = 40
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"id": list(range(len(values))), column: pa.array(values, type=pa.string())})
    pq.write_table(table, path, row_group_size=row_group_size)


def test_parquet_text_column_counts_like_the_same_lines_in_a_text_file(e5_tokenizer, corpus, tmp_path):
    lines = corpus.read_text(encoding="utf-8").splitlines()
    # Rows hold one or two lines (a value with paragraphs is split like a file); nulls are skipped.
    values: list[str | None] = [f"{a}\n{b}" for a, b in zip(lines[0:100:2], lines[1:100:2], strict=True)]
    values += [None, *lines[100:]]
    _write_parquet(tmp_path / "corpus.parquet", values)
    shards, _ = plan_shards([tmp_path / "corpus.parquet"], shard_bytes=2000)
    assert len(shards) > 1 and all(shard.kind == "parquet" for shard in shards)
    stats = count(e5_tokenizer, tmp_path / "corpus.parquet", tmp_path, "p.npz", shard_bytes=2000)
    expected = count(e5_tokenizer, corpus, tmp_path)
    assert (stats.n_lines, stats.n_skipped_lines) == (expected.n_lines, expected.n_skipped_lines)
    assert np.array_equal(stats.line_counts, expected.line_counts)
    assert np.array_equal(stats.occurrences, expected.occurrences)


def test_parquet_without_the_named_column_is_a_clear_error(e5_tokenizer, tmp_path):
    _write_parquet(tmp_path / "docs.parquet", ["Une phrase en français."], column="body")
    with pytest.raises(SelectionError, match=r"docs\.parquet' has no column 'text' \(it has id, body\)"):
        count(e5_tokenizer, tmp_path / "docs.parquet", tmp_path)
    stats = count(e5_tokenizer, tmp_path / "docs.parquet", tmp_path, text_column="body")
    assert stats.n_lines == 1


def test_a_column_that_is_not_text_is_a_clear_error(e5_tokenizer, tmp_path):
    _write_parquet(tmp_path / "docs.parquet", ["Une phrase en français."])
    with pytest.raises(SelectionError, match=r"column 'id' .* holds int64, not text"):
        count(e5_tokenizer, tmp_path / "docs.parquet", tmp_path, text_column="id")


def test_a_file_that_is_not_parquet_is_a_clear_error(e5_tokenizer, tmp_path):
    (tmp_path / "fake.parquet").write_text("not parquet\n", encoding="utf-8")
    with pytest.raises(SelectionError, match=r"fake\.parquet' is not a readable Parquet file"):
        count(e5_tokenizer, tmp_path / "fake.parquet", tmp_path)


def test_fsspec_urls_count_like_local_files(e5_tokenizer, corpus, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    data = corpus.read_bytes()
    cut = data.index(b"\n", 5000) + 1  # two files with the same lines as the corpus
    memory.pipe("/langtrim-test/dump/a.txt", data[:cut])
    memory.pipe("/langtrim-test/dump/b.txt.gz", gzip.compress(data[cut:]))
    try:
        from_memory = count(e5_tokenizer, "memory://langtrim-test/dump", tmp_path, "m.npz", shard_bytes=1000)
        from_file_url = count(e5_tokenizer, f"file://{corpus}", tmp_path, "f.npz")
    finally:
        memory.rm("/langtrim-test", recursive=True)
    assert from_memory.inputs[0].startswith("memory://langtrim-test/dump/a.txt")
    assert_same_counts(from_memory, count(e5_tokenizer, corpus, tmp_path))
    assert_same_counts(from_file_url, count(e5_tokenizer, corpus, tmp_path, "again.npz"))


class Interrupt(Exception):
    pass


def interrupt_after(shards: int, seen: list[CountProgress]):
    def progress(report: CountProgress) -> None:
        seen.append(report)
        if report.shards_done >= shards:
            raise Interrupt

    return progress


def test_an_interrupted_count_resumes_without_recounting_finished_shards(e5_tokenizer, corpus, tmp_path):
    expected = count(e5_tokenizer, corpus, tmp_path, "expected.npz", shard_bytes=2000)
    out = tmp_path / "fr.npz"
    first: list[CountProgress] = []
    with pytest.raises(Interrupt):
        count_french(e5_tokenizer, corpus, out, progress=interrupt_after(3, first), shard_bytes=2000)
    assert not out.exists() and len(list((tmp_path / "fr.npz.partial").glob("shard-*.npz"))) == 3

    second: list[CountProgress] = []
    stats = count_french(e5_tokenizer, corpus, out, progress=second.append, shard_bytes=2000)
    assert second[0].shards_resumed == 3 and second[0].shards_done == 3
    # This run read only the lines of the other shards.
    assert second[-1].lines == expected.n_lines + expected.n_skipped_lines - first[-1].lines
    assert second[-1].bytes_done == second[-1].bytes_total == corpus.stat().st_size
    assert_same_counts(stats, expected)
    assert TokenStats.load(out).n_lines == expected.n_lines
    assert not (tmp_path / "fr.npz.partial").exists()


def test_an_interrupted_compressed_file_resumes_from_its_last_checkpoint(
    e5_tokenizer, corpus, tmp_path, monkeypatch
):
    import langtrim.packager.counting.inputs as inputs

    monkeypatch.setattr(inputs, "_BLOCK_BYTES", 512)  # several blocks, and checkpoints, in a small file
    path = tmp_path / "corpus.txt.gz"
    path.write_bytes(gzip.compress(corpus.read_bytes()))
    expected = count(e5_tokenizer, corpus, tmp_path, "expected.npz")
    seen: list[CountProgress] = []

    def stop_midway(report: CountProgress) -> None:
        seen.append(report)
        if report.text_bytes > 6000:
            raise Interrupt

    out = tmp_path / "gz.npz"
    with pytest.raises(Interrupt):
        count_french(e5_tokenizer, path, out, progress=stop_midway, shard_bytes=2000)
    saved = TokenStats.load(tmp_path / "gz.npz.partial" / "shard-000000.running.npz")
    assert 2000 <= saved.n_bytes <= 6000 + 512

    second: list[CountProgress] = []
    stats = count_french(e5_tokenizer, path, out, progress=second.append, shard_bytes=2000)
    assert second[-1].text_bytes == corpus.stat().st_size - saved.n_bytes
    assert_same_counts(stats, expected)


def test_checkpoints_of_another_count_are_refused(e5_tokenizer, corpus, tmp_path):
    out = tmp_path / "fr.npz"
    with pytest.raises(Interrupt):
        count_french(e5_tokenizer, corpus, out, progress=interrupt_after(1, []), shard_bytes=2000)
    with pytest.raises(
        SelectionError, match=r"fr\.npz\.partial' belong to a count with other min_line_chars"
    ):
        count_french(e5_tokenizer, corpus, out, shard_bytes=2000, min_line_chars=1)


def test_statistics_round_trip_through_their_file(e5_tokenizer, corpus, tmp_path):
    stats = count(e5_tokenizer, corpus, tmp_path)
    loaded = TokenStats.load(tmp_path / "stats.npz")
    assert_same_counts(loaded, stats)
    assert (loaded.min_line_chars, loaded.inputs) == (stats.min_line_chars, stats.inputs)
    with np.load(tmp_path / "stats.npz", allow_pickle=False) as archive:
        assert int(archive["format_version"]) == 1


def test_a_corrupt_or_foreign_statistics_file_is_a_clear_error(tmp_path):
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SelectionError, match=r"garbage\.npz' is not a langtrim token statistics file"):
        TokenStats.load(tmp_path / "garbage.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(
        SelectionError, match=r"other\.npz' is a NumPy archive but not langtrim token statistics"
    ):
        TokenStats.load(tmp_path / "other.npz")
    with pytest.raises(SelectionError, match=r"missing\.npz' does not exist: count the corpus first"):
        TokenStats.load(tmp_path / "missing.npz")


def test_a_truncated_statistics_file_is_a_clear_error(e5_tokenizer, corpus, tmp_path):
    count(e5_tokenizer, corpus, tmp_path)
    data = (tmp_path / "stats.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SelectionError, match=r"cut\.npz' is not a langtrim token statistics file"):
        TokenStats.load(tmp_path / "cut.npz")


def test_statistics_of_a_newer_format_name_the_fix(e5_tokenizer, corpus, tmp_path):
    count(e5_tokenizer, corpus, tmp_path)
    with np.load(tmp_path / "stats.npz", allow_pickle=False) as archive:
        arrays = dict(archive)
    np.savez(tmp_path / "future.npz", **{**arrays, "format_version": np.array(2)})
    with pytest.raises(
        SelectionError, match=r"have format 2; this langtrim reads format 1: .*upgrade langtrim"
    ):
        TokenStats.load(tmp_path / "future.npz")


def test_statistics_merge_by_addition(e5_tokenizer, corpus, tmp_path):
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "a.txt").write_text("".join(lines[:120]), encoding="utf-8")
    (tmp_path / "b.txt").write_text("".join(lines[120:]), encoding="utf-8")
    a, b = (
        count(e5_tokenizer, tmp_path / "a.txt", tmp_path, "a.npz"),
        count(e5_tokenizer, tmp_path / "b.txt", tmp_path, "b.npz"),
    )
    assert_same_counts(merge_all([a, b]), count(e5_tokenizer, corpus, tmp_path))


def test_statistics_of_different_tokenizers_refuse_to_merge(e5_tokenizer, mbert_tokenizer, corpus, tmp_path):
    e5 = count(e5_tokenizer, corpus, tmp_path, "e5.npz")
    mbert = count(mbert_tokenizer, corpus, tmp_path, "mbert.npz")
    with pytest.raises(SelectionError, match=r"cannot merge token statistics of different tokenizers"):
        e5.merge(mbert)


def test_statistics_of_different_languages_or_minimums_refuse_to_merge(e5_tokenizer, corpus, tmp_path):
    fr = count(e5_tokenizer, corpus, tmp_path, "fr.npz")
    de = count_corpus(e5_tokenizer, [corpus], language="de", out=tmp_path / "de.npz")
    with pytest.raises(SelectionError, match=r"of 'fr' and 'de'"):
        fr.merge(de)
    one = count(e5_tokenizer, corpus, tmp_path, "one.npz", min_line_chars=1)
    with pytest.raises(SelectionError, match=r"--min-line-chars 5 and 1"):
        fr.merge(one)


def test_selection_reads_statistics_of_its_own_tokenizer_only(
    e5_tokenizer, mbert_tokenizer, corpus, tmp_path
):
    stats = count(e5_tokenizer, corpus, tmp_path)
    checked = load_checked(tmp_path / "stats.npz", e5_tokenizer, "fr")
    assert checked.n_lines == stats.n_lines
    assert np.array_equal(checked.line_counts, stats.line_counts)
    with pytest.raises(SelectionError, match=r"counted with another tokenizer .* count again"):
        load_checked(tmp_path / "stats.npz", mbert_tokenizer, "fr")
    with pytest.raises(SelectionError, match=r"are for 'fr', not 'de': pass them as --corpus fr="):
        load_checked(tmp_path / "stats.npz", e5_tokenizer, "de")


def test_count_arrays_span_the_whole_vocabulary(e5_tokenizer, mbert_tokenizer, small_tokenizer):
    from langtrim.packager.models.tokenizer import id_bound

    for tokenizer in (e5_tokenizer, mbert_tokenizer, small_tokenizer):
        assert id_bound(tokenizer) == tokenizer.get_vocab_size(with_added_tokens=True)
