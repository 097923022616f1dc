"""`langtrim count`: a live bar per language, then a table of the statistics it wrote."""

import json
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from langtrim.packager.counting.plan import CountProgress
from langtrim.packager.report.tables import key_list, new_table
from langtrim.packager.selection.stats import TokenStats


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
    table = new_table(
        "token statistics", "language", "lines", "skipped", "text MB", "tokens seen", "vocabulary"
    )
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
    key_list(console, [(stats.language, str(out)) for stats, out in zip(results, outs, strict=True)])
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
