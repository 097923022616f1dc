"""What the commands show people: rich tables and progress bars; the same figures are in their JSON.

`trim`, `pack`, `parity` and `inspect` print a report here; `count` shows a live bar per language, then a
table of the statistics it wrote (`bench`'s table is in `bench/report.py`).

Every table fits 80 columns with its headers whole and one line per row: where the figures would not fit,
they are split into two tables, headers are abbreviated with a legend below, and text of any length (paths,
descriptions) is a `key  value` list, not a column. `--json` has every figure in full.
"""

import json
import shlex
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from langtrim.packager.counting.plan import CountProgress
from langtrim.packager.selection.stats import TokenStats
from langtrim.packager.trim.job import TrimReport

if TYPE_CHECKING:
    from langtrim.packager.pack.job import PackReport
    from langtrim.packager.pack.parity import ParityReport
    from langtrim.packager.pack.score_parity import ScoreParity
    from langtrim.runtime.bundle import Manifest


_DASH = "-"


def _table(title: str | None, *headers: str, text_columns: int = 1) -> Table:
    """A table whose first `text_columns` columns are text and the others figures, right-aligned.

    No cell wraps: each table is laid out to fit 80 columns (the CLI's consoles are never wider), so a row
    is one line. Text of any length
    (paths, descriptions) goes to `_key_list` instead.
    """
    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i < text_columns else "right", no_wrap=True)
    return table


