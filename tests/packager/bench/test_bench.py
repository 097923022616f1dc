"""The benchmark harness: its texts, its summaries, and a smoke run of the whole side-by-side benchmark.

Benchmarks are not tests: nothing here asserts a timing. The smoke run (tiny random model, one repetition)
checks that the harness produces every figure, that the figures are plausible (positive, ordered as they
must be: a p95 is not below its p50, memory after the first request not below memory after load), that
sizes are the files' real sizes, and that the table and plots are written.
"""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from langtrim.packager.bench.measure import (
    METRICS,
    Engine,
    Run,
    add_ratios,
    bench_texts,
    measure,
    parse_threads,
    run_child,
    summarize,
)
from langtrim.packager.bench.results import Target, check_targets
from langtrim.packager.errors import BenchError
from langtrim.packager.outputs import directory_bytes
from langtrim.runtime.errors import UsageError

ROOT = Path(__file__).resolve().parents[3]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _real_bytes(path: Path) -> int:
    """Independently of the harness: the sizes of every file under `path`, symlinks followed."""
    return sum(os.stat(Path(folder) / name).st_size for folder, _, names in os.walk(path) for name in names)


def test_bench_texts_are_real_sentences_of_the_requested_lengths(e5_tokenizer) -> None:
    texts = bench_texts(e5_tokenizer, ["en", "fr", "de"], prompt="query: ", short=30, long=6, batches=2)
    counts = {
        name: [len(e5_tokenizer.encode(t).ids) for t in getattr(texts, name)] for name in ("short", "long")
    }
    assert len(texts.short) == 30 and all(14 <= n <= 18 for n in counts["short"])
    assert len(texts.long) == 6 and all(120 <= n <= 128 for n in counts["long"])
    assert len(texts.batch) == 64
    assert all(t.startswith("query: ") for t in texts.short + texts.long + texts.batch)
    assert texts.languages == ("en", "fr", "de")
    assert len(set(texts.long)) == 6, "each long text is a different passage"


def test_bench_texts_refuse_languages_without_shipped_sentences(e5_tokenizer) -> None:
    with pytest.raises(UsageError, match="no shipped sentences for ja"):
        bench_texts(e5_tokenizer, ["ja"])


