"""The `langtrim trim` command: its output, and one clear line (no traceback) for every bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from langtrim.packager.trim import job as trim_job
from tests.support.cli import run_cli


def _corpus(tmp_path: Path, sentences) -> Path:
    path = tmp_path / "fr.txt"
    path.write_text("\n".join(sentences("fr")), encoding="utf-8")
    return path


def test_trim_writes_a_loadable_model_directory(tiny_models, sentences, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    args = ["trim", str(tiny_models["xlmr"]), "-l", "fr", "--corpus", f"fr={_corpus(tmp_path, sentences)}"]
    code, stdout, _ = run_cli([*args, "--out", str(out), "--json"], monkeypatch, capsys)
    assert code == 0
    report = json.loads(stdout)
    assert {"config.json", "model.safetensors", "tokenizer.json", "id_map.json"} <= {
        p.name for p in out.iterdir()
    }
    assert report["tokens_kept"] == json.loads((out / "config.json").read_text())["vocab_size"]
    assert report["coverage"][0]["language"] == "fr"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_dry_run_plans_and_writes_nothing(tiny_models, sentences, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    args = ["trim", str(tiny_models["mbert"]), "-l", "fr", "--corpus", f"fr={_corpus(tmp_path, sentences)}"]
    code, stdout, _ = run_cli([*args, "--out", str(out), "--dry-run"], monkeypatch, capsys)
    assert code == 0 and not out.exists()
    assert "dry run" in stdout and "embedding share" in stdout


def test_failure_while_writing_leaves_nothing(tiny_models, sentences, tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(trim_job, "_write_tokenizer_files", broken)
    out = tmp_path / "out"
    args = ["trim", str(tiny_models["mbert"]), "-l", "fr", "--corpus", f"fr={_corpus(tmp_path, sentences)}"]
    with pytest.raises(OSError, match="disk full"):
        run_cli([*args, "--out", str(out)], monkeypatch, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fr.txt"]


@pytest.fixture
def unsupported_model(tmp_path: Path) -> Path:
    model = tmp_path / "gpt2"
    model.mkdir()
    (model / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    )
    return model


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing model directory", "model directory './no-such-model' does not exist"),
        ("unknown hub model", "cannot get model 'no-such-org/no-such-model' from the Hugging Face hub"),
        ("model and --from-distil", "give either MODEL .* or --from-distil, not both"),
        ("unsupported architecture", "model type 'gpt2' .* is not supported"),
        ("unknown language", "unknown language code 'klingon'"),
        ("missing corpus", "corpus input .* does not exist: check the path given to --corpus"),
        ("empty corpus", "the corpus for .fr. holds no text .*empty.txt"),
        ("non-UTF-8 corpus", "is not UTF-8"),
        ("threshold out of range", "threshold 2.0 is out of range"),
        ("existing output", "output directory .* is not empty: choose another --out or pass --force"),
        ("no output", "no output directory: pass --out"),
    ],
)
def test_bad_input_gets_one_clear_line(
    case, message, tiny_models, unsupported_model, tmp_path, monkeypatch, capsys
):
    import re

    model = str(tiny_models["mbert"])
    out = tmp_path / "out"
    empty, latin1 = tmp_path / "empty.txt", tmp_path / "latin1.txt"
    empty.write_text("")
    latin1.write_bytes("Un été à Noël\n".encode("latin-1"))
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    args = {
        "missing model directory": ["./no-such-model", "-l", "fr", "--out", str(out)],
        "unknown hub model": ["no-such-org/no-such-model", "-l", "fr", "--out", str(out)],
        "model and --from-distil": [model, "--from-distil", "-l", "fr", "--out", str(out)],
        "unsupported architecture": [str(unsupported_model), "-l", "fr", "--out", str(out)],
        "unknown language": [model, "-l", "fr,klingon", "--out", str(out)],
        "missing corpus": [model, "-l", "fr", "--corpus", f"fr={tmp_path / 'nope.txt'}", "--out", str(out)],
        "empty corpus": [model, "-l", "fr", "--corpus", f"fr={empty}", "--out", str(out)],
        "non-UTF-8 corpus": [model, "-l", "fr", "--corpus", f"fr={latin1}", "--out", str(out)],
        "threshold out of range": [model, "-l", "fr", "--threshold", "2", "--out", str(out)],
        "existing output": [model, "-l", "fr", "--out", str(existing)],
        "no output": [model, "-l", "fr"],
    }[case]
    code, _, stderr = run_cli(["trim", *args], monkeypatch, capsys)
    assert code == 1
    assert stderr.startswith("error: ") and "Traceback" not in stderr
    assert re.search(message, " ".join(stderr.split())), stderr
    assert not out.exists()
    assert (existing / "keep.txt").read_text() == "mine"


def test_console_script_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "langtrim.packager.cli", "trim", "-l", "xx", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "unknown language code 'xx'" in result.stderr and "Traceback" not in result.stderr


def test_from_distil_starts_from_distilmbert(tmp_path, monkeypatch, capsys):
    # No hub is reachable here: the error shows which model --from-distil asked for.
    code, _, stderr = run_cli(
        ["trim", "--from-distil", "-l", "fr", "--out", str(tmp_path / "o")], monkeypatch, capsys
    )
    assert code == 1 and "'distilbert-base-multilingual-cased'" in stderr
