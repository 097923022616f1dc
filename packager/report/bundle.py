"""Reports about a bundle: `pack`'s, `parity`'s and `inspect`'s."""

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from langtrim.packager.report.tables import (
    DASH,
    fmt_bytes,
    fmt_cosine,
    fmt_gate,
    fmt_mb,
    fmt_share,
    key_list,
    new_table,
)
from langtrim.packager.report.trim import print_trim_report

if TYPE_CHECKING:
    from langtrim.packager.pack.job import PackReport
    from langtrim.packager.pack.parity import ParityReport
    from langtrim.packager.pack.score_parity import ScoreParity
    from langtrim.runtime.bundle import Manifest


def print_pack_report(report: "PackReport", console: Console) -> None:
    if report.trim.coverage:
        print_trim_report(report.trim, console, show_output=False)
    table = new_table(f"bundle ({report.variant})", "", "value")
    table.add_row("source weights (safetensors, fp32)", fmt_mb(report.trim.before.megabytes))
    table.add_row("trimmed weights (safetensors, fp32)", fmt_mb(report.trim.after.megabytes))
    table.add_row("trimmed ONNX, fp32", fmt_mb(report.trimmed_fp32_onnx_mb))
    table.add_row("bundle (all files)", fmt_mb(report.bundle_mb))
    table.add_row("vocabulary", f"{report.trim.tokens_kept:,} of {report.trim.tokens_total:,}")
    table.add_row("parity", fmt_gate(report.parity.passed))
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
    key_list(console, rows)
    if manifest.parity is None:
        console.print("parity: not measured")
    else:
        _print_manifest_parity(manifest.parity, console)
    console.print(_coverage_line(manifest.coverage))
    algorithms = sorted({entry.algorithm for entry in manifest.files.values()})
    files = new_table(
        f"{len(manifest.files)} files, each {', '.join(algorithms)} checked", "file", "size", "digest (start)"
    )
    files.columns[-1].justify = "left"
    for name, entry in manifest.files.items():
        files.add_row(name, fmt_bytes(entry.size), entry.digest[:12])
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
        f"coverage check: uncovered above {fmt_share(coverage.get('max_unknown_share'))} unknown (or other "
        f"scripts') pieces or "
        f"{fmt_share(coverage.get('max_dropped_word_share'))} dropped words"
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
    table = new_table(title, "language", "identical", "unknown", "cos mean", "cos p1", "cos min", "gate")
    table.columns[-1].justify = "left"
    for language, identical, unknown, mean, p1, minimum, passed in rows:
        table.add_row(
            language,
            fmt_share(identical),
            fmt_share(unknown, 2),
            fmt_cosine(mean),
            fmt_cosine(p1),
            fmt_cosine(minimum),
            fmt_gate(passed),
        )
    return table


def _retrieval_table(rows: Mapping[str, Any]) -> Table:
    """Bitext mining per language (the summary `bitext.summary` makes): the bundle's languages, then the
    languages outside it, which are never gated."""
    table = new_table(
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
        gate = fmt_gate(row.get("passed")) if row.get("gated") else "not gated" if inside else "outside"
        table.add_row(
            language,
            str(row.get("pairs", DASH)),
            f"{row.get('f1_original', 0):.2f}",
            f"{row.get('f1_bundle', 0):.2f}",
            fmt_share(row.get("unk_rate"), 2),
            fmt_share(row.get("flagged_share")),
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
    steps = new_table(
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
            fmt_cosine(p.trim_cosine.mean),
            fmt_cosine(p.export_cosine.mean),
            *(
                (
                    fmt_share(p.label_agreement),
                    f"{p.max_probability_diff:.1e}" if p.max_probability_diff is not None else DASH,
                )
                if classifier
                else ()
            ),
        )
    if report.languages:
        console.print(steps)
        key_list(
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
    table = new_table("scores: bundle vs original", "language", "items", "logit diff", "identical", *extra)
    for p in report.languages:
        if p.scores is None:
            continue
        s = p.scores
        same = f"{s.max_logit_diff_identical:.1e}" if s.max_logit_diff_identical is not None else DASH
        figures: tuple[str, ...] = (
            (f"{s.spearman:.4f}", fmt_share(s.top1_agreement), *((_found(s),) if found else ()))
            if pairs
            else (fmt_share(s.span_agreement),)
        )
        table.add_row(p.language, f"{s.items:,}", f"{s.max_logit_diff:.1e}", same, *figures)
    console.print(table)
    key_list(
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
        return DASH
    return f"{scores.relevant_top1_original:.0%}->{scores.relevant_top1_bundle:.0%}"
