"""The `langtrim trim` command: its output, and one clear line (no traceback) for every bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from langtrim.packager.trim import job as trim_job
from tests.support.cli import run_cli
from tests.support.server import packed_bundle


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
        ("output in /proc", "cannot write '/proc/langtrim-out' .*: choose an --out in a writable directory"),
        ("output under a file", "cannot write .*keep.txt/out.*: choose an --out in a writable directory"),
        ("--force on the current directory", "is the current directory or holds it"),
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
        "output in /proc": [model, "-l", "fr", "--out", "/proc/langtrim-out"],
        "output under a file": [model, "-l", "fr", "--out", str(existing / "keep.txt" / "out")],
        "--force on the current directory": [model, "-l", "fr", "--force", "--out", "."],
    }[case]
    code, _, stderr = run_cli(["trim", *args], monkeypatch, capsys)
    assert code == 1
    assert stderr.startswith("error: ") and "Traceback" not in stderr
    assert re.search(message, " ".join(stderr.split())), stderr
    assert not out.exists()
    assert (existing / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "/proc/langtrim.npz"], "cannot write '/proc/langtrim.npz'"),
        (["--out", "{tmp}/fr.npz", "--shard-mb", "nan"], "--shard-mb nan is out of range"),
        (["--out", "{tmp}/fr.npz", "--shard-mb", "inf"], "--shard-mb inf is out of range"),
        (["--out", "{tmp}/fr.npz", "--shard-mb", "0"], "--shard-mb 0.0 is out of range"),
        (["--out", "{tmp}/fr.npz", "--shard-mb", "1e-9"], "--shard-mb 1e-09 is out of range"),
    ],
)
def test_bad_count_options_get_one_clear_line(args, message, sentences, tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "fr.txt"
    corpus.write_text("\n".join(sentences("fr")[:50]), encoding="utf-8")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    code, _, stderr = run_cli(["count", "--corpus", f"fr={corpus}", *args], monkeypatch, capsys)
    assert code == 1 and stderr.strip().startswith("error: ") and "Traceback" not in stderr
    assert message in " ".join(stderr.split()), stderr
    assert not list(tmp_path.glob("fr.npz*"))


def test_a_count_that_failed_on_a_bad_file_reruns_once_the_file_is_fixed(
    sentences, tmp_path, monkeypatch, capsys
):
    corpus, out = tmp_path / "fr.txt", tmp_path / "fr.npz"
    corpus.write_bytes("\n".join(sentences("fr")[:50]).encode() + "\nNoël\n".encode("latin-1"))
    code, _, stderr = run_cli(["count", "--corpus", f"fr={corpus}", "--out", str(out)], monkeypatch, capsys)
    assert code == 1 and "is not UTF-8" in stderr
    corpus.write_text("\n".join(sentences("fr")[:50]) + "\nNoël\n", encoding="utf-8")  # fixed as advised
    code, _, stderr = run_cli(["count", "--corpus", f"fr={corpus}", "--out", str(out)], monkeypatch, capsys)
    assert code == 0, stderr
    assert out.is_file() and not Path(f"{out}.partial").exists()


def test_serve_option_errors_are_one_line(tiny_models, sentences, tmp_path_factory):
    bundle = packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)
    langtrim = Path(sys.executable).parent / "langtrim"
    for args, message in [
        (["--port", "99999"], "'99999' is not a TCP port"),
        (["--log-level", "bogus"], "invalid choice: 'bogus'"),
        (["--host", "no.such.host.invalid", "--port", "18123"], "the host does not resolve"),
    ]:
        result = subprocess.run(
            [str(langtrim), "serve", str(bundle), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = result.stderr.strip().splitlines()
        assert result.returncode in (1, 2) and len(lines) == 1 and message in lines[0], result.stderr


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
