"""Rich tables for people; the same figures are in the reports' JSON for machines."""

from rich.console import Console
from rich.table import Table

from langtrim.packager.trim_job import TrimReport


def _mb(value: float) -> str:
    return f"{value:,.1f} MB"


def print_trim_report(report: TrimReport, console: Console) -> None:
    after = "after (projected)" if report.after_is_projected else "after"
    console.print(f"[bold]{report.model}[/]: {report.model_description}")
    sizes = Table(title="trim" + (" plan (dry run: nothing written)" if report.after_is_projected else ""))
    sizes.add_column("")
    sizes.add_column("before", justify="right")
    sizes.add_column(after, justify="right")
    sizes.add_row("tokens", f"{report.tokens_total:,}", f"{report.tokens_kept:,}")
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
    if report.output:
        console.print(f"written to [bold]{report.output}[/]")
