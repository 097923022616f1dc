"""What the commands show people: rich tables and progress bars; the same figures are in their JSON.

`trim`, `pack`, `parity` and `inspect` print a report here; `count` shows a live bar per language, then a
table of the statistics it wrote.
"""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from langtrim.packager.counting.plan import CountProgress
from langtrim.packager.selection.stats import TokenStats
from langtrim.packager.trim.job import TrimReport

if TYPE_CHECKING:
    from langtrim.packager.pack.job import PackReport
    from langtrim.packager.pack.parity import ParityReport
    from langtrim.runtime.bundle import Manifest


def _mb(value: float) -> str:
    return f"{value:,.1f} MB"


def print_trim_report(report: TrimReport, console: Console, *, show_output: bool = True) -> None:
    after = "after (projected)" if report.after_is_projected else "after"
    console.print(f"[bold]{report.model}[/]: {report.model_description}")
    sizes = Table(title="trim" + (" plan (dry run: nothing written)" if report.after_is_projected else ""))
    sizes.add_column("")
    sizes.add_column("before", justify="right")
    sizes.add_column(after, justify="right")
    sizes.add_row("vocabulary (embedding rows)", f"{report.tokens_total:,}", f"{report.tokens_kept:,}")
    sizes.add_row("parameters", f"{report.before.parameters:,}", f"{report.after.parameters:,}")
    sizes.add_row("weights (safetensors)", _mb(report.before.megabytes), _mb(report.after.megabytes))
    sizes.add_row(
        "embedding share of parameters",
        f"{report.before.embedding_share:.1%}",
        f"{report.after.embedding_share:.1%}",
    )
    console.print(sizes)

    selection = Table(title="selection")
    for column in ("language", "tokens", "source"):
        selection.add_column(column, justify="right" if column == "tokens" else "left")
    for language in report.languages:
        selection.add_row(language, f"{report.tokens_per_language[language]:,}", report.sources[language])
    selection.add_row(
        "special", f"{report.special_tokens:,}", "the tokenizer's special tokens and kept texts"
    )
    selection.add_row(
        "fallback", f"{report.fallback_tokens:,}", "single characters of the scripts, digits, punctuation"
    )
    console.print(selection)

    if report.coverage:
        coverage = Table(title="coverage on real sentences (Tatoeba)")
        for column in ("language", "sentences", "identical", "unknown tokens", "tokens/sentence"):
            coverage.add_column(column, justify="left" if column == "language" else "right")
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
        console.print(f"written to [bold]{report.output}[/]")


def print_pack_report(report: "PackReport", console: Console) -> None:
    if report.trim.coverage:
        print_trim_report(report.trim, console, show_output=False)
    table = Table(title=f"bundle ({report.variant})")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("source weights (safetensors, fp32)", _mb(report.trim.before.megabytes))
    table.add_row("trimmed weights (safetensors, fp32)", _mb(report.trim.after.megabytes))
    table.add_row("trimmed ONNX, fp32", _mb(report.trimmed_fp32_onnx_mb))
    table.add_row("bundle (all files)", _mb(report.bundle_mb))
    table.add_row("vocabulary", f"{report.trim.tokens_kept:,} of {report.trim.tokens_total:,}")
    table.add_row(
        "parity",
        "passed" if report.parity.passed else "[bold red]FAILED[/] (written: --allow-parity-failure)",
    )
    console.print(table)
    print_parity_report(report.parity, console)
    console.print(f"written to [bold]{report.output}[/]")


def print_manifest(manifest: "Manifest", digest: str, console: Console) -> None:
    table = Table(title=f"bundle format {manifest.format_version}, langtrim {manifest.langtrim_version}")
    table.add_column("field")
    table.add_column("value")
    rows = [
        ("source", f"{manifest.source.name}: {manifest.source.description}"),
        ("languages", ", ".join(manifest.languages)),
        ("vocabulary", f"{manifest.vocab.kept_size:,} of {manifest.vocab.original_size:,}"),
        ("task", manifest.task),
        ("quantization", f"{manifest.quantization.mode} (embeddings {manifest.quantization.embeddings})"),
        ("optimization", manifest.optimization),
        ("pooling", f"{manifest.pooling}, normalize={manifest.normalize}"),
        ("max length", str(manifest.max_length)),
        ("prompts", ", ".join(f"{k}={v!r}" for k, v in manifest.prompts.items()) or "none"),
        ("inputs -> outputs", f"{', '.join(manifest.inputs)} -> {', '.join(manifest.outputs)}"),
        ("created", manifest.created),
    ]
    if manifest.labels:
        rows.append(("labels", ", ".join(manifest.labels)))
    rows.append(
        ("parity", "not measured" if manifest.parity is None else json.dumps(dict(manifest.parity))[:200])
    )
    for name, entry in manifest.files.items():
        rows.append((f"file {name}", f"{entry.size / 1e6:,.2f} MB  sha256 {entry.sha256[:16]}…"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    # On a line of its own and never wrapped, so it can be copied whole into a deployment's pin.
    console.print(f"bundle digest: {digest}", soft_wrap=True, highlight=False)


def print_parity_report(report: "ParityReport", console: Console) -> None:
    table = Table(
        title=f"parity against {report.source_model}"
        + (f" (prompt {report.prompt!r})" if report.prompt else "")
    )
    for column in (
        "language",
        "identical tok.",
        "unk",
        "trim: max diff",
        "trim cos",
        "export cos",
        "end-to-end cos mean / p1 / min",
        "gate",
    ):
        table.add_column(column, justify="left" if column in ("language", "gate") else "right")
    for p in report.languages:
        e2e = p.end_to_end_cosine
        table.add_row(
            p.language,
            f"{p.coverage.identical_share:.1%}",
            f"{p.coverage.unk_rate:.2%}",
            "n/a" if p.trim_max_abs_diff is None else f"{p.trim_max_abs_diff:.1e}",
            f"{p.trim_cosine.mean:.4f}",
            f"{p.export_cosine.mean:.4f}",
            f"{e2e.mean:.4f} / {e2e.p1:.4f} / {e2e.min:.4f}",
            "passed" if p.passed else "[bold red]" + "; ".join(p.failures) + "[/]",
        )
    for language in report.not_measured:
        table.add_row(language, *["not measured"] * 6, "no text: pass --eval-text")
    console.print(table)


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


def print_count_results(results: Sequence[TokenStats], outs: Sequence[Path], console: Console) -> None:
    table = Table(title="token statistics")
    for column in ("language", "lines counted", "lines skipped", "text", "tokens seen"):
        table.add_column(column, justify="left" if column == "language" else "right")
    table.add_column("file", overflow="fold")
    for stats, out in zip(results, outs, strict=True):
        row = _row(stats, out)
        table.add_row(
            stats.language,
            f"{stats.n_lines:,}",
            f"{stats.n_skipped_lines:,}",
            f"{stats.n_bytes / 1e6:,.1f} MB",
            f"{row['tokens_seen']:,} of {stats.vocab_size:,}",
            str(out),
        )
    console.print(table)
    if results:
        console.print(
            "select tokens from them (any threshold, as often as needed): langtrim trim or pack with "
            + " ".join(f"--corpus {s.language}={out}" for s, out in zip(results, outs, strict=True)),
            soft_wrap=True,
            highlight=False,
        )
