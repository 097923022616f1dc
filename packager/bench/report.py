"""Benchmark results for people: Markdown tables, and a rich table for the CLI (plots: `plots`).

Everything here reads the results JSON that `langtrim.packager.bench.results.results_json` builds, so the
tables can be redrawn from a saved run.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

Results = Mapping[str, Any]
_TABLE_METRICS = (  # (key, header) of the side-by-side tables, after disk size
    ("rss_after_load_mb", "peak RSS after load, MB"),
    ("rss_after_first_mb", "peak RSS after 1st request, MB"),
    ("load_s", "load, s"),
    ("cold_start_s", "cold start, s"),
    ("short_p50_ms", "short p50, ms"),
    ("short_p95_ms", "short p95, ms"),
    ("long_p50_ms", "128 tok p50, ms"),
    ("long_p95_ms", "128 tok p95, ms"),
    ("batch32_sentences_per_s", "batch 32, sent/s"),
)
_RATIO_METRICS = (
    ("disk", "disk"),
    ("rss_after_first_mb", "peak RSS"),
    ("load_s", "load"),
    ("cold_start_s", "cold start"),
    ("short_p50_ms", "short p50"),
    ("long_p50_ms", "128 tok p50"),
    ("batch32_sentences_per_s", "batch-32 throughput"),
    ("cold_start_cpu_s", "cold start, CPU"),
    ("short_p50_cpu_ms", "short p50, CPU"),
    ("batch32_cpu_sentences_per_s", "batch 32, per CPU s"),
)
_CPU_METRICS = (
    ("cold_start_cpu_s", "cold start, CPU s"),
    ("short_p50_cpu_ms", "short p50, CPU ms"),
    ("long_p50_cpu_ms", "128 tok p50, CPU ms"),
    ("batch32_cpu_sentences_per_s", "batch 32, sentences per CPU s"),
)


def number(value: float) -> str:
    """Three significant digits without exponent: 471, 38.2, 2.51, 0.352."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3
    return f"{value:,.{decimals}f}"


def _cell(figure: Mapping[str, float], ranged: bool) -> str:
    text = number(figure["median"])
    return f"{text} ({number(figure['min'])}–{number(figure['max'])})" if ranged else text


def engines_by_label(results: Results) -> dict[str, dict[str, Any]]:
    return {engine["label"]: engine for engine in results["engines"]}


def runs_at(results: Results, threads: int) -> list[dict[str, Any]]:
    return [run for run in results["runs"] if run["threads"] == threads]


def variant_name(engine: Mapping[str, Any]) -> str:
    """fp32 / fp32 fused / int8 / int8 fused, or "PyTorch"."""
    if engine["kind"] == "torch":
        return "PyTorch"
    return engine["precision"] + (" fused" if engine["optimize"] == "fused" else "")


def is_side_by_side(engine: Mapping[str, Any], languages: Sequence[str]) -> bool:
    return not engine["trimmed"] or list(engine["languages"]) == list(languages)


