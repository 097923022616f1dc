"""Which int8 quantization gives batch-invariant vectors without losing quality or speed?

For a bundle packed by `langtrim pack` (default: multilingual-e5-small cut to en,fr,de) this rebuilds the
bundle's model.onnx in each variant from the same fp32 export and measures, in one run:

- invariance: every held-out sentence embedded alone vs inside calls of 7, 32 and all texts, at 1 and 2
  threads: the share of rows bit-identical and the lowest cosine;
- quality: cosine to the PyTorch (trimmed) model on the held-out sentences (the shipped Tatoeba sentences
  after the first `calibration.CALIBRATION_SENTENCES` of each language, which static variants calibrate on),
  "query: " prefix, mean pooling, as e5 is used; mean, min, 1st percentile;
- speed, 1 intra-op thread, in fresh processes, the variants interleaved round by round: a short text at
  batch 1, a 128-token text at batch 1, 32 held-out sentences in one call. Medians over the rounds (each
  round's figure is itself a median over repeats), with the min-max range.

    python benchmarks/exact_quantization.py                 # table + benchmarks/results/exact_quantization.json
    python benchmarks/exact_quantization.py --bundle out/en-fr-de --trimmed /tmp/trimmed --rounds 5

Without --bundle the script trims and packs the default model into the work directory first.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "exact_quantization.json"
LANGUAGES = ("en", "fr", "de")
PREFIX = "query: "
LONG_TOKENS = 128


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "pack" (a `--quantize` mode as pack builds it), "exact" (int8 with other choices), "qdq"
    mode: str = "int8"  # for "pack"
    per_token: str = "wider"  # for "exact"
    weight_bits: int = 7  # for "exact"


VARIANTS = [
    Variant("int8-dynamic (the default before)", "pack", mode="int8-dynamic"),
    Variant("int8 (the default now)", "pack", mode="int8"),
    Variant("int8, 8-bit weights", "exact", weight_bits=8),
    Variant("int8, per-token scales everywhere", "exact", per_token="all"),
    Variant("onnxruntime static QDQ, MinMax", "qdq"),
    Variant("int8-block (MatMulNBits)", "pack", mode="int8-block"),
    Variant("fp32", "pack", mode="none"),
]


def machine() -> dict[str, object]:
    """The CPU and its flags, as every result should say where it was measured."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(
        line.split(":", 1)
        for line in info.splitlines()
        if ":" in line and line.startswith(("model name", "flags"))
    )
    import onnxruntime

    flags = fields.get("flags\t\t", fields.get("flags", "")).split()
    return {
        "cpu": " ".join(fields.get("model name\t", platform.processor()).split()),
        "cores": len([line for line in info.splitlines() if line.startswith("processor")]),
        "cpu_flags": flags,
        "int8_paths": [flag for flag in flags if flag in ("avx2", "avx512_vnni", "avx_vnni", "amx_int8")],
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
    }


def held_out() -> list[str]:
    from langtrim.packager.pack.calibration import CALIBRATION_SENTENCES
    from langtrim.packager.shipped_text import shipped_sentences

    return [s for language in LANGUAGES for s in (shipped_sentences(language) or [])[CALIBRATION_SENTENCES:]]


def _qdq(src: Path, dst: Path, ids: list[np.ndarray]) -> None:
    """onnxruntime's own static quantization: QDQ, MatMuls on weights, MinMax ranges on the same sentences.
    (Its histogram methods, Entropy and Percentile, cannot merge calibration texts of different lengths.)"""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    names = {value.name for value in onnx.load(str(src), load_external_data=False).graph.input}

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(ids)

        def get_next(self) -> dict[str, np.ndarray] | None:
            row = next(self.rows, None)
            if row is None:
                return None
            ids_ = row[None, :]
            feed = {
                "input_ids": ids_,
                "attention_mask": np.ones_like(ids_),
                "token_type_ids": np.zeros_like(ids_),
            }
            return {name: value for name, value in feed.items() if name in names}

    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra_options={"MatMulConstBOnly": True},
    )