def _key_list(console: Console, rows: Sequence[tuple[str, str]]) -> None:
    """`key  value` lines, indented; a long value wraps under itself, within the console's width."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, escape(value))
    console.print(Padding(grid, (0, 0, 0, 2), expand=False))


def _mb(value: float) -> str:
    return f"{value:,.1f} MB"


def _bytes(value: int) -> str:
    return f"{value:,} B" if value < 1000 else f"{value / 1e3:.1f} kB" if value < 1e6 else _mb(value / 1e6)


def _share(value: object, digits: int = 1) -> str:
    return f"{value:.{digits}%}" if isinstance(value, int | float) else _DASH


def _cosine(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else _DASH


def _gate(passed: object) -> str:
    return "passed" if passed is True else "[bold red]FAILED[/]" if passed is False else _DASH


def print_trim_report(report: TrimReport, console: Console, *, show_output: bool = True) -> None:
    after = "after (projected)" if report.after_is_projected else "after"
    console.print(f"[bold]{escape(report.model)}[/]: {escape(report.model_description)}")
    sizes = _table(
        "trim" + (" plan (dry run: nothing written)" if report.after_is_projected else ""),
        "",
        "before",
        after,
    )
    sizes.add_row("vocabulary (embedding rows)", f"{report.tokens_total:,}", f"{report.tokens_kept:,}")
    sizes.add_row("parameters", f"{report.before.parameters:,}", f"{report.after.parameters:,}")
    sizes.add_row("weights (safetensors)", _mb(report.before.megabytes), _mb(report.after.megabytes))
    sizes.add_row(
        "embedding share of parameters",
        f"{report.before.embedding_share:.1%}",
        f"{report.after.embedding_share:.1%}",
    )
    console.print(sizes)

    selection = _table("selection", "tokens of", "tokens")
    for language in report.languages:
        selection.add_row(language, f"{report.tokens_per_language[language]:,}")
    selection.add_row("special", f"{report.special_tokens:,}")
    selection.add_row("fallback", f"{report.fallback_tokens:,}", end_section=True)
    selection.add_row("kept", f"{report.tokens_kept:,}")
    console.print(selection)
    _key_list(
        console,
        [
            *((language, report.sources[language]) for language in report.languages),
            ("special", "the tokenizer's special tokens and kept texts"),
            ("fallback", "single characters of the scripts, digits, punctuation"),
            ("kept", "the union: a token several languages use is kept once"),
        ],
    )

    if report.coverage:
        coverage = _table(
            "coverage on real sentences (Tatoeba)",
            "language",
            "sentences",
            "identical",
            "unknown tokens",
            "tokens/sentence",
        )
        for c in report.coverage:
            coverage.add_row(
                c.language,
                str(c.n_sentences),
                f"{c.identical_share:.1%}",
                f"{c.unk_rate:.2%}",
                f"{c.tokens_per_sentence_original:.1f} -> {c.tokens_per_sentence_trimmed:.1f}",
            )
        console.print(coverage)
    if report.output and show_output:
        console.print(f"written to [bold]{escape(report.output)}[/]")


def print_pack_report(report: "PackReport", console: Console) -> None:
    if report.trim.coverage:
        print_trim_report(report.trim, console, show_output=False)
    table = _table(f"bundle ({report.variant})", "", "value")
    table.add_row("source weights (safetensors, fp32)", _mb(report.trim.before.megabytes))
    table.add_row("trimmed weights (safetensors, fp32)", _mb(report.trim.after.megabytes))
    table.add_row("trimmed ONNX, fp32", _mb(report.trimmed_fp32_onnx_mb))
    table.add_row("bundle (all files)", _mb(report.bundle_mb))
    table.add_row("vocabulary", f"{report.trim.tokens_kept:,} of {report.trim.tokens_total:,}")
    table.add_row("parity", _gate(report.parity.passed))
    console.print(table)
    print_parity_report(report.parity, console)
    if not report.parity.passed:
        console.print("written although a parity gate failed (--allow-parity-failure)")
    console.print(f"written to [bold]{escape(report.output)}[/]")


def print_manifest(manifest: "Manifest", digest: str, console: Console) -> None:
    """What `langtrim inspect` shows: the manifest's fields, its parity per language, its files, the digest."""
    console.print(
        f"[bold]bundle format {manifest.format_version}[/], written by langtrim {manifest.langtrim_version}"
    )
    rows = [
        ("source", f"{manifest.source.name}: {manifest.source.description}"),
        ("languages", ", ".join(manifest.languages)),
        ("vocabulary", f"{manifest.vocab.kept_size:,} of {manifest.vocab.original_size:,} tokens"),
        ("task", manifest.task),
        ("quantization", f"{manifest.quantization.mode} (embeddings {manifest.quantization.embeddings})"),
        ("optimization", manifest.optimization),
        ("pooling", f"{manifest.pooling}, normalize={manifest.normalize}"),
        ("max length", f"{manifest.max_length} tokens"),
        ("prompts", ", ".join(f"{k}={v!r}" for k, v in manifest.prompts.items()) or "none"),
        ("inputs", ", ".join(manifest.inputs)),
        ("outputs", ", ".join(manifest.outputs)),
        ("created", manifest.created),
    ]
    if manifest.labels:
        rows.append(("labels", ", ".join(manifest.labels)))
    if manifest.pair_truncation:
        rows.append(("text pairs", f"yes, cut {manifest.pair_truncation}"))
    _key_list(console, rows)
    if manifest.parity is None:
        console.print("parity: not measured")
    else:
        _print_manifest_parity(manifest.parity, console)
    console.print(_coverage_line(manifest.coverage))
    files = _table(f"{len(manifest.files)} files, each sha256 checked", "file", "size", "sha256 (start)")
    files.columns[-1].justify = "left"
    for name, entry in manifest.files.items():
        files.add_row(name, _bytes(entry.size), entry.sha256[:12])
    console.print(files)
    # On a line of its own and never wrapped, so it can be copied whole into a deployment's pin.
    console.print("bundle digest, to pin with langtrim serve --bundle-digest:")
    console.print(digest, soft_wrap=True, highlight=False)


def _coverage_line(coverage: Mapping[str, Any] | None) -> str:
    """The serve-time coverage check's thresholds (langtrim.runtime.coverage), one line."""
    if coverage is None:
        return "coverage check: not calibrated (packed before it): unknown share only; re-pack for the rest"
    words = coverage.get("dropped_words")
    return (
        f"coverage check: uncovered above {_share(coverage.get('max_unknown_share'))} unknown (or other "
        f"scripts') pieces or "
        f"{_share(coverage.get('max_dropped_word_share'))} dropped words"
        + (f" ({words:,} words)" if isinstance(words, int) else "")
    )


