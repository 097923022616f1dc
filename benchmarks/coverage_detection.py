"""What the serve-time coverage check flags on held-out real sentences, and what it costs at batch 32.

For a bundle (default: the one `langtrim pack --languages en,fr,de` writes, packed into the work directory
first), on the held-out Tatoeba sentences of benchmarks/data/tatoeba-heldout/ (sentences the check's
calibration never saw; SOURCES.md there):

- flagged: per language, the share of its 500 sentences `Encoder.coverage` calls uncovered, with the mean
  unknown share and dropped-word share;
- cost: 32 held-out sentences of the bundle's languages per call, `embed` alone against `coverage` then
  `embed` (what the server does per request), interleaved call by call over many rounds; the medians of
  each and the throughput ratio. Noise on a shared machine is larger than the effect: read the ratio of
  medians, not a single call.

    python benchmarks/coverage_detection.py --bundle /tmp/en-fr-de.bundle
    python benchmarks/coverage_detection.py --bundle /tmp/all-scripts.bundle --name coverage_detection_all_scripts

Writes benchmarks/results/NAME.json and NAME.md (NAME defaults to coverage_detection).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = ROOT / "benchmarks" / "data" / "tatoeba-heldout"
RESULTS = ROOT / "benchmarks" / "results"
OWN_SCRIPT = ("es", "it", "pt", "nl", "pl")  # same script as en,fr,de, not kept
OTHER_SCRIPTS = ("ru", "el", "ar", "zh", "hi")
BATCH = 32


def machine() -> dict[str, object]:
    """The CPU, its flags and the versions, as every result should say where it was measured."""
    import onnxruntime

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(
        line.split(":", 1) for line in info.splitlines() if line.startswith(("model name", "flags"))
    )
    return {
        "cpu": " ".join(fields.get("model name\t", platform.processor()).split()),
        "cores": sum(line.startswith("processor") for line in info.splitlines()),
        "cpu_flags": fields.get("flags\t\t", "").split(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
    }


def sentences(language: str) -> list[str]:
    return [line for line in (HELD_OUT / f"{language}.txt").read_text(encoding="utf-8").splitlines() if line]


def flagged(encoder, languages: list[str]) -> list[dict[str, object]]:
    rows = []
    for language in languages:
        records = encoder.coverage(sentences(language))
        rows.append(
            {
                "language": language,
                "kind": "bundle"
                if language in encoder.manifest.languages
                else "same script"
                if language in OWN_SCRIPT
                else "other script",
                "sentences": len(records),
                "flagged": float(np.mean([not r.covered for r in records])),
                "unknown_share": float(np.mean([r.unknown_share for r in records])),
                "foreign_share": float(np.mean([r.foreign_share or 0.0 for r in records])),
                "dropped_word_share": float(np.mean([r.dropped_word_share or 0.0 for r in records])),
            }
        )
    return rows


def cost(encoder, rounds: int) -> dict[str, object]:
    """Seconds per call of 32 texts: embed alone, and coverage + embed, interleaved (the order alternates)."""
    texts = [s for language in encoder.manifest.languages for s in sentences(language)]
    batches = [texts[i : i + BATCH] for i in range(0, len(texts) - BATCH + 1, BATCH)]
    encoder.embed(batches[0], prompt="query")  # warm-up
    encoder.coverage(batches[0])
    alone, checked, check_only, paired = [], [], [], []
    for r in range(rounds):
        for b, batch in enumerate(batches):
            seconds = {}
            for with_check in (False, True) if (r + b) % 2 else (True, False):
                start = time.perf_counter()
                if with_check:
                    encoder.coverage(batch)
                    check_only.append(time.perf_counter() - start)
                encoder.embed(batch, prompt="query")
                seconds[with_check] = time.perf_counter() - start
            alone.append(seconds[False])
            checked.append(seconds[True])
            paired.append(seconds[True] - seconds[False])  # the same batch, one call after the other
    median_alone = statistics.median(alone)
    return {
        "batch": BATCH,
        "calls_each": len(alone),
        "embed_seconds_median": median_alone,
        "embed_and_coverage_seconds_median": statistics.median(checked),
        "coverage_seconds_median": statistics.median(check_only),
        "coverage_us_per_text": 1e6 * statistics.median(check_only) / BATCH,
        "coverage_share_of_embed": statistics.median(check_only) / median_alone,
        "paired_difference_seconds_median": statistics.median(paired),
        # below 1: the check costs throughput. From the check's own time (robust), and from the two medians
        # (what a load test sees, noise included).
        "throughput_ratio": median_alone / (median_alone + statistics.median(check_only)),
        "throughput_ratio_of_medians": median_alone / statistics.median(checked),
    }


def markdown(result: dict) -> str:
    lines = [
        f"# Coverage detection: {result['bundle']} ({', '.join(result['bundle_languages'])})",
        "",
        f"`{result['command']}` on {result['machine']['cpu']} ({result['machine']['cores']} cores), "
        f"thresholds: unknown share <= {result['thresholds']['max_unknown_share']}, dropped-word share <= "
        f"{result['thresholds']['max_dropped_word_share']}.",
        "",
        "| language | kind | sentences | flagged | mean unknown share | mean foreign-script share | mean dropped-word share |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["flagged"]:
        lines.append(
            f"| {row['language']} | {row['kind']} | {row['sentences']} | {row['flagged']:.1%} | "
            f"{row['unknown_share']:.1%} | {row['foreign_share']:.1%} | {row['dropped_word_share']:.1%} |"
        )
    c = result["cost"]
    if c is None:
        return "\n".join([*lines, ""])
    lines += [
        "",
        f"Cost at batch {c['batch']} ({c['calls_each']} calls each, interleaved): embed "
        f"{1000 * c['embed_seconds_median']:.1f} ms, coverage + embed {1000 * c['embed_and_coverage_seconds_median']:.1f} "
        f"ms (medians); the check alone {1000 * c['coverage_seconds_median']:.2f} ms "
        f"({c['coverage_us_per_text']:.0f} µs a text, {c['coverage_share_of_embed']:.2%} of embed), so throughput "
        f"x{c['throughput_ratio']:.4f}; the median paired difference (same batch, one call after the other) "
        f"{1000 * c['paired_difference_seconds_median']:.2f} ms, the ratio of the two medians "
        f"{c['throughput_ratio_of_medians']:.3f}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bundle", type=Path, help="a bundle; default: pack en,fr,de into a temporary directory"
    )
    parser.add_argument("--name", default="coverage_detection")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the cost measurement; 0 skips it")
    args = parser.parse_args()

    from langtrim.runtime import Encoder

    with tempfile.TemporaryDirectory() as work:
        bundle = args.bundle
        if bundle is None:
            bundle = Path(work) / "en-fr-de"
            subprocess.run(["langtrim", "pack", "-l", "en,fr,de", "--out", str(bundle)], check=True)
        encoder = Encoder(bundle)
        languages = [*encoder.manifest.languages, *OWN_SCRIPT, *OTHER_SCRIPTS]
        result = {
            "command": " ".join(["python", "benchmarks/coverage_detection.py", *sys.argv[1:]]),
            "bundle": bundle.name,
            "bundle_languages": list(encoder.manifest.languages),
            "selection": dict(encoder.manifest.selection.settings),
            "thresholds": dict(encoder.manifest.coverage or {}),
            "machine": machine(),
            "flagged": flagged(
                encoder, [language for language in languages if (HELD_OUT / f"{language}.txt").is_file()]
            ),
            "cost": cost(encoder, args.rounds) if args.rounds else None,
        }
    result["thresholds"].pop("calibration", None)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
