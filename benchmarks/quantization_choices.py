"""Which --quantize / --quantize-embeddings / --optimize should `langtrim pack` default to?

For the trimmed default model (multilingual-e5-small cut to en,fr,de) this builds each ONNX variant with
`build_onnx_variant`, then measures:

- file size (MB, 10^6 bytes) of the .onnx;
- quality: cosine between the variant's and PyTorch's sentence embeddings on the shipped Tatoeba sentences,
  per language ("query: " prefix, mean pooling over the attention mask, L2 normalisation, as e5 is used):
  mean, min and 1st percentile. Both sides get the same token ids, so only the graph's numerics differ;
- speed, onnxruntime with 1 intra-op thread, in fresh processes (--rounds per variant, the rounds going over
  all variants in turn): median latency of one sentence at batch 1 and sentences per second at batch 32
  (median batch time), after a warm-up; also the session load time. Latency is given as the thread's CPU
  time, and wall-clock time in brackets: with one thread the CPU time is the compute itself and stays
  steady when other work shares the machine.

    python benchmarks/quantization_choices.py                      # table + benchmarks/results/quantization_choices.json
    python benchmarks/quantization_choices.py --model-dir /tmp/e5-en-fr-de --work /tmp/qc

Without --model-dir the script runs `langtrim trim -l en,fr,de` into the work directory first.
The int8 rows are `--quantize int8-dynamic` (the default before batch-invariant `int8`, which
benchmarks/exact_quantization.py compares with it). The recommended defaults printed at the end are the fastest variant (batch-1 CPU time) that meets both
targets: mean cosine >= 0.99 in every language and a file <= 40 MB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "quantization_choices.json"
PREFIX = "query: "
MIN_MEAN_COSINE = 0.99
MAX_MEGABYTES = 40.0


@dataclass(frozen=True)
class Variant:
    quantize: str
    embeddings: str
    optimize: str
    # quantize_onnx's int8 options; rows that change them show why the defaults are what they are
    per_channel: bool = True
    reduce_range: bool = True

    @property
    def label(self) -> str:
        notes = [
            *([] if self.per_channel else ["per-tensor weights"]),
            *([] if self.reduce_range else ["8-bit range"]),
        ]
        return self.quantize + (f" ({', '.join(notes)})" if notes else "")


# fp32 first: it is the reference every other row is read against.
VARIANTS = [
    Variant("none", "fp32", "none"),
    Variant("none", "fp32", "basic"),
    Variant("none", "fp32", "fused"),
    Variant("none", "per-row", "basic"),
    *[
        Variant("int8-dynamic", embeddings, optimize)
        for embeddings in ("fp32", "per-tensor", "per-row")
        for optimize in ("none", "basic", "fused")
    ],
    Variant("int8-dynamic", "per-row", "basic", per_channel=False),
    Variant("int8-dynamic", "per-row", "basic", reduce_range=False),
    Variant("int8-block", "per-row", "basic"),
    Variant("int8-block", "per-row", "fused"),
    Variant("int4", "fp32", "basic"),
    Variant("int4", "per-row", "basic"),
    Variant("int4", "per-row", "fused"),
]


@dataclass(frozen=True)
class LanguageQuality:
    language: str
    sentences: int
    mean: float
    min: float
    p1: float


@dataclass(frozen=True)
class Speed:
    """Medians over fresh processes; cpu_* is the calling thread's CPU time, which with one intra-op thread is
    the compute itself and stays steady on a busy machine, where wall-clock time does not."""

    load_ms: float
    batch1_ms_median: float
    batch1_ms_min: float
    batch1_ms_max: float
    batch1_cpu_ms_median: float
    batch32_ms_median: float
    batch32_cpu_ms_median: float
    batch32_sentences_per_s: float  # from the CPU-time median
    processes: int


@dataclass(frozen=True)
class Row:
    variant: Variant
    megabytes: float
    build_seconds: float
    fused_operators: dict[str, int]
    quality: list[LanguageQuality]
    speed: Speed | None
    error: str | None = None

    def meets_targets(self) -> bool:
        return (
            self.error is None
            and self.megabytes <= MAX_MEGABYTES
            and all(q.mean >= MIN_MEAN_COSINE for q in self.quality)
        )


def _encode(tokenizer_path: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """Padded int64 inputs for `texts` ([batch, seq]), with token_type_ids zeros as the runtime feeds them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(512)
    pad_id = tokenizer.token_to_id("<pad>")
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id)
    encodings = tokenizer.encode_batch(texts)
    input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
    attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": np.zeros_like(input_ids),
    }


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """L2-normalised mean of `hidden` [batch, seq, dim] over the positions where `mask` [batch, seq] is 1."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def _batches(inputs: dict[str, np.ndarray], size: int) -> list[dict[str, np.ndarray]]:
    """Split padded inputs into batches, each cut to its own longest sentence as a runtime would pad."""
    batches = []
    for start in range(0, len(inputs["input_ids"]), size):
        batch = {name: value[start : start + size] for name, value in inputs.items()}
        length = int(batch["attention_mask"].sum(axis=1).max())
        batches.append({name: value[:, :length] for name, value in batch.items()})
    return batches


def torch_embeddings(model_dir: Path, batches: list[dict[str, np.ndarray]]) -> np.ndarray:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir, use_safetensors=True).eval()
    out = []
    with torch.inference_mode():
        for batch in batches:
            hidden = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state
            out.append(mean_pool(hidden.numpy(), batch["attention_mask"]))
    return np.concatenate(out)


def onnx_embeddings(onnx_path: Path, batches: list[dict[str, np.ndarray]]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    out = []
    for batch in batches:
        (hidden,) = session.run(["last_hidden_state"], {name: batch[name] for name in names})
        out.append(mean_pool(hidden, batch["attention_mask"]))
    return np.concatenate(out)


def _time_in_fresh_process(onnx_path: Path, inputs_file: Path) -> dict[str, list[float]]:
    """Run `--time` in a new interpreter so one variant's allocations and caches cannot help the next."""
    completed = subprocess.run(
        [sys.executable, __file__, "--time", str(onnx_path), "--inputs", str(inputs_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    timings: dict[str, list[float]] = json.loads(completed.stdout.strip().splitlines()[-1])
    return timings


def time_variant(
    onnx_path: Path, inputs_file: Path, rounds_b1: int = 2, rounds_b32: int = 3
) -> dict[str, list[float]]:
    """Per-run wall and thread-CPU milliseconds at batch 1 (100 sentences) and batch 32 (6 batches)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    start = time.perf_counter()
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - start) * 1e3
    names = [i.name for i in session.get_inputs()]
    stored = np.load(inputs_file)
    inputs = {name: stored[name] for name in stored.files}
    singles = _batches({k: v[:100] for k, v in inputs.items()}, 1)
    batches = _batches(inputs, 32)[:6]

    def run(batch: dict[str, np.ndarray]) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.thread_time()
        session.run(None, {name: batch[name] for name in names})
        return (time.perf_counter() - wall) * 1e3, (time.thread_time() - cpu) * 1e3

    for batch in singles[:20] + batches[:2]:  # warm-up
        run(batch)
    b1 = [run(batch) for _ in range(rounds_b1) for batch in singles]
    b32 = [run(batch) for _ in range(rounds_b32) for batch in batches]
    return {
        "load_ms": [load_ms],
        "b1_wall": [w for w, _ in b1],
        "b1_cpu": [c for _, c in b1],
        "b32_wall": [w for w, _ in b32],
        "b32_cpu": [c for _, c in b32],
    }


def _speed(timings: list[dict[str, list[float]]]) -> Speed:
    """Medians of each process's medians: one slow process (a busy moment) moves the result little."""

    def median_of(key: str) -> float:
        return statistics.median(statistics.median(t[key]) for t in timings)

    b1_walls = [statistics.median(t["b1_wall"]) for t in timings]
    b32_cpu = median_of("b32_cpu")
    return Speed(
        load_ms=round(median_of("load_ms"), 1),
        batch1_ms_median=round(median_of("b1_wall"), 2),
        batch1_ms_min=round(min(b1_walls), 2),
        batch1_ms_max=round(max(b1_walls), 2),
        batch1_cpu_ms_median=round(median_of("b1_cpu"), 2),
        batch32_ms_median=round(median_of("b32_wall"), 1),
        batch32_cpu_ms_median=round(b32_cpu, 1),
        batch32_sentences_per_s=round(32 / b32_cpu * 1e3, 1),
        processes=len(timings),
    )


def _quality(
    reference: np.ndarray, candidate: np.ndarray, offsets: dict[str, tuple[int, int]]
) -> list[LanguageQuality]:
    cosines = (reference * candidate).sum(axis=1)
    rows = []
    for language, (start, stop) in offsets.items():
        part = cosines[start:stop]
        rows.append(
            LanguageQuality(
                language=language,
                sentences=stop - start,
                mean=round(float(part.mean()), 5),
                min=round(float(part.min()), 5),
                p1=round(float(np.percentile(part, 1)), 5),
            )
        )
    return rows


def _build(variant: Variant, src: Path, dst: Path, config: dict) -> dict[str, int]:
    """Build one variant as `langtrim pack` would; rows with non-default int8 options go step by step."""
    from langtrim.packager.models.families import architecture
    from langtrim.packager.pack.quantize import (
        VariantSettings,
        build_onnx_variant,
        optimize_onnx,
        quantize_onnx,
    )

    settings = VariantSettings(variant.quantize, variant.embeddings, variant.optimize)  # type: ignore[arg-type]
    if variant.per_channel and variant.reduce_range:
        return dict(build_onnx_variant(src, dst, settings, config=config).fused_operators)
    _, heads, hidden = architecture(config).fusion_settings(config)
    optimized = optimize_onnx(
        src, dst.with_suffix(".optimized.onnx"), level=settings.optimize, num_heads=heads, hidden_size=hidden
    )
    quantize_onnx(
        optimized.onnx_path,
        dst,
        mode=settings.quantize,
        embeddings=settings.embeddings,
        per_channel=variant.per_channel,
        reduce_range=variant.reduce_range,
    )
    optimized.onnx_path.unlink()
    return dict(optimized.fused_operators)


def _trimmed_default(work: Path, languages: list[str]) -> Path:
    out = work / f"e5-{'-'.join(languages)}"
    if not (out / "model.safetensors").exists():
        subprocess.run(
            ["langtrim", "trim", "-l", ",".join(languages), "--out", str(out), "--force"], check=True
        )
    return out


def markdown(rows: list[Row], languages: list[str]) -> str:
    quality_headers = [f"{lang} mean / min / p1" for lang in languages]
    header = [
        "quantize",
        "embeddings",
        "optimize",
        "MB",
        *quality_headers,
        "b1 ms cpu (wall)",
        "b32 sent/s",
        "load ms",
        "meets",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if row.error:
            variant = row.variant
            lines.append(
                f"| {variant.label} | {variant.embeddings} | {variant.optimize} | failed: {row.error} |"
            )
            continue
        quality = [f"{q.mean:.4f} / {q.min:.4f} / {q.p1:.4f}" for q in row.quality]
        speed = row.speed
        cells = [
            row.variant.label,
            row.variant.embeddings,
            row.variant.optimize,
            f"{row.megabytes:.1f}",
            *quality,
            f"{speed.batch1_cpu_ms_median:.2f} ({speed.batch1_ms_median:.2f})" if speed else "-",
            f"{speed.batch32_sentences_per_s:.0f}" if speed else "-",
            f"{speed.load_ms:.0f}" if speed else "-",
            "yes" if row.meets_targets() else "no",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="a trimmed model directory (default: trim one)")
    parser.add_argument("--languages", default="en,fr,de")
    parser.add_argument(
        "--work", type=Path, help="keep the built variants here (default: a temporary directory)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--rounds", type=int, default=3, help="fresh timing processes per variant; 0: no timing"
    )
    parser.add_argument("--prefix", default=PREFIX, help='text put before each sentence (e5: "query: ")')
    parser.add_argument("--time", type=Path, help=argparse.SUPPRESS)  # child process: time one variant
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time:
        print(json.dumps(time_variant(args.time, args.inputs)))
        return

    from langtrim.packager.bench.results import machine, versions
    from langtrim.packager.pack.export import export_onnx
    from langtrim.packager.pack.quantize import onnx_bytes
    from langtrim.packager.shipped_text import shipped_sentences

    languages = args.languages.split(",")
    work = args.work or Path(tempfile.mkdtemp(prefix="langtrim-qc-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        model_dir = args.model_dir or _trimmed_default(work, languages)
        config = json.loads((model_dir / "config.json").read_text())
        per_language = {
            language: [args.prefix + s for s in shipped_sentences(language) or []] for language in languages
        }
        texts, offsets = [], {}
        for language, sentences in per_language.items():
            offsets[language] = (len(texts), len(texts) + len(sentences))
            texts += sentences
        batches = _batches(_encode(model_dir / "tokenizer.json", texts), 32)
        # Speed inputs: the languages interleaved, so every batch of 32 mixes lengths as real traffic does.
        interleaved = [s for group in zip(*per_language.values(), strict=False) for s in group]
        inputs_file = work / "speed_inputs.npz"
        np.savez(inputs_file, **_encode(model_dir / "tokenizer.json", interleaved))

        print(f"reference: PyTorch on {len(texts)} sentences", file=sys.stderr)
        reference = torch_embeddings(model_dir, batches)
        export = export_onnx(model_dir, work / "fp32")
        rows: list[Row] = []
        built_paths: dict[int, Path] = {}
        for variant in VARIANTS:
            dst = work / "variants" / f"{variant.label}-{variant.embeddings}-{variant.optimize}.onnx"
            dst = dst.with_name(dst.name.replace(" ", "_").replace("(", "").replace(")", "").replace(",", ""))
            print(f"build and compare {dst.stem}", file=sys.stderr)
            began = time.perf_counter()
            try:
                fused_operators = _build(variant, export.onnx_path, dst, config)
            except Exception as error:  # a failing variant is a result too
                rows.append(Row(variant, 0.0, 0.0, {}, [], None, repr(error)[:200]))
                continue
            built_paths[len(rows)] = dst
            rows.append(
                Row(
                    variant=variant,
                    megabytes=round(onnx_bytes(dst) / 1e6, 2),
                    build_seconds=round(time.perf_counter() - began, 1),
                    fused_operators=fused_operators,
                    quality=_quality(reference, onnx_embeddings(dst, batches), offsets),
                    speed=None,
                )
            )
        # Rounds go over all variants in turn, so a busy spell on the machine hits every variant alike.
        timings: dict[int, list[dict[str, list[float]]]] = {index: [] for index in built_paths}
        for round_number in range(args.rounds):
            print(f"timing round {round_number + 1}/{args.rounds}", file=sys.stderr)
            for index, path in built_paths.items():
                timings[index].append(_time_in_fresh_process(path, inputs_file))
        rows = [
            replace(row, speed=_speed(timings[i])) if timings.get(i) else row for i, row in enumerate(rows)
        ]
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    table = markdown(rows, languages)
    # Rows with non-default int8 options explain the defaults; they are not choices `pack` offers.
    passing = [row for row in rows if row.meets_targets() and row.variant.label == row.variant.quantize]
    best = min(
        passing,
        key=lambda row: (row.speed.batch1_cpu_ms_median if row.speed else 0.0, row.megabytes),
        default=None,
    )
    recommendation = (
        f"--quantize {best.variant.quantize} --quantize-embeddings {best.variant.embeddings} "
        f"--optimize {best.variant.optimize}"
        if best
        else "no variant meets both targets"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": " ".join(["python", "benchmarks/quantization_choices.py", *sys.argv[1:]]),
                "model": str(model_dir.name),
                "languages": languages,
                "targets": {"min_mean_cosine": MIN_MEAN_COSINE, "max_megabytes": MAX_MEGABYTES},
                "machine": machine(),
                "versions": versions(
                    (
                        "langtrim",
                        "onnxruntime",
                        "onnx",
                        "optimum-onnx",
                        "optimum",
                        "torch",
                        "transformers",
                        "onnx-ir",
                    )
                ),
                "rows": [asdict(row) for row in rows],
                "recommendation": recommendation,
            },
            indent=2,
        )
        + "\n"
    )
    print(table)
    print(f"\nfastest at batch 1 (smallest, untimed) among variants meeting both targets: {recommendation}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