def _print_manifest_parity(parity: Mapping[str, Any], console: Console) -> None:
    """The manifest's parity summary (ParityReport.summary): gates, then one row per language."""
    languages = parity.get("languages")
    languages = languages if isinstance(languages, Mapping) else {}
    rows = [
        (
            str(language),
            figures.get("identical_tokenization"),
            figures.get("unk_rate"),
            figures.get("cosine_mean"),
            figures.get("cosine_p1"),
            figures.get("cosine_min"),
            figures.get("passed"),
        )
        for language, figures in languages.items()
        if isinstance(figures, Mapping)
    ]
    gates = parity.get("gates")
    console.print(_end_to_end_table(f"parity: {'passed' if parity.get('passed') else 'FAILED'}", rows))
    scores = [f.get("scores") for f in languages.values() if isinstance(f, Mapping)]
    scored = next((_scored_kind(x.get("spearman")) for x in scores if isinstance(x, Mapping)), None)
    console.print(_gates_line(gates if isinstance(gates, Mapping) else {}, scored))
    retrieval = parity.get("retrieval")
    if isinstance(retrieval, Mapping) and retrieval:
        console.print(_retrieval_table(retrieval))
    not_measured = parity.get("not_measured") or []
    if not_measured:
        console.print(f"not measured (no text): {', '.join(map(str, not_measured))}")
    console.print("the full report: parity.json, or langtrim inspect --json")


def _gates_line(gates: Mapping[str, Any], scored: str | None = None) -> str:
    """The gates that apply: `scored` is "pairs" or "tokens" for those classifiers (their own gates, and no
    retrieval), None for the others."""
    bounds = (
        ("min_mean_cosine", "cosine mean >= {}", None),
        ("min_p1_cosine", "p1 >= {}", None),
        ("max_unk_rate", "unknown <= {}", None),
        ("max_retrieval_drop", "F1 drop <= {} points", "retrieval"),
        ("min_rank_correlation", "rank corr. >= {}", "pairs"),
        ("min_top1_agreement", "same top-1 >= {}", "pairs"),
        ("min_span_agreement", "same entities >= {}", "tokens"),
    )
    applies = {None, scored or "retrieval"}
    found = [text.format(gates[key]) for key, text, kind in bounds if key in gates and kind in applies]
    return "gates: " + (", ".join(found) or "not recorded")


def _scored_kind(spearman: object) -> str:
    """A score-parity entry is a pair classifier's when it has a rank correlation, else a token classifier's."""
    return "pairs" if spearman is not None else "tokens"


def _end_to_end_table(
    title: str, rows: Sequence[tuple[str, object, object, object, object, object, object]]
) -> Table:
    """One row per language: (language, identical share, unknown rate, cosine mean, p1, min, passed)."""
    table = _table(title, "language", "identical", "unknown", "cos mean", "cos p1", "cos min", "gate")
    table.columns[-1].justify = "left"
    for language, identical, unknown, mean, p1, minimum, passed in rows:
        table.add_row(
            language,
            _share(identical),
            _share(unknown, 2),
            _cosine(mean),
            _cosine(p1),
            _cosine(minimum),
            _gate(passed),
        )
    return table


def _retrieval_table(rows: Mapping[str, Any]) -> Table:
    """Bitext mining per language (the summary `bitext.summary` makes): the bundle's languages, then the
    languages outside it, which are never gated."""
    table = _table(
        "retrieval: bitext mining with English (MTEB Tatoeba, F1)",
        "language",
        "pairs",
        "original",
        "bundle",
        "unknown",
        "flagged",
        "gate",
    )
    table.columns[-1].justify = "left"
    ordered = sorted(rows.items(), key=lambda item: not item[1].get("in_bundle"))
    for i, (language, row) in enumerate(ordered):
        inside = bool(row.get("in_bundle"))
        last_inside = inside and (i + 1 == len(ordered) or not ordered[i + 1][1].get("in_bundle"))
        gate = _gate(row.get("passed")) if row.get("gated") else "not gated" if inside else "outside"
        table.add_row(
            language,
            str(row.get("pairs", _DASH)),
            f"{row.get('f1_original', 0):.2f}",
            f"{row.get('f1_bundle', 0):.2f}",
            _share(row.get("unk_rate"), 2),
            _share(row.get("flagged_share")),
            gate,
            end_section=last_inside,
        )
    return table


