"""Pack-time calibration of the coverage check, and the retrieval gate failing a pack."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.packager.counting.inputs import CorpusSpec
from langtrim.packager.models.sources import ModelSource
from langtrim.packager.pack.coverage_check import calibrate_coverage, dropped_word_hashes
from langtrim.packager.pack.job import run_pack
from langtrim.packager.pack.parity import Gates
from langtrim.packager.pack.quantize import VariantSettings
from langtrim.packager.selection.choose import SelectionSettings
from langtrim.packager.selection.languages import parse_languages
from langtrim.runtime import Encoder, read_manifest
from langtrim.runtime.bundle import TOKENIZER_FILE
from langtrim.runtime.coverage import WORDS_FILE, thresholds_of, word_hash
from tests.conftest import MINILM_DIR
from tests.support.bundles import tiny_bundle
from tests.support.cli import run_cli

FP32 = VariantSettings("none", "fp32", "none")


@pytest.fixture
def trimmed_bundle(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A copy of a BERT bundle trimmed to 250 English sentences' tokens, packed without a coverage field."""
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle(tmp_path_factory, "bert-trimmed").path, copy)
    return copy


def test_dropped_words_are_whole_words_of_the_original_the_trim_lost(trimmed_bundle: Path) -> None:
    original = Tokenizer.from_file(str(MINILM_DIR / TOKENIZER_FILE))
    trimmed = Tokenizer.from_file(str(trimmed_bundle / TOKENIZER_FILE))
    hashes = set(dropped_word_hashes(original, trimmed).tolist())
    kept_words = [w for w in trimmed.get_vocab() if w.isalpha() and len(w) > 1]
    lost_words = [
        w for w in original.get_vocab() if w.isalpha() and len(w) > 1 and trimmed.token_to_id(w) is None
    ]
    assert kept_words and lost_words
    assert not any(word_hash(word) in hashes for word in kept_words)
    assert all(word_hash(word) in hashes for word in lost_words)
    assert word_hash("##ing") not in hashes  # pieces inside a word are not words


def test_calibrated_thresholds_round_trip_through_the_manifest(trimmed_bundle: Path) -> None:
    calibration = calibrate_coverage(trimmed_bundle, MINILM_DIR / TOKENIZER_FILE, ["en"])
    manifest = read_manifest(trimmed_bundle, verify="full")  # the words file is listed and hashed
    assert manifest.coverage == json.loads(json.dumps(calibration.to_json()))
    assert WORDS_FILE in manifest.files
    assert thresholds_of(manifest, "bundle") == calibration.thresholds
    assert calibration.sentences == {"en": 500} and calibration.flagged["en"] <= 0.01
    record = Encoder(trimmed_bundle).coverage(["a sentence of common words"])[0]
    assert record.dropped_word_share is not None


def _pack_french(tiny_models, sentences, tmp_path: Path, **options):
    corpus = tmp_path / "fr.txt"
    corpus.write_text("\n".join(sentences("fr")[:400]), encoding="utf-8")
    return run_pack(
        ModelSource(tiny_models["xlmr"], "xlmr", "test model", is_default=False),
        parse_languages("fr"),
        out=tmp_path / "bundle",
        corpora=[CorpusSpec("fr", (str(corpus),))],
        settings=SelectionSettings(threshold=0.0),
        variant=FP32,
        **{"probes": [], **options},
    )


def _pairs_the_bundle_cannot_read(tmp_path: Path, sentences) -> tuple[Path, Path]:
    """Russian sentences paired with themselves: the original finds each one (F1 100), a bundle trimmed to
    French sees unknown tokens only."""
    path = tmp_path / "ru.txt"
    path.write_text("\n".join(sentences("ru")[:100]), encoding="utf-8")
    return path, path


def test_the_retrieval_rows_are_in_parity_json_the_manifest_and_inspect(
    tiny_models, sentences, tmp_path: Path, monkeypatch, capsys
) -> None:
    pairs = _pairs_the_bundle_cannot_read(tmp_path, sentences)
    report = _pack_french(
        tiny_models,
        sentences,
        tmp_path,
        gates=Gates(0.0, 0.0, 1.0, 100.0),
        eval_pairs={"fr": pairs},
        probes=["es"],
    )
    (row, probe) = report.parity.retrieval
    assert (row.language, row.gated, row.pairs, row.original.f1) == ("fr", True, 100, 100.0)
    assert row.flagged_share == 1.0 and row.unk_rate > 0.3
    assert (probe.language, probe.in_bundle, probe.gated) == ("es", False, False)
    stored = json.loads((tmp_path / "bundle" / "parity.json").read_text())["retrieval"]
    assert [r["language"] for r in stored] == ["fr", "es"]
    summary = read_manifest(tmp_path / "bundle").parity["retrieval"]  # type: ignore[index]
    assert summary["fr"]["f1_original"] == 100.0 and summary["es"]["in_bundle"] is False
    code, shown, _ = run_cli(["inspect", str(tmp_path / "bundle")], monkeypatch, capsys)
    assert code == 0 and "retrieval: bitext mining with English" in shown
    assert "coverage check: uncovered above" in shown


def test_the_retrieval_gate_fails_a_pack(tiny_models, sentences, tmp_path, monkeypatch, capsys) -> None:
    corpus = tmp_path / "fr.txt"
    corpus.write_text("\n".join(sentences("fr")[:400]), encoding="utf-8")
    source, target = _pairs_the_bundle_cannot_read(tmp_path, sentences)
    out = tmp_path / "bundle"
    args = ["pack", str(tiny_models["xlmr"]), "-l", "fr", "--corpus", f"fr={corpus}", "--threshold", "0"]
    gates = ["--min-cosine", "0", "--min-p1-cosine", "0", "--max-unk-rate", "1", "--max-retrieval-drop", "5"]
    pairs = ["--eval-pairs", f"fr={source},{target}", "--probe-languages", ""]
    code, _, stderr = run_cli(
        [*args, "--out", str(out), *gates, *pairs, "--quantize", "none"], monkeypatch, capsys
    )
    assert code == 1 and not out.exists()
    assert "error: parity gate missed (fr: retrieval F1" in " ".join(stderr.split())


def test_an_out_of_range_retrieval_gate_is_refused() -> None:
    from langtrim.packager.errors import SelectionError

    with pytest.raises(
        SelectionError, match="max_retrieval_drop=101.0 is out of range: give a number between 0 and 100"
    ):
        Gates(max_retrieval_drop=101.0).check()
    assert np.isclose(Gates(max_retrieval_drop=50.0).check().max_retrieval_drop, 50.0)
