"""The paper's Table 3 at full size: mBERT and DistilmBERT trimmed with the paper's own lists, in PyTorch
(the paper's set-up) and as langtrim int8 bundles in the torch-free runtime, side by side.

The two models are built offline from their published configurations and the real mBERT vocabulary, with
RANDOM weights from a fixed seed (`tests/support/paper_models.py`): Table 3's figures (size on disk, memory,
loading and inference time) depend on the shapes, not the values, so they are measured honestly; no quality
figure comes from these weights. Trims use `--source paper` without fallback pieces, as the paper did.

Rows (the paper's, plus one):
  mBERT, DistilmBERT (untrimmed); mBERT 15langs (the 15 XNLI languages);
  mBERT en-xx: the size is the average over all 14 pairs (`langtrim trim --dry-run` figures), memory and
  time are measured on one representative pair, en-LANG (--language, default vi: en-vi and vi are the
  pair and the single language closest to the averages of the paper's languages that share one language);
  mBERT xx: the same over the 15 single languages, measured on LANG;
  DistilmBERT en-xx (not in the paper): for the goal that a DistilmBERT en-xx bundle runs batch-1 inference
  at least 4x faster than PyTorch mBERT.
Every row is measured as PyTorch (fp32, transformers) and as an int8 bundle (`langtrim pack`'s default).

Measured as the paper did, at 1 thread, each figure from fresh processes (`langtrim.packager.bench`):
size on disk (the model file); memory after loading and one inference (the process's peak RSS, and the
model's own share: that minus the peak after the imports, which is what the paper's figures track, about
twice the size for every row); loading time (model + tokenizer; median of --repeats loads, one per process);
inference: batch-1 p50 over 100 sentences of LANG (14-18 tokens) per process, median over the processes.

    python benchmarks/paper_table3.py                   # 18 min on 2 quiet cores, and ~25 min to build once
    python benchmarks/paper_table3.py --repeats 3       # a quicker look

Models and bundles are built into --work (default /tmp/langtrim-paper) and reused. Writes
paper_table3.json (every raw figure, machine, versions), paper_table3.md and paper_table3.png into --out
(default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import bench_bundles  # noqa: E402
import paper_table3_report  # noqa: E402

from langtrim.packager.bench.measure import Engine, bench_texts, bundle_engine, measure, torch_engine  # noqa: E402
from langtrim.packager.bench.results import results_json  # noqa: E402
from langtrim.packager.models.sources import ModelSource, load_tokenizer  # noqa: E402
from langtrim.packager.selection.choose import SelectionSettings  # noqa: E402
from langtrim.packager.selection.languages import parse_languages  # noqa: E402
from langtrim.packager.selection.paper import PAPER_LANGUAGES  # noqa: E402
from langtrim.packager.trim.job import run_trim  # noqa: E402
from langtrim.runtime.bundle import Verify  # noqa: E402
from tests.support.paper_models import PAPER_MODELS, SEED, build_paper_model, describe  # noqa: E402

PAPER_SETTINGS = SelectionSettings(source="paper", fallback=False)  # the authors' lists, nothing added
INT8 = "int8"  # `langtrim pack`'s default variant
# Table 3 of Abdaoui et al. (2020), Google Cloud n1-standard-1 (1 vCPU): size MB, memory MB, loading s,
# inference s (batch 1, one XNLI item).
PAPER_TABLE3 = {
    "mBERT": {"size_mb": 714, "memory_mb": 1401, "load_s": 4.18, "inference_s": 0.24},
    "DistilmBERT": {"size_mb": 542, "memory_mb": 1070, "load_s": 3.08, "inference_s": 0.12},
    "mBERT 15langs": {"size_mb": 564, "memory_mb": 1098, "load_s": 3.14, "inference_s": 0.24},
    "mBERT en-xx": {"size_mb": 445, "memory_mb": 860, "load_s": 2.76, "inference_s": 0.24},
    "mBERT xx": {"size_mb": 393, "memory_mb": 760, "load_s": 2.45, "inference_s": 0.24},
}
log = logging.getLogger("paper_table3")


@dataclass(frozen=True)
class Row:
    """One row of the table: a model cut to `languages` (None: untrimmed), measured on `languages`, with
    its size averaged over `size_sets` (the paper's averages) when given."""

    name: str
    model: str  # a PAPER_MODELS key
    languages: tuple[str, ...] | None
    size_sets: tuple[tuple[str, ...], ...] = ()


def table_rows(language: str) -> list[Row]:
    others = tuple(code for code in PAPER_LANGUAGES if code != "en")
    pairs = tuple(("en", code) for code in others)
    singles = tuple((code,) for code in PAPER_LANGUAGES)
    return [
        Row("mBERT", "mbert", None),
        Row("DistilmBERT", "distilmbert", None),
        Row("mBERT 15langs", "mbert", PAPER_LANGUAGES),
        Row("mBERT en-xx", "mbert", ("en", language), pairs),
        Row("mBERT xx", "mbert", (language,), singles),
        Row("DistilmBERT en-xx", "distilmbert", ("en", language), pairs),
    ]


def projected_sizes(source: ModelSource, sets: tuple[tuple[str, ...], ...]) -> dict[str, dict[str, Any]]:
    """`langtrim trim --dry-run` of every language set: kept rows and the safetensors size it would write."""
    sizes = {}
    for languages in sets:
        report = run_trim(
            source, parse_languages(",".join(languages)), out=None, settings=PAPER_SETTINGS, dry_run=True
        )
        sizes["-".join(languages)] = {"rows": report.tokens_kept, "size_mb": report.after.megabytes}
    return sizes


def parity_record(bundle: Path) -> dict[str, Any]:
    """What the bundle's parity.json says at full size: the trim's max |difference| of last hidden states on
    identically tokenized sentences, and each language's gates (on these random weights' own outputs)."""
    report = json.loads((bundle / "parity.json").read_text(encoding="utf-8"))
    return {
        "passed": report["passed"],
        "languages": {
            entry["language"]: {
                "sentences": entry["coverage"]["n_sentences"],
                "identical_tokenization": entry["coverage"]["identical_share"],
                "trim_max_abs_diff": entry["trim_max_abs_diff"],
                "end_to_end_cosine_mean": entry["end_to_end_cosine"]["mean"],
                "end_to_end_cosine_p1": entry["end_to_end_cosine"]["p1"],
                "failures": entry["failures"],
            }
            for entry in report["languages"]
        },
    }


def build_engines(
    rows: list[Row], work: Path, evaluation: dict[str, Path], say: Any, *, resident: bool = True
) -> tuple[list[Engine], dict[str, Any]]:
    """Every row as a PyTorch engine and an int8 bundle engine (built or reused), and what each row needs
    beside the measurements: sizes averaged over the paper's sets, the bundle's parity."""
    engines: list[Engine] = []
    facts: dict[str, Any] = {}
    sources = {}
    for name in PAPER_MODELS:
        path = build_paper_model(name, work / "models" / name)
        sources[name] = ModelSource(path, str(path), describe(name), is_default=False)
    for row in rows:
        source, folder = sources[row.model], work / row.model
        say(f"{row.name}: trimming and packing (or reusing)")
        if row.languages is None:
            hf_dir = source.path
            parity_languages = ("en",)
            trimmed = bench_bundles.untrimmed_dir(source, parity_languages, folder)
        else:
            hf_dir = trimmed = bench_bundles.trimmed_dir(
                source, row.languages, folder, settings=PAPER_SETTINGS
            )
        stem = "untrimmed" if row.languages is None else trimmed.name.removeprefix("trim-")
        packed = bench_bundles.bundle(
            trimmed, folder / f"{stem}-{INT8}", bench_bundles.VARIANTS[INT8], evaluation=evaluation
        )
        onnx = bundle_engine(packed, f"{row.name}, int8 bundle", row.name, trimmed=row.languages is not None)
        pytorch = torch_engine(hf_dir, f"{row.name}, PyTorch", row.name, like=onnx)
        engines += [dataclasses.replace(pytorch, read_all_weights=resident), onnx]
        facts[row.name] = {
            "model": row.model,
            "languages": list(row.languages) if row.languages else None,
            "parity": parity_record(packed),
            "projected_sizes": projected_sizes(source, row.size_sets) if row.size_sets else {},
        }
    return engines, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--language", default="vi", help="the measured en-xx pair is en-LANG, the xx model LANG"
    )
    parser.add_argument("--repeats", type=int, default=10, help="fresh processes (loads) per engine")
    parser.add_argument(
        "--warmup", type=int, default=1, help="unrecorded rounds first (files in the page cache)"
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/langtrim-paper"), help="built models and bundles (reused)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="results directory")
    parser.add_argument(
        "--build-only", action="store_true", help="build the models and bundles, measure nothing"
    )
    parser.add_argument(
        "--lazy-weights",
        action="store_true",
        help="PyTorch reads only the weights its texts touch (safetensors are memory-mapped), not all at load",
    )
    parser.add_argument(
        "--verify",
        default="full",
        choices=get_args(Verify),
        help="how the bundles check their files at load (Encoder(verify=)); the paper's table: full",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    if args.language not in PAPER_LANGUAGES or args.language == "en":
        parser.error(
            f"--language must be one of the paper's languages but en: {', '.join(PAPER_LANGUAGES[1:])}"
        )
    rows = table_rows(args.language)
    evaluation = bench_bundles.eval_texts(args.work, sorted({"en", args.language, *PAPER_LANGUAGES}))
    engines, facts = build_engines(rows, args.work, evaluation, say, resident=not args.lazy_weights)
    if args.build_only:
        say("built: " + ", ".join(engine.path for engine in engines))
        return

    mbert = ModelSource(args.work / "models" / "mbert", "mbert", describe("mbert"), is_default=False)
    texts = bench_texts(load_tokenizer(mbert), (args.language,), short=100, long=10, batches=1)
    load_before = os.getloadavg()  # the machine is shared: say how busy it was while measuring
    runs = measure(
        engines,
        texts,
        threads=[1],
        repeats=args.repeats,
        warmup_processes=args.warmup,
        verify=args.verify,
        progress=say,
    )
    settings = {
        "command": ("python benchmarks/paper_table3.py " + " ".join(sys.argv[1:])).strip(),
        "mode": "paper-table3",
        "weights": f"random, seed {SEED}: shapes and vocabulary of the real models, outputs meaningless",
        "models": {name: describe(name) for name in PAPER_MODELS},
        "selection": "the paper's published token lists (--source paper), no fallback pieces",
        "pytorch_weights": "memory-mapped, read as texts touch them"
        if args.lazy_weights
        else "every weight read at load (the whole model resident, as onnxruntime's is and as the paper's was)",
        "language": args.language,
        "repeats": args.repeats,
        "warmup_processes": args.warmup,
        "threads": [1],
        "verify": args.verify,
        "duration_s": round(time.perf_counter() - started),
        "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
    }
    results = {**results_json(engines, runs, texts, settings), "rows": facts, "paper": PAPER_TABLE3}
    written = paper_table3_report.write(results, args.out, "paper_table3")
    say("wrote " + ", ".join(str(path) for path in written))
    for goal in paper_table3_report.table3(results)["goals"]:
        say(f"{'met   ' if goal['met'] else 'MISSED'} {goal['name']}: {goal['measured']}")


if __name__ == "__main__":
    main()