def print_parity_report(report: "ParityReport", console: Console) -> None:
    """Two tables: the gated figures (bundle vs original), then where the differences come from."""
    prompt = f", prompt {report.prompt!r}" if report.prompt else ""
    console.print(f"[bold]parity against {escape(report.source_model)}[/]{escape(prompt)}")
    rows = [
        (
            p.language,
            p.coverage.identical_share,
            p.coverage.unk_rate,
            p.end_to_end_cosine.mean,
            p.end_to_end_cosine.p1,
            p.end_to_end_cosine.min,
            p.passed,
        )
        for p in report.languages
    ]
    console.print(_end_to_end_table("end to end: bundle vs original", rows))
    scored = next((_scored_kind(p.scores.spearman) for p in report.languages if p.scores is not None), None)
    console.print(_gates_line(asdict(report.gates), scored) + "; --json has every figure")
    if report.retrieval:
        from langtrim.packager.pack.bitext import summary

        console.print(_retrieval_table(summary(report.retrieval)))
    classifier = any(p.label_agreement is not None for p in report.languages)
    steps = _table(
        "step by step",
        "language",
        "trim diff",
        "trim cos",
        "export cos",
        *(("same label", "prob. diff") if classifier else ()),
    )
    for p in report.languages:
        steps.add_row(
            p.language,
            "n/a" if p.trim_max_abs_diff is None else f"{p.trim_max_abs_diff:.1e}",
            _cosine(p.trim_cosine.mean),
            _cosine(p.export_cosine.mean),
            *(
                (
                    _share(p.label_agreement),
                    f"{p.max_probability_diff:.1e}" if p.max_probability_diff is not None else _DASH,
                )
                if classifier
                else ()
            ),
        )
    if report.languages:
        console.print(steps)
        _key_list(
            console,
            [
                ("identical", "share of sentences the trimmed tokenizer splits as the original"),
                ("cos", "cosine of the two vectors: mean, 1st percentile (p1), minimum over the sentences"),
                (
                    "trim",
                    "PyTorch trimmed vs original: largest difference of the last hidden states on "
                    "identically split sentences (diff), mean cosine",
                ),
                ("export", "the bundle (ONNX, quantized) vs the PyTorch trimmed model, mean cosine"),
                (
                    "retrieval",
                    "for each sentence, is its nearest translation its own (MTEB's weighted F1, points); "
                    "flagged: share the serve-time coverage check calls uncovered",
                ),
                *(
                    (
                        ("same label", "share of sentences with the same top class"),
                        ("prob. diff", "largest difference of a class probability"),
                    )
                    if classifier
                    else ()
                ),
            ],
        )
    if any(p.scores is not None for p in report.languages):
        _print_scores(report, console)
    for p in report.languages:
        if p.failures:
            console.print(f"[bold red]{p.language}[/]: " + escape("; ".join(p.failures)))
    if report.not_measured:
        console.print(f"not measured (no text): {', '.join(report.not_measured)}: pass --eval-text LANG=PATH")