def build(variant: Variant, optimized: Path, bundle: Path, dst: Path, ids: list[np.ndarray]) -> float:
    """`bundle` with its model.onnx rebuilt as `variant` says, at `dst`; returns the build seconds."""
    import onnx

    from langtrim.packager.pack import exact_int8, quantize

    shutil.copytree(bundle, dst)
    for name in ("model.onnx", "model.onnx.data"):
        (dst / name).unlink(missing_ok=True)
    started = time.perf_counter()
    embeddings = "fp32" if variant.mode == "none" else "per-row"
    if variant.kind == "pack":
        quantize.quantize_onnx(
            optimized, dst / "model.onnx", mode=variant.mode, embeddings=embeddings, calibration_ids=ids
        )
    else:
        graph = dst.parent / f"{dst.name}-float.onnx"
        if variant.kind == "qdq":
            _qdq(optimized, graph, ids)
        else:
            model = onnx.load(str(optimized))
            quantize._name_nodes(model)
            exact_int8.quantize_exact_int8(
                model, ids, dst.parent, per_token=variant.per_token, weight_bits=variant.weight_bits
            )
            quantize._save(model, graph)
        quantize.quantize_onnx(graph, dst / "model.onnx", mode="none", embeddings="per-row")
    return time.perf_counter() - started


def invariance(bundle: Path, texts: list[str]) -> dict[str, float]:
    from langtrim.runtime import Encoder

    lowest, identical, compared = 1.0, 0, 0
    for threads in (1, 2):
        encoder = Encoder(bundle, threads=threads, verify="none")
        alone = np.concatenate([encoder.embed([text]) for text in texts])
        for size in (7, 32, len(texts)):
            mixed = np.concatenate(
                [encoder.embed(texts[i : i + size], batch_size=32) for i in range(0, len(texts), size)]
            )
            cosines = (alone * mixed).sum(axis=1)
            lowest = min(lowest, float(cosines.min()))
            identical += int((alone == mixed).all(axis=1).sum())
            compared += len(texts)
    return {"identical_share": identical / compared, "min_cosine": lowest}


