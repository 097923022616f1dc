"""`langtrim trim`'s report: sizes before and after, the selection, coverage on real sentences."""

from rich.console import Console
from rich.markup import escape

from langtrim.packager.report.tables import fmt_mb, key_list, new_table
from langtrim.packager.trim.job import TrimReport


def print_trim_report(report: TrimReport, console: Console, *, show_output: bool = True) -> None:
    after = "after (projected)" if report.after_is_projected else "after"
    console.print(f"[bold]{escape(report.model)}[/]: {escape(report.model_description)}")
    sizes = new_table(
        "trim" + (" plan (dry run: nothing written)" if report.after_is_projected else ""),
        "",
        "before",
        after,
    )
    sizes.add_row("vocabulary (embedding rows)", f"{report.tokens_total:,}", f"{report.tokens_kept:,}")
    sizes.add_row("parameters", f"{report.before.parameters:,}", f"{report.after.parameters:,}")
    sizes.add_row("weights (safetensors)", fmt_mb(report.before.megabytes), fmt_mb(report.after.megabytes))
    sizes.add_row(
        "embedding share of parameters",
        f"{report.before.embedding_share:.1%}",
        f"{report.after.embedding_share:.1%}",
    )
    console.print(sizes)

    selection = new_table("selection", "tokens of", "tokens")
    for language in report.languages:
        selection.add_row(language, f"{report.tokens_per_language[language]:,}")
    selection.add_row("special", f"{report.special_tokens:,}")
    selection.add_row("fallback", f"{report.fallback_tokens:,}", end_section=True)
    selection.add_row("kept", f"{report.tokens_kept:,}")
    console.print(selection)
    key_list(
        console,
        [
            *((language, report.sources[language]) for language in report.languages),
            ("special", "the tokenizer's special tokens and kept texts"),
            ("fallback", "single characters of the scripts, digits, punctuation"),
            ("kept", "the union: a token several languages use is kept once"),
        ],
    )

    if report.coverage:
        coverage = new_table(
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