def _print_scores(report: "ParityReport", console: Console) -> None:
    """Pair and token classifiers' own figures (packager/pack/score_parity.py)."""
    pairs = any(p.scores is not None and p.scores.spearman is not None for p in report.languages)
    found = any(p.scores is not None and p.scores.relevant_top1_bundle is not None for p in report.languages)
    extra = ("spearman", "top-1", *(("found",) if found else ())) if pairs else ("same spans",)
    table = _table("scores: bundle vs original", "language", "items", "logit diff", "identical", *extra)
    for p in report.languages:
        if p.scores is None:
            continue
        s = p.scores
        same = f"{s.max_logit_diff_identical:.1e}" if s.max_logit_diff_identical is not None else _DASH
        figures: tuple[str, ...] = (
            (f"{s.spearman:.4f}", _share(s.top1_agreement), *((_found(s),) if found else ()))
            if pairs
            else (_share(s.span_agreement),)
        )
        table.add_row(p.language, f"{s.items:,}", f"{s.max_logit_diff:.1e}", same, *figures)
    console.print(table)
    _key_list(
        console,
        [
            ("items", "query/passage pairs" if pairs else "tokens"),
            ("logit diff", "largest |logit difference|: every item, then identically tokenized items only"),
            *(
                (
                    ("spearman", "mean rank correlation of each query's passages"),
                    ("top-1", "same best passage"),
                    *(
                        (("found", "queries whose translation ranks first: original -> bundle"),)
                        if found
                        else ()
                    ),
                )
                if pairs
                else (("same spans", "share of texts with the original's entities (label, start, end)"),)
            ),
        ],
    )


def _found(scores: "ScoreParity") -> str:
    if scores.relevant_top1_original is None or scores.relevant_top1_bundle is None:
        return _DASH
    return f"{scores.relevant_top1_original:.0%}->{scores.relevant_top1_bundle:.0%}"


# --- langtrim count ------------------------------------------------------------------------------------------


class CountProgressBars:
    """One bar per language over its storage bytes, with lines/s and MB/s of text read by this run."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def update(self, language: str, report: CountProgress) -> None:
        if language not in self._tasks:
            self._tasks[language] = self._progress.add_task(language, total=report.bytes_total, rate="")
        resumed = f", {report.shards_resumed} resumed" if report.shards_resumed else ""
        self._progress.update(
            self._tasks[language],
            completed=report.bytes_done,
            rate=f"{report.lines_per_second:,.0f} lines/s  {report.megabytes_per_second:.2f} MB/s  "
            f"shards {report.shards_done}/{report.shards_total}{resumed}",
        )


@contextmanager
def count_progress_bars(console: Console) -> Iterator[CountProgressBars]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield CountProgressBars(progress)


def _row(stats: TokenStats, out: Path) -> dict[str, object]:
    return {
        "language": stats.language,
        "lines_counted": stats.n_lines,
        "lines_skipped": stats.n_skipped_lines,
        "text_bytes": stats.n_bytes,
        "tokens_seen": int(np.count_nonzero(stats.line_counts)),
        "vocab_size": stats.vocab_size,
        "min_line_chars": stats.min_line_chars,
        "tokenizer_sha256": stats.tokenizer_sha256,
        "output": str(out),
    }


def count_results_json(results: Sequence[TokenStats], outs: Sequence[Path]) -> str:
    return json.dumps([_row(stats, out) for stats, out in zip(results, outs, strict=True)], indent=2)


def print_count_results(
    results: Sequence[TokenStats], outs: Sequence[Path], console: Console, *, model: str | None = None
) -> None:
    """The statistics written, then the command that selects from them (`model`: count's MODEL, if given)."""
    table = _table("token statistics", "language", "lines", "skipped", "text MB", "tokens seen", "vocabulary")
    for stats in results:
        table.add_row(
            stats.language,
            f"{stats.n_lines:,}",
            f"{stats.n_skipped_lines:,}",
            f"{stats.n_bytes / 1e6:,.1f}",
            f"{int(np.count_nonzero(stats.line_counts)):,}",
            f"{stats.vocab_size:,}",
        )
    console.print(table)
    _key_list(console, [(stats.language, str(out)) for stats, out in zip(results, outs, strict=True)])
    if results:
        # One option a line, so the command copies whole from any terminal (only a path longer than the
        # line itself runs past it).
        options = [f"--languages {','.join(s.language for s in results)}"]
        options += [
            f"--corpus {shlex.quote(f'{s.language}={out}')}" for s, out in zip(results, outs, strict=True)
        ]
        console.print("select tokens from them, at any threshold and as often as needed (trim works too):")
        console.print(
            " \\\n".join(
                [
                    "  langtrim pack" + (f" {shlex.quote(model)}" if model else ""),
                    *(f"    {option}" for option in options),
                ]
            ),
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
