"""Measure engines side by side: on-disk size, peak memory, load time, cold start, latency and throughput.

An engine is a model as some process would serve it: the original in PyTorch (transformers), a bundle in
the torch-free runtime (`langtrim.runtime.Encoder`; an untrimmed bundle is the original exported to ONNX),
or an ONNX folder in a library users pick instead (fastembed; sentence-transformers with backend="onnx").
Every figure but the size comes from fresh processes (`child`), one per engine, thread count and
repetition; the repetitions go round all engines in turn, so a busy spell on the machine hits every engine
alike. Each figure is summarised as the median over processes with its min and max; a process's latency
p50/p95 are over its own requests. Every engine gets the same texts (`bench_texts`).

`benchmarks/side_by_side.py` builds the bundles and runs the whole comparison; `langtrim bench` runs one
bundle against its source model (`job.bench_bundle`).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tokenizers import Tokenizer

from langtrim.packager.errors import BenchError
from langtrim.packager.outputs import directory_bytes
from langtrim.packager.pack.quantize import onnx_bytes
from langtrim.packager.shipped_text import shipped_sentences
from langtrim.runtime.bundle import MODEL_FILE, read_manifest, regular_files
from langtrim.runtime.errors import UsageError

# The figures each process reports, in table order; "lower" says which direction is better.
METRICS: dict[str, tuple[str, str, bool]] = {  # key -> (label, unit, lower is better)
    "rss_after_load_mb": ("peak RSS after load", "MB", True),
    "rss_after_first_mb": ("peak RSS after first request", "MB", True),
    "rss_peak_mb": ("peak RSS at the end", "MB", True),
    "rss_after_import_mb": ("peak RSS after imports", "MB", True),
    "import_s": ("imports", "s", True),
    "load_s": ("load (model + tokenizer)", "s", True),
    "first_request_s": ("first request", "s", True),
    "cold_start_s": ("cold start", "s", True),
    "short_p50_ms": ("batch 1, short: p50", "ms", True),
    "short_p95_ms": ("batch 1, short: p95", "ms", True),
    "long_p50_ms": ("batch 1, 128 tokens: p50", "ms", True),
    "long_p95_ms": ("batch 1, 128 tokens: p95", "ms", True),
    "batch32_sentences_per_s": ("batch 32: throughput", "sentences/s", False),
    # CPU time of the process (all threads): steadier than wall-clock time on a shared machine
    "cold_start_cpu_s": ("cold start, CPU time", "s", True),
    "short_p50_cpu_ms": ("batch 1, short: p50 CPU time", "ms", True),
    "long_p50_cpu_ms": ("batch 1, 128 tokens: p50 CPU time", "ms", True),
    "batch32_cpu_sentences_per_s": ("batch 32: sentences per CPU second", "sentences/s", False),
}
SHORT_TOKENS = (14, 18)  # a "short" text: this many tokens, special tokens and prompt included
LONG_TOKENS = 128
EngineKind = Literal["torch", "onnx", "fastembed", "sentence-transformers"]
PEER_KINDS: tuple[EngineKind, ...] = ("fastembed", "sentence-transformers")


@dataclass(frozen=True)
class Engine:
    label: str  # unique within a run, e.g. "trimmed int8 fused"
    kind: EngineKind
    path: str  # a Hugging Face directory (torch) or a bundle (onnx)
    family: str  # the source model, e.g. "multilingual-e5-small"; ratios compare within a family
    trimmed: bool
    languages: tuple[str, ...]  # the bundle's languages; () for the untrimmed original
    precision: str  # "fp32", "int8", ...
    optimize: str  # the bundle's graph optimisation ("none", "basic", "fused"); "-" for torch
    vocab_rows: int | None  # embedding rows the tokenizer can produce (kept tokens)
    pooling: str = "mean"
    normalize: bool = True
    max_length: int = 512
    disk_bytes: int = 0  # every file of the directory, as shipped
    model_file_bytes: int = 0  # the model alone: model.onnx (+ model.onnx.data) or the .safetensors files
    parity_passed: bool | None = None
    onnx_file: str = ""  # a peer library's model file, relative to `path`
    # torch: read every weight while loading, so the whole model is resident as onnxruntime's is (safetensors
    # are memory-mapped: otherwise rows no text has touched are never read and never counted)
    read_all_weights: bool = False


def bundle_engine(bundle: Path, label: str, family: str, *, trimmed: bool = True) -> Engine:
    """An engine serving `bundle` with the runtime; what it is comes from its manifest."""
    manifest = read_manifest(bundle, verify="size")
    total, _ = directory_bytes(bundle)
    return Engine(
        label=label,
        kind="onnx",
        path=str(bundle),
        family=family,
        trimmed=trimmed,
        languages=manifest.languages if trimmed else (),
        precision="fp32" if manifest.quantization.mode == "none" else manifest.quantization.mode,
        optimize=manifest.optimization,
        vocab_rows=manifest.vocab.kept_size,
        pooling=manifest.pooling,
        normalize=manifest.normalize,
        max_length=manifest.max_length,
        disk_bytes=total,
        model_file_bytes=onnx_bytes(bundle / MODEL_FILE),
        parity_passed=manifest.parity_passed,
    )


def torch_engine(model_dir: Path, label: str, family: str, like: Engine | None = None) -> Engine:
    """An engine serving the original Hugging Face directory with transformers, pooling as `like` does."""
    total, _ = directory_bytes(model_dir)
    tokenizer_file = model_dir / "tokenizer.json"
    rows = Tokenizer.from_file(str(tokenizer_file)).get_vocab_size() if tokenizer_file.is_file() else None
    return Engine(
        label=label,
        kind="torch",
        path=str(model_dir),
        family=family,
        trimmed=False,
        languages=(),
        precision="fp32",
        optimize="-",
        vocab_rows=rows,
        pooling=like.pooling if like else "mean",
        normalize=like.normalize if like else True,
        max_length=like.max_length if like else 512,
        disk_bytes=total,
        model_file_bytes=sum(p.stat().st_size for p in model_dir.glob("*.safetensors")),
    )


def peer_engine(
    folder: Path, label: str, family: str, kind: EngineKind, onnx_file: str, like: Engine
) -> Engine:
    """An engine serving the ONNX file `onnx_file` of `folder` with a peer library (a `PEER_KINDS` kind),
    pooling, normalising and truncating as the bundle `like` does; trimmed when `like` is."""
    total, _ = directory_bytes(folder)
    rows = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab_size()
    return Engine(
        label=label,
        kind=kind,
        path=str(folder),
        family=family,
        trimmed=like.trimmed,
        languages=like.languages,
        precision="int8",
        optimize="-",
        vocab_rows=rows,
        pooling=like.pooling,
        normalize=like.normalize,
        max_length=like.max_length,
        disk_bytes=total,
        model_file_bytes=onnx_bytes(folder / onnx_file),
        onnx_file=onnx_file,
    )


@dataclass(frozen=True)
class BenchTexts:
    """Real sentences, identical for every engine; the prompt (e.g. "query: ") is already in each text."""

    short: list[str]  # batch-1 latency, ~16 tokens each
    long: list[str]  # batch-1 latency, 128 tokens each (consecutive sentences of one language, cut)
    batch: list[str]  # throughput, in batches of 32; the languages interleaved as mixed traffic
    languages: tuple[str, ...]


def _interleaved(by_language: Mapping[str, list[str]]) -> list[str]:
    longest = max(len(sentences) for sentences in by_language.values())
    return [s[i] for i in range(longest) for s in by_language.values() if i < len(s)]


def _cut_to(tokenizer: Tokenizer, text: str, tokens: int) -> str:
    """The longest prefix of `text`, cut at a token boundary, that encodes to at most `tokens` tokens."""
    encoding = tokenizer.encode(text)
    index = min(tokens, len(encoding.ids)) - 2  # the last content token that fits beside the end token
    while index > 0:
        cut = text[: encoding.offsets[index][1]].rstrip()
        if len(tokenizer.encode(cut).ids) <= tokens:
            return cut
        index -= 1
    raise UsageError(f"cannot cut a text to {tokens} tokens")


def bench_texts(
    tokenizer: Tokenizer,
    languages: Sequence[str],
    *,
    prompt: str = "",
    short: int = 60,
    long: int = 12,
    batches: int = 8,
) -> BenchTexts:
    """Pick the benchmark's texts from the shipped Tatoeba sentences of `languages` with `tokenizer` (the
    source model's, so token counts are the original model's; a trimmed tokenizer may split a little more)."""
    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    by_language = {code: found for code in languages if (found := shipped_sentences(code))}
    if not by_language:
        raise UsageError(f"no shipped sentences for {', '.join(languages)}: benchmark languages need them")
    low, high = SHORT_TOKENS
    fitting = {
        code: [s for s in sentences if low <= len(tokenizer.encode(prompt + s).ids) <= high]
        for code, sentences in by_language.items()
    }
    short_texts = [prompt + s for s in _interleaved(fitting)][:short]
    long_texts: list[str] = []
    start = {code: 0 for code in by_language}
    while len(long_texts) < long:
        for code, sentences in by_language.items():
            passage, used = "", start[code]
            while used < len(sentences) and len(tokenizer.encode(prompt + passage).ids) < LONG_TOKENS:
                passage = f"{passage} {sentences[used]}".strip()
                used += 1
            start[code] = used if used < len(sentences) else 0
            long_texts.append(_cut_to(tokenizer, prompt + passage, LONG_TOKENS))
    mixed = [prompt + s for s in _interleaved(by_language)]
    batch_texts = (mixed * (1 + 32 * batches // len(mixed)))[: 32 * batches]
    return BenchTexts(short_texts, long_texts[:long], batch_texts, tuple(by_language))


def _child_plan(engine: Engine, threads: int, texts: BenchTexts, warmup: int, verify: str) -> dict[str, Any]:
    return {
        "engine": engine.kind,
        "path": engine.path,
        "threads": threads,
        "verify": verify,
        "pooling": engine.pooling,
        "normalize": engine.normalize,
        "max_length": engine.max_length,
        "onnx_file": engine.onnx_file,
        "read_all_weights": engine.read_all_weights,
        "warmup": warmup,
        "texts": {"short": texts.short, "long": texts.long, "batch": texts.batch},
    }


def evict_from_page_cache(path: Path) -> None:
    """Ask the OS to drop the cached pages of every file under `path` (a no-op where it cannot)."""
    if not hasattr(os, "posix_fadvise"):
        return
    os.sync()  # dirty pages stay cached until written back
    for file in regular_files(path).values():
        descriptor = os.open(file, os.O_RDONLY)
        try:
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:  # a file system without the advice: its files stay cached, as they were
            pass
        finally:
            os.close(descriptor)


def run_child(plan: Mapping[str, Any], timeout: float = 900.0) -> dict[str, Any]:
    """Measure once in a fresh interpreter; the clock starts just before the process is spawned."""
    import time

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as stream:
        json.dump(plan, stream)
    try:
        spawned_at = time.time()
        completed = subprocess.run(
            [sys.executable, "-m", "langtrim.packager.bench.child", stream.name, repr(spawned_at)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        os.unlink(stream.name)
    if completed.returncode != 0:
        tail = " | ".join(completed.stderr.strip().splitlines()[-3:])
        raise BenchError(f"measuring {plan['engine']} {plan['path']!r} failed: {tail}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@dataclass(frozen=True)
class Figure:
    median: float
    min: float
    max: float


@dataclass
class Run:
    """One engine at one thread count: every process's raw figures, their summary, ratios to PyTorch."""

    engine: str  # Engine.label
    threads: int
    processes: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Figure] = field(default_factory=dict)
    # metric -> how many times better than the family's PyTorch engine at the same thread count (>1: better)
    ratios: dict[str, float] = field(default_factory=dict)
    # the cosine of this engine's vector of the first short text to PyTorch's: a fast engine that computes
    # something else would show here
    cosine_to_pytorch: float | None = None