def test_directory_bytes_counts_every_file_and_skips_dotfiles(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    (tmp_path / "sub" / "b.json").write_bytes(b"y" * 24)
    (tmp_path / ".cache").write_bytes(b"z" * 5)
    total, files = directory_bytes(tmp_path)
    assert total == 1024 and files == {"a.bin": 1000, "sub/b.json": 24}


def _process(scale: float) -> dict[str, float]:
    return {key: scale * (index + 1) for index, key in enumerate(METRICS)}


def test_summary_is_the_median_with_min_and_max_over_processes() -> None:
    summary = summarize([_process(1.0), _process(3.0), _process(2.0)])
    load = summary["rss_after_load_mb"]
    assert (load.median, load.min, load.max) == (2.0, 1.0, 3.0)


def _engine(label: str, kind: str, disk: int) -> Engine:
    return Engine(label, kind, "/x", "model", kind == "onnx", (), "fp32", "-", None, disk_bytes=disk)  # type: ignore[arg-type]


def test_ratios_say_how_many_times_better_than_pytorch_at_the_same_threads() -> None:
    engines = [_engine("torch", "torch", 400), _engine("bundle", "onnx", 40)]
    runs = [
        Run("torch", 1, summary=summarize([_process(4.0)])),
        Run("bundle", 1, summary=summarize([_process(1.0)])),
    ]
    add_ratios(engines, runs)
    assert runs[1].ratios["disk"] == 10
    assert runs[1].ratios["cold_start_s"] == 4, "lower is better: PyTorch's time / the bundle's"
    assert runs[1].ratios["batch32_sentences_per_s"] == 0.25, "higher is better: the bundle's / PyTorch's"
    assert runs[0].ratios["load_s"] == 1


def test_a_missed_target_says_by_how_much() -> None:
    engines = [_engine("torch", "torch", 400_000_000), _engine("bundle", "onnx", 50_000_000)]
    runs = [
        Run("torch", 1, summary=summarize([_process(4.0)])),
        Run("bundle", 1, summary=summarize([_process(1.0)])),
    ]
    add_ratios(engines, runs)
    (size,) = check_targets([Target("size", "disk", at_most=40.0, ratio_at_least=12.0)], engines[1], runs[1])
    assert not size["met"] and size["value"] == 50.0
    assert size["value_vs_bound"] == pytest.approx(1.25) and size["ratio_vs_bound"] == pytest.approx(8 / 12)


def test_a_target_against_another_engine_uses_that_engines_medians() -> None:
    engines = [
        _engine("torch", "torch", 400),
        _engine("peer", "fastembed", 100),
        _engine("bundle", "onnx", 40),
    ]
    runs = [Run(label, 1, summary=summarize([_process(t)])) for label, t in (("torch", 8.0), ("peer", 2.0))]
    runs.append(Run("bundle", 1, summary=summarize([_process(1.0)])))
    add_ratios(engines, runs)
    references = {run.engine: (engine, run) for engine, run in zip(engines, runs, strict=True)}
    cold, throughput = check_targets(
        [
            Target("cold", "cold_start_s", ratio_at_least=4.0, against="peer"),
            Target("b32", "batch32_sentences_per_s", ratio_at_least=0.4, against="peer"),
        ],
        engines[2],
        runs[2],
        references,
    )
    assert cold["ratio"] == 2 and not cold["met"] and cold["against"] == "peer"
    assert throughput["ratio"] == 0.5 and throughput["met"], "higher is better: the bundle's / the peer's"
    assert runs[2].ratios["cold_start_s"] == 8, "the PyTorch ratios stay"


def test_each_engine_is_compared_with_pytorchs_vector() -> None:
    engines = [_engine("torch", "torch", 400), _engine("same", "onnx", 40), _engine("other", "onnx", 40)]
    vectors = {"torch": [1.0, 0.0], "same": [2.0, 0.0], "other": [0.0, 1.0]}
    runs = [
        Run(label, 1, processes=[{"probe": vector}], summary=summarize([_process(1.0)]))
        for label, vector in vectors.items()
    ]
    add_ratios(engines, runs)
    assert [run.cosine_to_pytorch for run in runs] == [1.0, 1.0, 0.0]


def test_threads_all_means_every_core_and_bad_values_are_named() -> None:
    assert parse_threads("1,all") == sorted({1, os.cpu_count() or 1})
    with pytest.raises(UsageError, match="--threads 'one'"):
        parse_threads("one")
    with pytest.raises(UsageError, match="positive"):
        parse_threads("0")


def test_engines_with_the_same_label_are_refused(e5_tokenizer) -> None:
    texts = bench_texts(e5_tokenizer, ["en"], short=2, long=1, batches=1)
    twice = [_engine("bundle", "onnx", 40), _engine("bundle", "onnx", 40)]
    with pytest.raises(UsageError, match="labels must be unique"):
        measure(twice, texts)


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="the OS has no posix_fadvise")
def test_every_engines_files_leave_the_page_cache_before_its_first_process(
    e5_tokenizer, tmp_path: Path, monkeypatch
) -> None:
    """Each engine's own first load must read its files in: the order of events is what is checked."""
    import langtrim.packager.bench.measure as harness

    folders = [tmp_path / "bundle", tmp_path / "original"]
    for folder in folders:
        (folder / "sub").mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"weights")
        (folder / "sub" / "tokenizer.json").write_text("{}")
        (folder / ".staging").write_text("not part of the model")
    events: list[tuple[str, object]] = []
    real_fadvise = os.posix_fadvise

    def fadvise(descriptor: int, offset: int, length: int, advice: int) -> None:
        events.append(("drop", Path(os.readlink(f"/proc/self/fd/{descriptor}")).relative_to(tmp_path)))
        assert (offset, length, advice) == (0, 0, os.POSIX_FADV_DONTNEED)
        real_fadvise(descriptor, offset, length, advice)

    def child(plan: dict) -> dict:
        events.append(("process", Path(plan["path"]).name))
        raise BenchError("enough: the first process is what this test is about")

    monkeypatch.setattr(harness.os, "posix_fadvise", fadvise)
    monkeypatch.setattr(harness, "run_child", child)
    engines = [replace(_engine(f.name, "onnx", 1), path=str(f)) for f in folders]
    with pytest.raises(BenchError, match="enough"):
        measure(engines, bench_texts(e5_tokenizer, ["en"], short=2, long=1, batches=1))
    dropped = sorted(str(what) for kind, what in events if kind == "drop")
    assert dropped == sorted(
        f"{f.name}/{name}" for f in folders for name in ("model.onnx", "sub/tokenizer.json")
    )
    assert events[-1] == ("process", "bundle") and len(events) == len(dropped) + 1