def side_by_side_table(results: Results, threads: int) -> str:
    engines, ranged = engines_by_label(results), results["settings"]["repeats"] > 1
    header = ["engine", "disk, MB", *(title for _, title in _TABLE_METRICS)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for run in runs_at(results, threads):
        engine = engines[run["engine"]]
        cells = [run["engine"], number(engine["disk_bytes"] / 1e6)]
        cells += [_cell(run["summary"][key], ranged) for key, _ in _TABLE_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_table(results: Results, threads: int) -> str:
    """CPU time of the process (all threads), median (min–max) and the ratio to PyTorch's median."""
    ranged = results["settings"]["repeats"] > 1
    header = ["engine", *(title for _, title in _CPU_METRICS)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(_CPU_METRICS)]
    for run in runs_at(results, threads):
        cells = [run["engine"]]
        for key, _ in _CPU_METRICS:
            ratio = run["ratios"].get(key)
            cells.append(_cell(run["summary"][key], ranged) + (f", {ratio:.1f}x" if ratio else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_table(results: Results) -> str:
    header = ["engine", "threads", "cosine to PyTorch", *(title for _, title in _RATIO_METRICS)]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|" + "---:|" * len(_RATIO_METRICS)]
    for run in results["runs"]:
        if not run["ratios"]:
            continue
        cosine = run.get("cosine_to_pytorch")
        cells = [run["engine"], str(run["threads"]), "-" if cosine is None else f"{cosine:.5f}"]
        cells += [f"{run['ratios'][key]:.1f}x" if key in run["ratios"] else "-" for key, _ in _RATIO_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_rows(results: Results, threads: int = 1) -> list[dict[str, Any]]:
    """One row per engine of the source family: variant, language count (None: untrimmed), figures."""
    engines = engines_by_label(results)
    family = results["engines"][0]["family"]
    rows = []
    for run in runs_at(results, threads):
        engine = engines[run["engine"]]
        if engine["family"] != family or engine["kind"] not in ("torch", "onnx"):
            continue
        rows.append(
            {
                "variant": variant_name(engine),
                "languages": len(engine["languages"]) if engine["trimmed"] else None,
                "engine": engine,
                "summary": run["summary"],
            }
        )
    order = {"PyTorch": 0, "fp32": 1, "fp32 fused": 2, "int8": 3, "int8 fused": 4}
    return sorted(rows, key=lambda r: (order.get(r["variant"], 9), r["languages"] or 10**6))


def scaling_table(results: Results, threads: int = 1) -> str:
    ranged = results["settings"]["repeats"] > 1
    header = [
        "variant",
        "languages",
        "vocabulary",
        "disk, MB",
        "peak RSS after 1st request, MB",
        "load, s",
        "cold start, s",
        "short p50, ms",
    ]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in scaling_rows(results, threads):
        engine, summary = row["engine"], row["summary"]
        count = "all (untrimmed)" if row["languages"] is None else str(row["languages"])
        cells = [
            row["variant"],
            count,
            f"{engine['vocab_rows']:,}" if engine["vocab_rows"] else "-",
            number(engine["disk_bytes"] / 1e6),
            _cell(summary["rss_after_first_mb"], ranged),
            _cell(summary["load_s"], ranged),
            _cell(summary["cold_start_s"], ranged),
            _cell(summary["short_p50_ms"], ranged),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(results: Results) -> str:
    lines = ["| target | bound | measured | ratio to reference | met |", "|---|---|---:|---:|---|"]
    for target in results["targets"]:
        bounds = []
        if target["at_most"] is not None:
            bounds.append(f"<= {number(target['at_most'])}")
        if target["ratio_at_least"] is not None:
            bounds.append(f">= {target['ratio_at_least']:g}x {target.get('against', 'PyTorch')}")
        ratio = f"{target['ratio']:.1f}x" if target["ratio"] is not None else "-"
        if target["met"]:
            verdict = "yes"
        else:
            misses = []
            if target["value_vs_bound"] is not None and target["value_vs_bound"] > 1:
                misses.append(f"{target['value_vs_bound']:.2f}x the bound")
            if target["ratio_vs_bound"] is not None and target["ratio_vs_bound"] < 1:
                misses.append(f"ratio {target['ratio_vs_bound']:.0%} of the goal")
            verdict = "**no**: " + ", ".join(misses)
        lines.append(
            f"| {target['name']} | {' and '.join(bounds)} | {number(target['value'])} | {ratio} | {verdict} |"
        )
    return "\n".join(lines)


def _huge_pages_note(machine: Mapping[str, Any]) -> str:
    """Why a run's peak RSS may be higher than another's on the same code (see `results.machine`)."""
    huge = machine.get("page_cache_huge_pages_mb")
    if not huge:
        return ""
    return (
        f" The page cache held {number(huge)} MB of files in huge pages when the run started (files written "
        "shortly before, e.g. a fresh install): libraries mapped from them raise every process's peak RSS."
    )


def markdown(results: Results) -> str:
    settings, machine, versions = results["settings"], results["machine"], results["versions"]
    texts = results["texts"]
    threads = settings["threads"]
    parts = [
        f"# Side by side: {settings['source']}, {','.join(settings['languages'])}",
        f"`{settings['command']}` ({settings['mode']} mode, {results['created']}). "
        f"{machine['cpu']}, {machine['logical_cores']} logical cores, {machine['memory_gb']} GB, CPU flags "
        f"{' '.join(machine.get('cpu_flags') or ['unknown'])}; "
        f"{machine['platform']}, Python {machine['python']}; "
        + ", ".join(f"{name} {value}" for name, value in versions.items())
        + ".",
        f"Each figure: median (min–max) over {settings['repeats']} fresh processes per engine and thread count "
        "(rounds go over all engines in turn, after "
        f"{settings['warmup_processes']} unrecorded warm-up round); latency percentiles are over each process's "
        f"requests ({len(texts['short'])} short texts, {len(texts['long'])} of 128 tokens, "
        f"{len(texts['batch']) // 32} batches of 32). Texts: shipped Tatoeba sentences of "
        f"{', '.join(texts['languages'])}, prompt {settings['prompt']!r}, identical for every engine. "
        "Disk: every file of the model directory or bundle (MB = 10^6 bytes). Peak RSS: the process's "
        "high-water mark (VmHWM). Cold start: from spawning the process to the first embedding, imports "
        "included, model files in the page cache (evicted before the warm-up round, so each engine's own "
        f"first load read them in). Runtime bundles load with verify={settings['verify']!r}."
        + _huge_pages_note(machine),
    ]
    for n in threads:
        parts += [f"## Side by side, {n} thread{'s' if n > 1 else ''}", side_by_side_table(results, n)]
    parts += [
        f"## CPU time, {threads[0]} thread (all threads of the process; steadier than wall time on a shared "
        "machine), with the ratio to PyTorch",
        cpu_table(results, threads[0]),
    ]
    parts += [
        "## Ratios to PyTorch (same thread count; above 1 is better), and the cosine of each engine's vector "
        "of the first short text to PyTorch's",
        ratio_table(results),
    ]
    parts += [
        f"## Scaling with the number of languages ({threads[0]} thread)",
        scaling_table(results, threads[0]),
    ]
    if results["targets"]:
        parts += [f"## Targets ({settings['headline']}, 1 thread)", targets_table(results)]
    return "\n\n".join(parts) + "\n"


_CLI_METRICS = (  # (key, row label) of the CLI's table: the headline figures, units in the label
    ("disk", "disk, MB"),
    ("rss_after_first_mb", "peak RSS, MB"),
    ("load_s", "load, s"),
    ("cold_start_s", "cold start, s"),
    ("short_p50_ms", "short p50, ms"),
    ("long_p50_ms", "128 tok p50, ms"),
    ("batch32_sentences_per_s", "batch 32, sent/s"),
)


def print_bench(results: Results, console: Console) -> None:
    """The CLI's view: per thread count, a row per figure and a column per engine (`langtrim bench` has
    two, PyTorch and the bundle), each figure the median with its ratio to PyTorch; --json has the rest."""
    engines = engines_by_label(results)
    repeats = results["settings"]["repeats"]
    for n in results["settings"]["threads"]:
        runs = runs_at(results, n)
        table = Table(title=f"{n} thread{'s' if n > 1 else ''}, medians of {repeats} processes")
        table.add_column("", no_wrap=True)
        for run in runs:
            table.add_column(run["engine"], justify="right", no_wrap=True)
        columns = []
        for run in runs:
            engine = engines[run["engine"]]
            medians = {"disk": engine["disk_bytes"] / 1e6}
            medians |= {key: figure["median"] for key, figure in run["summary"].items()}
            ratios = run["ratios"] if engine["kind"] != "torch" else {}
            columns.append(
                [
                    number(medians[key]) + (f" ({ratios[key]:.1f}x)" if key in ratios else "")
                    for key, _ in _CLI_METRICS
                ]
            )
        for i, (_, label) in enumerate(_CLI_METRICS):
            table.add_row(label, *(column[i] for column in columns))
        console.print(table)
    console.print("(x): how many times better than PyTorch at the same thread count")
