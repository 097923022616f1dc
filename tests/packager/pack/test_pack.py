"""`langtrim pack`: a bundle the runtime loads, parity as the last step, gates that stop a bad bundle."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from tokenizers import Tokenizer

from langtrim.packager.counting.inputs import CorpusSpec
from langtrim.packager.models.sources import ModelSource
from langtrim.packager.pack.job import run_pack
from langtrim.packager.pack.parity import GateFailure, Gates, measure_parity
from langtrim.packager.pack.quantize import VariantSettings
from langtrim.packager.selection.choose import SelectionSettings
from langtrim.packager.selection.languages import parse_languages
from langtrim.packager.selection.threshold import union_selection
from langtrim.packager.trim import job as trim_job
from langtrim.packager.trim.tokenizer_remap import IdMap
from langtrim.runtime import Encoder, read_manifest
from langtrim.runtime.bundle import PARITY_FILE, bundle_digest
from tests.support.cli import run_cli

FP32 = VariantSettings("none", "fp32", "none")


def _french_corpus(tmp_path: Path, sentences) -> list[CorpusSpec]:
    path = tmp_path / "fr.txt"
    path.write_text("\n".join(sentences("fr")[:400]), encoding="utf-8")
    return [CorpusSpec("fr", (str(path),))]


LENIENT = Gates(0.0, 0.0, 1.0)  # a random-weight model: the gates are not what these tests are about


def _pack(model_dir: Path, out: Path, tmp_path: Path, sentences, **options):
    options.setdefault("gates", LENIENT)
    return run_pack(
        ModelSource(model_dir, model_dir.name, "test model", is_default=False),
        parse_languages("fr"),
        out=out,
        corpora=_french_corpus(tmp_path, sentences),
        settings=SelectionSettings(threshold=0.0),
        **options,
    )


def test_fp32_bundle_embeds_like_the_trimmed_pytorch_model(tiny_models, sentences, tmp_path):
    out = tmp_path / "bundle"
    report = _pack(tiny_models["xlmr"], out, tmp_path, sentences, variant=FP32)
    manifest = read_manifest(out, verify="full")
    assert manifest.languages == ("fr",) and manifest.vocab.kept_size == report.trim.tokens_kept
    assert manifest.parity is not None and (out / PARITY_FILE).is_file()
    texts = sentences("fr")[:64]
    vectors = Encoder(out).embed(texts, normalize=False)
    model = transformers.AutoModel.from_pretrained(tiny_models["xlmr"]).eval()
    tokenizer = Tokenizer.from_file(str(tiny_models["xlmr"] / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=1)
    encodings = tokenizer.encode_batch(texts)
    mask = torch.tensor([e.attention_mask for e in encodings])
    with torch.no_grad():
        hidden = model(
            input_ids=torch.tensor([e.ids for e in encodings]), attention_mask=mask
        ).last_hidden_state
    expected = ((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).numpy()
    id_map = IdMap.from_json((out / "id_map.json").read_text())
    covered = [i for i, e in enumerate(encodings) if id_map.is_kept(e.ids).all()]
    assert len(covered) >= 60
    assert np.abs(vectors[covered] - expected[covered]).max() <= 1e-4


def test_a_trim_that_keeps_every_token_has_full_coverage_and_no_trim_effect(
    tiny_models, sentences, tmp_path, monkeypatch
):
    def keep_everything(tokenizer, languages, corpora, settings):
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        return union_selection(
            {"fr": np.arange(size)}, sources={"fr": "all"}, special_ids=[], original_vocab_size=size
        )

    monkeypatch.setattr(trim_job, "choose_tokens", keep_everything)
    out = tmp_path / "bundle"
    report = _pack(tiny_models["xlmr"], out, tmp_path, sentences, variant=FP32)
    (french,) = report.parity.languages
    assert french.coverage.identical_share == 1.0 and french.coverage.unk_rate == 0.0
    assert french.trim_max_abs_diff == 0.0
    assert french.trim_cosine.min == pytest.approx(1.0, abs=1e-6)
    assert french.end_to_end_cosine.min > 0.9999


def test_parity_json_matches_a_recomputation(tiny_models, sentences, tmp_path):
    out = tmp_path / "bundle"
    _pack(tiny_models["xlmr"], out, tmp_path, sentences)
    stored = json.loads((out / PARITY_FILE).read_text())
    again = json.loads(measure_parity(out, tiny_models["xlmr"], source_model="xlmr", gates=LENIENT).to_json())
    for before, after in zip(stored["languages"], again["languages"], strict=True):
        for figure in ("trim_cosine", "export_cosine", "end_to_end_cosine"):
            for stat in ("mean", "min", "p1"):
                assert after[figure][stat] == pytest.approx(before[figure][stat], abs=1e-6)
        assert after["coverage"] == before["coverage"]


def test_a_missed_gate_writes_no_bundle(tiny_models, sentences, tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(GateFailure, match="fr: mean cosine .* < 1.0"):
        _pack(tiny_models["xlmr"], out, tmp_path, sentences, gates=Gates(1.0, 0.0, 1.0))
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_allow_parity_failure_writes_a_bundle_marked_failed(tiny_models, sentences, tmp_path):
    out = tmp_path / "bundle"
    report = _pack(
        tiny_models["xlmr"],
        out,
        tmp_path,
        sentences,
        gates=Gates(min_mean_cosine=1.0),
        allow_parity_failure=True,
    )
    assert not report.parity.passed
    assert read_manifest(out).parity_passed is False


def test_cli_gate_failure_exits_nonzero_with_the_table(tiny_models, sentences, tmp_path, monkeypatch, capsys):
    corpus = _french_corpus(tmp_path, sentences)[0].paths[0]
    out = tmp_path / "bundle"
    args = ["pack", str(tiny_models["xlmr"]), "-l", "fr", "--corpus", f"fr={corpus}", "--threshold", "0"]
    gates = ["--min-cosine", "1.0", "--min-p1-cosine", "0"]
    code, _, stderr = run_cli([*args, "--out", str(out), *gates], monkeypatch, capsys)
    assert code == 1 and not out.exists()
    assert "parity against" in stderr and "error: parity gate missed (fr: mean cosine" in " ".join(
        stderr.split()
    )


def test_pack_accepts_a_trimmed_directory(tiny_models, sentences, tmp_path, monkeypatch, capsys):
    corpus = _french_corpus(tmp_path, sentences)[0].paths[0]
    trimmed = tmp_path / "trimmed"
    args = ["trim", str(tiny_models["xlmr"]), "-l", "fr", "--corpus", f"fr={corpus}", "--out", str(trimmed)]
    assert run_cli(args, monkeypatch, capsys)[0] == 0
    out = tmp_path / "bundle"
    lenient = ["--min-cosine", "0", "--min-p1-cosine", "0", "--max-unk-rate", "1"]
    code, stdout, stderr = run_cli(
        ["pack", str(trimmed), "--out", str(out), "--json", *lenient], monkeypatch, capsys
    )
    assert code == 0, stderr
    assert json.loads(stdout)["manifest"]["languages"] == ["fr"]
    assert read_manifest(out).source.name == str(tiny_models["xlmr"])
    # The tables too: the trim report read back from the directory once failed to print.
    code, stdout, stderr = run_cli(
        ["pack", str(trimmed), "--out", str(tmp_path / "b2"), *lenient], monkeypatch, capsys
    )
    assert code == 0, stderr
    assert "trimmed weights" in stdout and "written to" in stdout


def test_inspect_and_embed_commands(tiny_models, sentences, tmp_path, monkeypatch, capsys):
    out = tmp_path / "bundle"
    _pack(tiny_models["xlmr"], out, tmp_path, sentences)
    code, stdout, _ = run_cli(["inspect", str(out)], monkeypatch, capsys)
    assert code == 0 and "vocabulary" in stdout and "model.onnx" in stdout
    assert stdout.splitlines()[-1] == bundle_digest(out)  # alone on the last line: `| tail -1` to pin it
    code, stdout, _ = run_cli(["inspect", str(out), "--json"], monkeypatch, capsys)
    assert json.loads(stdout)["digest"] == bundle_digest(out)
    code, stdout, _ = run_cli(["embed", str(out), "Bonjour", "Merci"], monkeypatch, capsys)
    vectors = np.asarray(json.loads(stdout))
    assert code == 0 and vectors.shape == (2, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_default_int8_bundle_meets_size_and_cosine_targets(default_bundle):
    out, report = default_bundle
    assert report.bundle_mb <= 40
    for language in report.parity.languages:
        assert language.end_to_end_cosine.mean >= 0.99, language
    assert read_manifest(out).parity_passed is True


def test_a_pack_stopped_with_sigterm_leaves_no_temporary_files(tiny_models, sentences, tmp_path):
    """docker stop / kill: the work directory and the half-built bundle are removed, exit 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    scratch, out = tmp_path / "scratch", tmp_path / "bundle"
    scratch.mkdir()
    corpus = _french_corpus(tmp_path, sentences)[0].paths[0]
    langtrim = Path(sys.executable).parent / "langtrim"
    command = [str(langtrim), "pack", str(tiny_models["xlmr"]), "-l", "fr", "--corpus", f"fr={corpus}"]
    command += ["--quantize", "none", "--min-cosine", "0", "--min-p1-cosine", "0", "--max-unk-rate", "1"]
    process = subprocess.Popen(
        [*command, "--out", str(out)], env={**os.environ, "TMPDIR": str(scratch)}, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not list(scratch.glob(f".langtrim-pack.tmp-{process.pid}-*")):
        assert process.poll() is None and time.monotonic() < deadline, "the pack never started its work"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr.decode()
    assert list(scratch.iterdir()) == [] and not out.exists()
    assert not list(tmp_path.glob(".bundle.tmp-*"))
