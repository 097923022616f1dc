"""Retrieval parity in and out of a bundle's languages, and what keeping every script's characters changes.

For the offline default model (multilingual-e5-small) and one or more bundles cut from it, on the shipped
Tatoeba pairs with English (all of each language's pairs, 500 for most): MTEB's bitext-mining F1 of the
original and of each bundle (langtrim.packager.pack.bitext, "query: " before every text), with what the
bundle makes of the language's side (unknown-token rate, sentences split as the original does, share the
serve-time coverage check flags), and each bundle's size. The original's vectors are computed once and
shared by every bundle.

    langtrim pack -l en,fr,de --out /tmp/en-fr-de.bundle
    langtrim pack -l en,fr,de --fallback-all-scripts --out /tmp/all-scripts.bundle
    python benchmarks/retrieval_parity.py --bundle default=/tmp/en-fr-de.bundle \
        --bundle all-scripts=/tmp/all-scripts.bundle

Writes benchmarks/results/retrieval_parity.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUTSIDE = ("es", "it", "pt", "nl", "pl", "ru", "el", "ar", "zh", "hi", "ja")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", action="append", required=True, help="NAME=PATH; repeatable")
    parser.add_argument("--outside", default=",".join(OUTSIDE), help="languages outside the bundles")
    parser.add_argument("--name", default="retrieval_parity")
    args = parser.parse_args()

    from tokenizers import Tokenizer

    from langtrim.packager.models.default_model import DEFAULT_MODEL_NAME, default_model_dir
    from langtrim.packager.models.sources import ModelSource, load_model
    from langtrim.packager.pack.bitext import BitextPairs, measure_retrieval, memoized
    from langtrim.packager.pack.parity import _torch_outputs
    from langtrim.packager.shipped_text import TATOEBA_CREDIT, shipped_pairs
    from langtrim.packager.trim.tokenizer_remap import IdMap
    from langtrim.runtime import Encoder
    from langtrim.runtime.bundle import ID_MAP_FILE, TOKENIZER_FILE

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from coverage_detection import machine

    model_dir = default_model_dir()
    original = load_model(ModelSource(model_dir, DEFAULT_MODEL_NAME, "", is_default=True))
    original_tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
    original_seen: dict = {}
    bundles = dict(item.split("=", 1) for item in args.bundle)
    results: dict[str, object] = {
        "command": " ".join(["python", "benchmarks/retrieval_parity.py", *sys.argv[1:]]),
        "machine": machine(),
        "text": f"Tatoeba pairs with English shipped with langtrim, {TATOEBA_CREDIT}",
        "bundles": {},
    }
    for name, path in bundles.items():
        bundle = Path(path)
        encoder = Encoder(bundle)
        manifest = encoder.manifest
        prompt = manifest.prompts.get("query", "")
        languages = [code for code in manifest.languages if code != "en"]
        outside = [code for code in args.outside.split(",") if code and code not in manifest.languages]
        pairs = [
            BitextPairs(code, "shipped", *shipped_pairs(code), gated=code in manifest.languages)  # type: ignore[misc]
            for code in [*languages, *outside]
        ]
        started = time.perf_counter()
        rows = measure_retrieval(
            pairs,
            manifest.languages,
            embed_original=memoized(
                lambda t: _torch_outputs(original, original_tokenizer, t, "mean", 512, False)[0],
                prompt,
                original_seen,
            ),
            embed_bundle=memoized(lambda t, e=encoder: e.embed(t, normalize=False), prompt, {}),
            coverage=(
                original_tokenizer,
                Tokenizer.from_file(str(bundle / TOKENIZER_FILE)),
                IdMap.from_json((bundle / ID_MAP_FILE).read_text()),
                encoder,
            ),
            max_drop=100.0,
        )
        results["bundles"][name] = {  # type: ignore[index]
            "path": str(bundle),
            "languages": list(manifest.languages),
            "selection": dict(manifest.selection.settings),
            "vocab_kept": manifest.vocab.kept_size,
            "bundle_mb": round(sum(entry.size for entry in manifest.files.values()) / 1e6, 1),
            "seconds": round(time.perf_counter() - started, 1),
            "rows": [
                {
                    "language": row.language,
                    "in_bundle": row.in_bundle,
                    "pairs": row.pairs,
                    "f1_original": row.original.f1,
                    "f1_bundle": row.bundle.f1,
                    "f1_drop": row.f1_drop,
                    "unk_rate": row.unk_rate,
                    "identical_share": row.identical_share,
                    "flagged_share": row.flagged_share,
                }
                for row in rows
            ],
        }
        print(name, "done", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    names = list(results["bundles"])
    first = results["bundles"][names[0]]
    lines = [
        "# Retrieval parity: bitext mining with English (MTEB Tatoeba, weighted F1, points)",
        "",
        f"`{results['command']}` on {results['machine']['cpu']}; {results['text']}.",
        "",
        "| bundle | languages | vocabulary | size |",
        "|---|---|---:|---:|",
        *(
            f"| {n} | {','.join(b['languages'])}"
            f"{' (fallback: all scripts)' if b['selection'].get('fallback_all_scripts') else ''} | "
            f"{b['vocab_kept']:,} | {b['bundle_mb']} MB |"
            for n, b in results["bundles"].items()
        ),
        "",
        "| language | pairs | original | " + " | ".join(f"{n}: F1, unknown, flagged" for n in names) + " |",
        "|---|---:|---:|" + "---:|" * len(names),
    ]
    by_bundle = [{row["language"]: row for row in results["bundles"][n]["rows"]} for n in names]
    for row in first["rows"]:
        language = row["language"]
        cells = []
        for rows in by_bundle:
            other = rows.get(language)
            cells.append(
                "-"
                if other is None
                else f"{other['f1_bundle']:.2f}, {other['unk_rate']:.1%}, {other['flagged_share']:.0%}"
            )
        mark = " (bundle)" if row["in_bundle"] else ""
        lines.append(
            f"| {language}{mark} | {row['pairs']} | {row['f1_original']:.2f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