def test_a_failing_measurement_process_names_the_engine(tmp_path: Path) -> None:
    plan = {
        "engine": "onnx",
        "path": str(tmp_path / "missing.bundle"),
        "threads": 1,
        "warmup": 0,
        "texts": {"short": ["a"], "long": ["a"], "batch": ["a"]},
    }
    with pytest.raises(BenchError, match="missing.bundle.*does not exist"):
        run_child(plan)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    work, out = tmp_path_factory.mktemp("work"), tmp_path_factory.mktemp("out")
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "side_by_side.py"),
            "--smoke",
            "--work",
            str(work),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((out / "side_by_side.json").read_text()), out


def test_the_machine_record_says_how_much_of_the_page_cache_is_huge_pages() -> None:
    """Libraries written just before a run map as whole huge folios: the record must tell such a run."""
    from langtrim.packager.bench.report import _huge_pages_note
    from langtrim.packager.bench.results import machine

    recorded = machine()["page_cache_huge_pages_mb"]
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file() and "FileHugePages:" in meminfo.read_text():
        assert isinstance(recorded, float) and recorded >= 0
    assert _huge_pages_note({"page_cache_huge_pages_mb": 0.0}) == ""
    assert _huge_pages_note({}) == ""
    note = _huge_pages_note({"page_cache_huge_pages_mb": 114.7})
    assert "115 MB" in note and "peak RSS" in note


@pytest.mark.slow
def test_smoke_run_records_machine_versions_and_settings(smoke) -> None:
    results, _ = smoke
    assert {"created", "machine", "versions", "settings", "texts", "engines", "runs", "targets"} <= set(
        results
    )
    assert results["machine"]["cpu"] and results["machine"]["logical_cores"] >= 1
    assert {"onnxruntime", "torch", "transformers", "tokenizers"} <= set(results["versions"])
    assert results["settings"]["mode"] == "smoke" and results["settings"]["repeats"] == 1


@pytest.mark.slow
def test_smoke_run_measures_every_engine_side_by_side(smoke) -> None:
    results, _ = smoke
    labels = {engine["label"] for engine in results["engines"]}
    assert {
        "PyTorch fp32, untrimmed",
        "ONNX fp32, untrimmed",
        "ONNX int8, untrimmed",
        "fp32, en,fr,de",
        "int8, en,fr,de",
        "int8, en",
        "fp32, en",
        "fastembed int8, untrimmed",
        "fastembed on int8, en,fr,de",
        "sentence-transformers ONNX int8, untrimmed",
    } <= labels
    threads = results["settings"]["threads"]
    assert {(run["engine"], run["threads"]) for run in results["runs"]} == {
        (label, n) for label in labels for n in threads
    }


@pytest.mark.slow
def test_smoke_run_sizes_are_the_files_real_sizes(smoke) -> None:
    results, _ = smoke
    for engine in results["engines"]:
        path = Path(engine["path"])
        assert engine["disk_bytes"] == _real_bytes(path) > 0
        if engine["onnx_file"]:  # a peer library's file, e.g. onnx/model_qint8_avx2.onnx
            weights = list(path.glob(engine["onnx_file"] + "*"))
        elif engine["kind"] == "onnx":
            weights = list(path.glob("model.onnx*"))
        else:
            weights = list(path.glob("*.safetensors"))
        assert engine["model_file_bytes"] == sum(p.stat().st_size for p in weights)
    by_label = {engine["label"]: engine for engine in results["engines"]}
    assert by_label["int8, en,fr,de"]["disk_bytes"] < by_label["ONNX int8, untrimmed"]["disk_bytes"]
    assert by_label["int8, en"]["vocab_rows"] < by_label["int8, en,fr,de"]["vocab_rows"]


@pytest.mark.slow
def test_smoke_run_figures_are_positive_and_consistent(smoke) -> None:
    results, _ = smoke
    memory_gb = results["machine"]["memory_gb"]
    for run in results["runs"]:
        (process,) = run["processes"]
        assert all(process[key] > 0 for key in METRICS), (run["engine"], process)
        assert 10 < process["rss_after_load_mb"] <= process["rss_after_first_mb"] <= process["rss_peak_mb"]
        assert process["rss_peak_mb"] < memory_gb * 1000
        assert process["cold_start_s"] > process["load_s"] + process["import_s"]
        assert process["short_p95_ms"] >= process["short_p50_ms"]
        assert process["long_p95_ms"] >= process["long_p50_ms"]
        for figure in run["summary"].values():
            assert figure["min"] <= figure["median"] <= figure["max"]
        if run["engine"].startswith("PyTorch"):
            tokens = process["tokens_per_text"]
            assert 14 <= tokens["short"] <= 18 and 120 <= tokens["long"] <= 128
            assert run["ratios"]["cold_start_s"] == 1
        elif "untrimmed" not in run["engine"]:
            assert run["ratios"]["disk"] > 1, "a trimmed bundle is smaller than the original"
        if not run["engine"].startswith("PyTorch"):  # every engine computes what PyTorch computes
            bound = 0.9999 if run["engine"].startswith(("fp32", "ONNX fp32")) else 0.99
            assert run["cosine_to_pytorch"] > bound, (run["engine"], run["cosine_to_pytorch"])


