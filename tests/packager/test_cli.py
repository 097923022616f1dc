"""The `langtrim` command: reports that fit 80 columns, choices, completion, standard input, and one clear
line (no traceback) for every bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from langtrim.packager.container import TOOLS
from langtrim.packager.pack.quantize import EMBEDDING_MODES, OPTIMIZE_LEVELS, QUANTIZE_MODES
from langtrim.packager.selection.choose import SOURCE_NAMES
from langtrim.packager.trim import job as trim_job
from langtrim.runtime.bundle import PARITY_FILE, bundle_digest, read_manifest
from tests.support.cli import assert_fits_80_columns, run_cli
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


# --- every report fits 80 columns ---------------------------------------------------------------------------

WIDTHS = (80, 200)  # an 80-column terminal, and a wide one: the reports must not spread over it


@pytest.fixture
def corpora(tmp_path, sentences, monkeypatch) -> list[str]:
    """fr.txt and de.txt in the current directory (the temporary one): --corpus options as users write them."""
    monkeypatch.chdir(tmp_path)
    for language in ("fr", "de"):
        Path(f"{language}.txt").write_text("\n".join(sentences(language)[:200]), encoding="utf-8")
    return ["--corpus", "fr=fr.txt", "--corpus", "de=de.txt"]


LENIENT_BUILD = [
    "--threshold",
    "0",
    "--quantize",
    "none",
    "--quantize-embeddings",
    "fp32",
    "--optimize",
    "none",
]


@pytest.mark.parametrize("columns", WIDTHS)
def test_pack_report_fits_80_columns(columns, tiny_models, corpora, monkeypatch, capsys):
    # A gate no random model meets, so the report shows its longest form: FAILED rows and the misses.
    args = ["pack", str(tiny_models["xlmr"]), "-l", "fr,de", *corpora, *LENIENT_BUILD, "--min-cosine", "1"]
    code, stdout, stderr = run_cli(
        [*args, "--allow-parity-failure", "--out", "bundle"], monkeypatch, capsys, columns=columns
    )
    assert code == 0, stderr
    assert "FAILED" in stdout and "fr: mean cosine" in stdout
    assert_fits_80_columns(stdout)


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("kind", ["xlmr", "xlmr-classifier"])
def test_parity_report_fits_80_columns(
    columns, kind, tiny_models, sentences, tmp_path_factory, monkeypatch, capsys
):
    bundle = packed_bundle(kind, tiny_models, sentences, tmp_path_factory)
    args = ["parity", str(bundle), "--against", str(tiny_models[kind]), "--min-cosine", "1"]
    code, stdout, stderr = run_cli(args, monkeypatch, capsys, columns=columns)
    # A random classifier's probabilities are all but uniform, so its cosines may reach 1.
    assert code == (1 if "FAILED" in stdout else 0) and ("error: parity gate missed" in stderr) == bool(code)
    assert "FAILED" in stdout or kind == "xlmr-classifier"
    assert ("same label" in stdout) == (kind == "xlmr-classifier")
    assert_fits_80_columns(stdout)
    assert "parity against" not in stderr, "the report is printed once, on stdout"


@pytest.mark.parametrize("columns", WIDTHS)
def test_pack_gate_failure_report_fits_80_columns(columns, tiny_models, corpora, monkeypatch, capsys):
    args = ["pack", str(tiny_models["xlmr"]), "-l", "fr", corpora[0], corpora[1], *LENIENT_BUILD]
    code, _, stderr = run_cli(
        [*args, "--min-cosine", "1", "--out", "b"], monkeypatch, capsys, columns=columns
    )
    assert code == 1 and stderr.rstrip().splitlines()[-1].startswith("error: parity gate missed")
    assert_fits_80_columns(stderr)


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("dry_run", [False, True])
def test_trim_report_fits_80_columns(columns, dry_run, tiny_models, corpora, monkeypatch, capsys):
    # mbert: French from the corpus, German from the paper's lists (the longest source description).
    args = ["trim", str(tiny_models["mbert"]), "-l", "fr,de", corpora[0], corpora[1], "--out", "trimmed"]
    code, stdout, stderr = run_cli(
        [*args, *(["--dry-run"] if dry_run else [])], monkeypatch, capsys, columns=columns
    )
    assert code == 0, stderr
    assert "the paper's published list" in stdout and ("dry run" in stdout) == dry_run
    assert_fits_80_columns(stdout)


@pytest.mark.parametrize("columns", WIDTHS)
def test_count_report_fits_80_columns(columns, tiny_models, corpora, monkeypatch, capsys):
    args = ["count", str(tiny_models["xlmr"]), *corpora, "--out", "statistics"]
    code, stdout, stderr = run_cli(args, monkeypatch, capsys, columns=columns)
    assert code == 0, stderr
    assert_fits_80_columns(stdout)
    assert_fits_80_columns(stdout + stderr)  # the progress bars too


def test_count_prints_the_pack_command_that_selects_from_its_statistics(
    tiny_models, corpora, monkeypatch, capsys
):
    model = str(tiny_models["xlmr"])
    code, stdout, stderr = run_cli(["count", model, *corpora, "--out", "statistics"], monkeypatch, capsys)
    assert code == 0, stderr
    command = stdout[stdout.index("  langtrim pack") :].replace("\\\n", " ")
    assert command.split() == [
        "langtrim",
        "pack",
        model,
        "--languages",
        "fr,de",
        "--corpus",
        "fr=statistics/fr.npz",
        "--corpus",
        "de=statistics/de.npz",
    ]
    # ... and that command packs.
    pack_args = [*command.split()[1:], *LENIENT_BUILD, "--min-cosine", "0", "--min-p1-cosine", "0"]
    code, _, stderr = run_cli([*pack_args, "--max-unk-rate", "1", "--out", "bundle"], monkeypatch, capsys)
    assert code == 0, stderr


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("kind", ["xlmr", "xlmr-classifier"])
def test_inspect_report_fits_80_columns(
    columns, kind, tiny_models, sentences, tmp_path_factory, monkeypatch, capsys
):
    bundle = packed_bundle(kind, tiny_models, sentences, tmp_path_factory)
    code, stdout, stderr = run_cli(["inspect", str(bundle)], monkeypatch, capsys, columns=columns)
    assert code == 0, stderr
    assert_fits_80_columns(stdout)


@pytest.mark.parametrize(
    "command", ["trim", "pack", "count", "parity", "embed", "inspect", "bench", "serve", "container"]
)
def test_help_fits_80_columns(command, monkeypatch, capsys):
    code, stdout, _ = run_cli([command, "--help"], monkeypatch, capsys, columns=80)
    assert code == 0 and stdout.startswith(("Usage: langtrim", "usage: langtrim"))
    assert all(len(line) <= 80 for line in stdout.splitlines()), stdout
    assert "…" not in stdout


# --- inspect ------------------------------------------------------------------------------------------------


def _row(stdout: str, first_cell: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith(f"│ {first_cell} "))
    return [cell.strip() for cell in line.strip("│").split("│")]


def test_inspect_shows_the_parity_of_each_language(tiny_models, corpora, monkeypatch, capsys):
    args = ["pack", str(tiny_models["xlmr"]), "-l", "fr,de", *corpora, *LENIENT_BUILD, "--min-cosine", "0"]
    code, _, stderr = run_cli([*args, "--min-p1-cosine", "0", "--out", "bundle"], monkeypatch, capsys)
    assert code == 0, stderr
    parity = read_manifest(Path("bundle")).parity
    assert parity is not None and set(parity["languages"]) == {"fr", "de"}
    code, stdout, _ = run_cli(["inspect", "bundle"], monkeypatch, capsys)
    assert code == 0
    for language, figures in parity["languages"].items():
        assert _row(stdout, language) == [
            language,
            f"{figures['identical_tokenization']:.1%}",
            f"{figures['unk_rate']:.2%}",
            f"{figures['cosine_mean']:.4f}",
            f"{figures['cosine_p1']:.4f}",
            f"{figures['cosine_min']:.4f}",
            "passed" if figures["passed"] else "FAILED",
        ]
    assert "gates: cosine mean >= 0.0, p1 >= 0.0, unknown <= 0.01" in stdout


def test_inspect_json_has_the_manifest_and_the_full_parity_report(
    tiny_models, sentences, tmp_path_factory, monkeypatch, capsys
):
    bundle = packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)
    code, stdout, _ = run_cli(["inspect", str(bundle), "--json"], monkeypatch, capsys)
    shown = json.loads(stdout)
    assert code == 0 and shown["digest"] == bundle_digest(bundle)
    assert shown["parity"] == read_manifest(bundle).parity
    assert shown["parity_report"] == json.loads((bundle / PARITY_FILE).read_text(encoding="utf-8"))
    assert shown["parity_report"]["languages"][0]["export_cosine"]["mean"] > 0.99  # what the table leaves out


# --- choices, completion ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "option", "choices"),
    [
        ("pack", "--quantize", QUANTIZE_MODES),
        ("pack", "--quantize-embeddings", EMBEDDING_MODES),
        ("pack", "--optimize", OPTIMIZE_LEVELS),
        ("pack", "--source", SOURCE_NAMES),
        ("trim", "--source", SOURCE_NAMES),
        ("container", "--tool", TOOLS),
    ],
)
def test_help_lists_the_choices_of_an_option(command, option, choices, monkeypatch, capsys):
    code, stdout, _ = run_cli([command, "--help"], monkeypatch, capsys, columns=80)
    assert code == 0 and f"{option} <{'|'.join(choices)}>" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["pack", "--quantize", "int9"],
            "Invalid value for '--quantize': .*'int9' is not one of 'none', 'int8'",
        ),
        (["trim", "--source", "web"], "Invalid value for '--source': .*'web' is not one of 'auto'"),
        (["pack", "--no-such-option"], "No such option: --no-such-option"),
        (["container", "bundle"], "Missing option '--tag'"),
        (["embed", "bundle"], "Missing argument 'texts"),
    ],
)
def test_usage_errors_are_one_line(args, message, monkeypatch, capsys):
    import re

    code, stdout, stderr = run_cli(args, monkeypatch, capsys)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert re.search(message, lines[0]) and f"(see langtrim {args[0]} --help)" in lines[0]


def _langtrim(env: dict[str, str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "langtrim"), *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_bash_completion_script_offers_commands_and_choices():
    script = _langtrim({"_LANGTRIM_COMPLETE": "source_bash"})
    assert script.returncode == 0 and b"complete -o default -F _langtrim_completion langtrim" in script.stdout
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash to run the completion script in")
    for words, expected in [
        ("langtrim pa", ["pack", "parity"]),
        ("langtrim pack --quantize ''", list(QUANTIZE_MODES)),
        ("langtrim pack --quantize int8-", ["int8-dynamic", "int8-block"]),
        ("langtrim container b --tool ''", list(TOOLS)),
    ]:
        # What bash does on <Tab>: the script's function fills COMPREPLY from the words typed so far.
        completion = subprocess.run(
            [
                bash,
                "--norc",
                "-c",
                f'eval "$SCRIPT"; COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ));'
                ' _langtrim_completion langtrim; printf "%s\\n" "${COMPREPLY[@]}"',
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "SCRIPT": script.stdout.decode()},
            timeout=120,
        )
        assert completion.stdout.split() == expected, (words, completion.stderr)


def test_show_completion_prints_the_script_for_the_named_shell():
    # The test switch typer reads makes --show-completion take the shell's name instead of detecting it.
    shown = _langtrim({"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}, "--show-completion", "bash")
    assert shown.returncode == 0 and b"_langtrim_completion" in shown.stdout


# --- embed - ------------------------------------------------------------------------------------------------


def _vectors(stdout: str) -> np.ndarray:
    return np.asarray(json.loads(stdout))


def test_embed_reads_standard_input_one_text_a_line(
    tiny_models, sentences, tmp_path_factory, monkeypatch, capsys
):
    bundle = str(packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory))
    code, stdout, stderr = run_cli(["embed", bundle, "Bonjour", "", "Merci"], monkeypatch, capsys)
    assert code == 0, stderr
    expected = _vectors(stdout)
    for piped in [b"Bonjour\n\nMerci\n", b"Bonjour\r\n\r\nMerci", "\ufeffBonjour\n\nMerci\n".encode()]:
        code, stdout, stderr = run_cli(["embed", bundle, "-"], monkeypatch, capsys, stdin=piped)
        assert code == 0, stderr
        assert np.array_equal(_vectors(stdout), expected), piped  # vector i is line i, the empty one too


def test_embed_reads_a_real_pipe(tiny_models, sentences, tmp_path_factory):
    bundle = str(packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory))
    lines = sentences("fr")[:40]
    piped = _langtrim({}, "embed", bundle, "-", stdin="\n".join(lines).encode() + b"\n")
    assert piped.returncode == 0, piped.stderr
    assert _vectors(piped.stdout.decode()).shape == (40, 32)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["-"], "Bonjour\nNoël\n".encode("latin-1"), "standard input is not UTF-8 (byte 0xeb on line 2)"),
        (["-"], b"", "standard input is empty: pipe the texts in, one a line"),
        (["-", "Bonjour"], b"Merci\n", "give - alone to read the texts from standard input"),
    ],
)
def test_embed_bad_standard_input_is_one_line(
    args, stdin, message, tiny_models, sentences, tmp_path_factory, monkeypatch, capsys
):
    bundle = str(packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory))
    code, stdout, stderr = run_cli(["embed", bundle, *args], monkeypatch, capsys, stdin=stdin)
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"error: {message}"), stderr
    assert stdout == ""