def summarize(processes: Sequence[Mapping[str, Any]]) -> dict[str, Figure]:
    return {
        key: Figure(statistics.median(values), min(values), max(values))
        for key in METRICS
        if (values := [float(p[key]) for p in processes])
    }


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / ((sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5 or 1.0)


def add_ratios(engines: Sequence[Engine], runs: Sequence[Run]) -> None:
    """Fill `Run.ratios` against the family's PyTorch engine at the same thread count, from the medians."""
    by_label = {engine.label: engine for engine in engines}
    reference = {
        (by_label[run.engine].family, run.threads): run
        for run in runs
        if by_label[run.engine].kind == "torch"
    }
    for run in runs:
        engine = by_label[run.engine]
        base = reference.get((engine.family, run.threads))
        if base is None:
            continue
        base_engine = by_label[base.engine]
        probes = [r.processes[0].get("probe") if r.processes else None for r in (run, base)]
        if probes[0] and probes[1]:
            run.cosine_to_pytorch = _cosine(probes[0], probes[1])
        run.ratios = {"disk": base_engine.disk_bytes / engine.disk_bytes}
        for key, (_, _, lower_is_better) in METRICS.items():
            mine, theirs = run.summary[key].median, base.summary[key].median
            if mine > 0 and theirs > 0:
                run.ratios[key] = theirs / mine if lower_is_better else mine / theirs


def measure(
    engines: Sequence[Engine],
    texts: BenchTexts,
    *,
    threads: Sequence[int] = (1,),
    repeats: int = 3,
    warmup_processes: int = 1,
    warmup_requests: int = 5,
    verify: str = "full",
    progress: Callable[[str], None] = lambda message: None,
) -> list[Run]:
    """Run every engine at every thread count `repeats` times, each in a fresh process, round by round.

    `warmup_processes` unrecorded rounds first (bytecode compiled, model files in the page cache), so the
    cold start measured is a process start with the files on a warm disk, as for a restarted worker.
    Before them every engine's files leave the page cache, so each engine's own first load reads them in,
    as after a deployment: how a file entered the cache decides how much of it a mapping makes resident
    (see `langtrim.runtime.bundle.file_digest`), and files this run has just written would otherwise
    count as the writer left them.
    """
    if repeats < 1:
        raise UsageError(f"repeats must be at least 1, got {repeats}")
    labels = [engine.label for engine in engines]
    if len(set(labels)) != len(labels):
        raise UsageError(f"engine labels must be unique, got {labels}")
    runs = {(engine.label, n): Run(engine.label, n) for engine in engines for n in threads}
    for engine in engines:
        evict_from_page_cache(Path(engine.path))
    for round_number in range(-warmup_processes, repeats):
        for engine in engines:
            for n in threads:
                if round_number < 0 and n != threads[0]:
                    continue
                what = "warm-up" if round_number < 0 else f"round {round_number + 1}/{repeats}"
                progress(f"{what}: {engine.label}, {n} thread{'s' if n > 1 else ''}")
                result = run_child(_child_plan(engine, n, texts, warmup_requests, verify))
                if round_number >= 0:
                    runs[(engine.label, n)].processes.append(result)
    ordered = list(runs.values())
    for run in ordered:
        run.summary = summarize(run.processes)
    add_ratios(engines, ordered)
    for run in ordered:  # compared: the vectors themselves are not a result
        for process in run.processes:
            process.pop("probe", None)
    return ordered


def parse_threads(value: str) -> list[int]:
    """ "1,all" -> [1, cores]: the thread counts to measure at."""
    cores = os.cpu_count() or 1
    try:
        counts = {cores if part.strip() == "all" else int(part) for part in value.split(",") if part.strip()}
    except ValueError:
        raise UsageError(f"--threads {value!r}: give thread counts and/or 'all', e.g. 1,all") from None
    if not counts or min(counts) < 1:
        raise UsageError(f"--threads {value!r}: give positive thread counts and/or 'all', e.g. 1,all")
    return sorted(counts)