@pytest.mark.slow
def test_smoke_run_writes_the_table_and_the_plots(smoke) -> None:
    results, out = smoke
    table = (out / "side_by_side.md").read_text()
    for heading in ("## Side by side, 1 thread", "## Ratios to PyTorch", "## Scaling", "## Targets"):
        assert heading in table
    assert all(f"| {engine['label']} |" in table for engine in results["engines"])
    for name in ("size_memory_load", "speed", "scaling"):
        png = out / f"side_by_side_{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    assert [target["name"] for target in results["targets"]][0] == "on-disk size"
    against = {target["against"] for target in results["targets"]}
    assert against == {"PyTorch", "fastembed int8, untrimmed"}
    assert "x fastembed int8, untrimmed" in table


@pytest.mark.slow
def test_langtrim_bench_measures_a_bundle_against_its_source(
    tiny_models, sentences, tmp_path, monkeypatch, capsys
):
    from langtrim.packager.counting.inputs import CorpusSpec
    from langtrim.packager.models.sources import ModelSource
    from langtrim.packager.pack.job import run_pack
    from langtrim.packager.pack.parity import Gates
    from langtrim.packager.selection.choose import SelectionSettings
    from langtrim.packager.selection.languages import parse_languages
    from tests.support.cli import run_cli

    corpus = tmp_path / "fr.txt"
    corpus.write_text("\n".join(sentences("fr")[:300]), encoding="utf-8")
    bundle, model = tmp_path / "bundle", tiny_models["xlmr"]
    run_pack(
        ModelSource(model, str(model), "tiny", is_default=False),
        parse_languages("fr"),
        out=bundle,
        corpora=[CorpusSpec("fr", (str(corpus),))],
        settings=SelectionSettings(threshold=0.0),
        gates=Gates(0, 0, 1),
    )
    args = ["bench", str(bundle), "--against", str(model), "--repeats", "1", "--threads", "1"]
    code, stdout, stderr = run_cli([*args, "--out", str(tmp_path / "out"), "--json"], monkeypatch, capsys)
    assert code == 0, stderr
    results = json.loads(stdout)
    assert [engine["kind"] for engine in results["engines"]] == ["torch", "onnx"]
    assert results["runs"][1]["ratios"]["disk"] > 1 and results["settings"]["languages"] == ["fr"]
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"bench.json", "bench.md", "bench_speed.png"}
    # The table `langtrim bench` prints without --json, on an 80-column terminal and a wide one (one bench run
    # serves both checks: a second would take as long again).
    from langtrim.packager import cli
    from langtrim.packager.bench.report import print_bench
    from tests.support.cli import assert_fits_80_columns

    for columns in (80, 200):
        monkeypatch.setenv("COLUMNS", str(columns))
        print_bench(results, cli.report_console())
        assert_fits_80_columns(capsys.readouterr().out)


@pytest.mark.slow
def test_read_all_weights_makes_pytorchs_memory_mapped_weights_resident(tiny_models, mbert_tokenizer) -> None:
    """safetensors are memory-mapped: a lazy PyTorch engine never reads the embedding rows no text touched,
    so its memory hides most of the vocabulary; `read_all_weights` counts the whole model, as the paper did."""

    from langtrim.packager.bench.measure import _child_plan, torch_engine

    model = tiny_models["mbert"]
    texts = bench_texts(mbert_tokenizer, ("en",), short=2, long=1, batches=1)
    lazy = torch_engine(model, "lazy", "mbert")
    after_load = {
        read_all: run_child(_child_plan(replace(lazy, read_all_weights=read_all), 1, texts, 0, "full"))[
            "rss_after_load_mb"
        ]
        for read_all in (False, True)
    }
    embeddings_mb = 119_547 * 32 * 4 / 1e6  # the vocabulary's rows: most of this model's weights
    assert after_load[True] - after_load[False] > 0.5 * embeddings_mb, after_load