def torch_reference(trimmed: Path, ids: list[np.ndarray]) -> np.ndarray:
    """The PyTorch model's mean-pooled, normalised embeddings of the same token ids, one text at a time."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(trimmed)).eval()
    rows = []
    with torch.no_grad():
        for sequence in ids:
            row = torch.as_tensor(np.asarray(sequence, dtype=np.int64))[None, :]
            hidden = model(input_ids=row, attention_mask=torch.ones_like(row)).last_hidden_state
            rows.append(hidden.mean(dim=1)[0].numpy())
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def quality(bundle: Path, texts: list[str], reference: np.ndarray) -> dict[str, float]:
    from langtrim.runtime import Encoder

    vectors = Encoder(bundle, threads=1, verify="none").embed(texts)
    cosines = (vectors * reference).sum(axis=1)
    return {
        "mean": float(cosines.mean()),
        "min": float(cosines.min()),
        "p1": float(np.percentile(cosines, 1)),
    }


_TIMER = r"""
import json, statistics, sys, time
from langtrim.runtime import Encoder
bundle, texts = sys.argv[1], json.loads(sys.stdin.read())
encoder = Encoder(bundle, threads=1, verify="none")
short, long, batch = texts["short"], texts["long"], texts["batch"]
def median_ms(call, repeats):
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter(); call(); times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000
print(json.dumps({
    "short_ms": median_ms(lambda: encoder.embed([short]), 60),
    "long_ms": median_ms(lambda: encoder.embed([long]), 15),
    "batch32_per_s": 32 / (median_ms(lambda: encoder.embed(batch), 7) / 1000),
}))
"""


def time_once(bundle: Path, texts: dict[str, object]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _TIMER, str(bundle)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def timing_texts(bundle: Path, texts: list[str]) -> dict[str, object]:
    """A short sentence, a text of exactly LONG_TOKENS tokens, and 32 held-out sentences."""
    from langtrim.runtime import Encoder

    encoder = Encoder(bundle, verify="none")
    long = " ".join(texts)
    ids = encoder.tokenize([long]).ids[0][1 : LONG_TOKENS - 1]
    long = encoder.decode([ids])[0]
    while len(encoder.tokenize([long]).ids[0]) > LONG_TOKENS:
        long = long.rsplit(" ", 1)[0]
    return {"short": "query: How are you?", "long": long, "batch": texts[:: max(1, len(texts) // 32)][:32]}


def _pack(work: Path) -> tuple[Path, Path]:
    trimmed, bundle = work / "trimmed", work / "bundle"
    langtrim = Path(sys.executable).parent / "langtrim"
    if not trimmed.exists():
        subprocess.run([str(langtrim), "trim", "-l", ",".join(LANGUAGES), "-o", str(trimmed)], check=True)
    if not bundle.exists():
        subprocess.run([str(langtrim), "pack", str(trimmed), "-o", str(bundle)], check=True)
    return trimmed, bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a bundle `langtrim pack` made of --trimmed")
    parser.add_argument("--trimmed", type=Path, help="the trimmed model directory the bundle was packed from")
    parser.add_argument("--work", type=Path, help="where variants are built (default: a temporary directory)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per variant for the timings")
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from langtrim.packager.pack.export import export_onnx
    from langtrim.packager.pack.quantize import onnx_bytes, optimize_onnx
    from langtrim.runtime import Encoder

    work = args.work or Path(tempfile.mkdtemp(prefix="exact-quantization-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.bundle and args.trimmed:
        trimmed, bundle = args.trimmed, args.bundle
    else:
        trimmed, bundle = _pack(work)
    exported = export_onnx(trimmed, work / "onnx")
    optimized = optimize_onnx(exported.onnx_path, work / "optimized.onnx", level="basic").onnx_path

    texts = held_out()
    prompted = [PREFIX + text for text in texts]
    cached = work / "torch_reference.npy"  # the PyTorch side is the slow part of a rerun
    if cached.exists():
        reference = np.load(cached)
    else:
        reference = torch_reference(trimmed, Encoder(bundle, verify="none").tokenize(prompted).ids)
        np.save(cached, reference)
    variants = [v for v in VARIANTS if not args.only or v.name in args.only]
    from langtrim.packager.pack.calibration import calibration_ids

    calibration = calibration_ids(trimmed / "tokenizer.json", LANGUAGES, ["query: ", "passage: "], 512)
    rows: dict[str, dict[str, object]] = {}
    for variant in variants:
        dst = work / "variants" / variant.name.replace(" ", "_").replace(",", "")
        shutil.rmtree(dst, ignore_errors=True)
        seconds = build(variant, optimized, bundle, dst, calibration)
        rows[variant.name] = {
            "variant": asdict(variant),
            "path": str(dst),
            "build_s": round(seconds, 1),
            "megabytes": round(onnx_bytes(dst / "model.onnx") / 1e6, 1),
            "invariance": invariance(dst, prompted),
            "quality": quality(dst, prompted, reference),
            "timings": [],
        }
        print(variant.name, rows[variant.name]["invariance"], rows[variant.name]["quality"], flush=True)
    timed = timing_texts(bundle, prompted)
    for _ in range(args.rounds):
        for row in rows.values():
            row["timings"].append(time_once(Path(str(row["path"])), timed))  # type: ignore[union-attr]
    for row in rows.values():
        timings = row["timings"]
        row["speed"] = {
            key: {
                "median": statistics.median(t[key] for t in timings),  # type: ignore[index]
                "min": min(t[key] for t in timings),  # type: ignore[index]
                "max": max(t[key] for t in timings),  # type: ignore[index]
            }
            for key in ("short_ms", "long_ms", "batch32_per_s")
        }
    result = {
        "machine": machine(),
        "command": " ".join(["python", "benchmarks/exact_quantization.py", *sys.argv[1:]]),
        "held_out_sentences": len(texts),
        "rounds": args.rounds,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(result) + "\n")
    print(table(result))


def table(result: dict) -> str:  # type: ignore[type-arg]
    lines = [
        f"CPU: {result['machine']['cpu']} ({', '.join(result['machine']['int8_paths'])}), "
        f"onnxruntime {result['machine']['onnxruntime']}, 1 thread; {result['held_out_sentences']} held-out "
        f"sentences; medians of {result['rounds']} fresh processes [min-max]",
        "",
        "| variant | rows identical | cos min alone vs batch | cos to PyTorch mean | min | short ms | "
        "128-tok ms | batch-32 /s | MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["rows"].items():

        def cell(key: str, digits: int, speed: dict = row["speed"]) -> str:  # type: ignore[type-arg]
            s = speed[key]
            return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"

        lines.append(
            f"| {name} | {row['invariance']['identical_share']:.1%} | {row['invariance']['min_cosine']:.6f} | "
            f"{row['quality']['mean']:.4f} | {row['quality']['min']:.4f} | {cell('short_ms', 1)} | "
            f"{cell('long_ms', 1)} | {cell('batch32_per_s', 0)} | {row['megabytes']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
