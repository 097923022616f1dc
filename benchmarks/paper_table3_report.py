"""The paper's Table 3 beside ours: figures, ratios to mBERT, the checks and goals, as JSON, Markdown and a
PNG, all drawn from the results JSON that `paper_table3.py` writes (so a saved run can be redrawn:
`python benchmarks/paper_table3_report.py benchmarks/results/paper_table3.json`)."""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langtrim.packager.bench.report import number

FIGURES = (  # key -> (header, unit)
    ("size_mb", "size, MB"),
    ("memory_mb", "memory, MB"),
    ("load_s", "loading, s"),
    ("inference_s", "inference, s"),
)
RATIO_TOLERANCE = 0.05  # our PyTorch ratios to mBERT against the paper's, for size and memory
TRIM_TOLERANCE = 1e-5  # last hidden states, identically tokenized sentences
MBERT = "mBERT"


def _engine_figures(engine: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    """One engine's Table 3 figures: medians over its processes. Memory is the model's own share, the peak
    RSS after loading and one inference minus the peak after the imports (the paper's figures are about
    twice each model's size, which fits that share, not a whole process's)."""
    processes = run["processes"]
    own = [p["rss_after_first_mb"] - p["rss_after_import_mb"] for p in processes]
    summary = run["summary"]
    return {
        "size_mb": engine["model_file_bytes"] / 1e6
        if engine["kind"] == "torch"
        else engine["disk_bytes"] / 1e6,
        "files_mb": engine["disk_bytes"] / 1e6,
        "memory_mb": statistics.median(own),
        "memory_min_max_mb": [min(own), max(own)],
        "peak_rss_mb": summary["rss_after_first_mb"]["median"],
        "load_s": summary["load_s"]["median"],
        "load_min_max_s": [summary["load_s"]["min"], summary["load_s"]["max"]],
        "inference_s": summary["short_p50_ms"]["median"] / 1e3,
        "inference_128_tokens_s": summary["long_p50_ms"]["median"] / 1e3,
        "cold_start_s": summary["cold_start_s"]["median"],
        "vocab_rows": engine["vocab_rows"],
        "processes": len(processes),
    }


def _ratios(figures: Mapping[str, float], reference: Mapping[str, float]) -> dict[str, float]:
    return {key: figures[key] / reference[key] for key, _ in FIGURES}


def table3(results: Mapping[str, Any]) -> dict[str, Any]:
    """Rows (paper, ours in PyTorch, ours as int8 bundles), ratios to mBERT, the checks and the goals, from
    the run's engines and processes and what `paper_table3.py` recorded of each row and of the paper."""
    rows_facts, paper = results["rows"], results["paper"]
    engines = {engine["label"]: engine for engine in results["engines"]}
    runs = {run["engine"]: run for run in results["runs"] if run["threads"] == 1}
    rows: dict[str, dict[str, Any]] = {}
    for name, facts in rows_facts.items():
        pytorch = _engine_figures(engines[f"{name}, PyTorch"], runs[f"{name}, PyTorch"])
        bundle = _engine_figures(engines[f"{name}, int8 bundle"], runs[f"{name}, int8 bundle"])
        sizes = facts["projected_sizes"]
        if sizes:  # the paper's row is an average over language sets: so is our PyTorch size
            pytorch["measured_size_mb"] = pytorch["size_mb"]
            pytorch["size_mb"] = statistics.mean(s["size_mb"] for s in sizes.values())
        rows[name] = {**facts, "paper": paper.get(name), "pytorch": pytorch, "bundle": bundle}
    ours, theirs = rows[MBERT]["pytorch"], paper[MBERT]
    for row in rows.values():
        row["ratios"] = {
            "paper": _ratios(row["paper"], theirs) if row["paper"] else None,
            "pytorch": _ratios(row["pytorch"], ours),
            "bundle": _ratios(row["bundle"], ours),  # against PyTorch mBERT: the goals read these
        }
    checks = [
        {
            "row": name,
            "figure": key,
            "paper_ratio": row["ratios"]["paper"][key],
            "our_ratio": row["ratios"]["pytorch"][key],
            "within": RATIO_TOLERANCE,
            "met": abs(row["ratios"]["paper"][key] - row["ratios"]["pytorch"][key]) <= RATIO_TOLERANCE,
        }
        for name, row in rows.items()
        if row["paper"] and name != MBERT
        for key in ("size_mb", "memory_mb")
    ]
    exactness = [
        {"row": name, "language": code, **language, "exact": language["trim_max_abs_diff"] <= TRIM_TOLERANCE}
        for name, row in rows.items()
        if row["languages"]
        for code, language in row["parity"]["languages"].items()
    ]
    return {"rows": rows, "checks": checks, "exactness": exactness, "goals": _goals(rows)}


def _goal(name: str, value: float, *, at_most: float | None = None, at_least: float | None = None) -> dict:
    met = (at_most is None or value <= at_most) and (at_least is None or value >= at_least)
    bound = f"<= {at_most}" if at_most is not None else f">= {at_least}"
    return {"name": name, "value": value, "bound": bound, "met": met, "measured": f"{value:.3f} ({bound})"}


def _goals(rows: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals: an en-xx bundle at most 1/10 of mBERT's size and memory and at least 10x faster to
    load; a DistilmBERT en-xx bundle at least 4x faster at batch-1 inference than PyTorch mBERT."""
    mbert = rows[MBERT]["pytorch"]
    goals = []
    for name in ("mBERT en-xx", "DistilmBERT en-xx"):
        bundle, ratios = rows[name]["bundle"], rows[name]["ratios"]["bundle"]
        goals += [
            _goal(f"{name} bundle size / mBERT size", ratios["size_mb"], at_most=0.1),
            _goal(f"{name} bundle memory / mBERT memory (model's own)", ratios["memory_mb"], at_most=0.1),
            _goal(
                f"{name} bundle peak RSS / mBERT peak RSS (whole process)",
                bundle["peak_rss_mb"] / mbert["peak_rss_mb"],
                at_most=0.1,
            ),
            _goal(f"{name} bundle loading speed-up over mBERT", 1 / ratios["load_s"], at_least=10),
        ]
    goals.append(
        _goal(
            "DistilmBERT en-xx bundle batch-1 inference speed-up over PyTorch mBERT",
            1 / rows["DistilmBERT en-xx"]["ratios"]["bundle"]["inference_s"],
            at_least=4,
        )
    )
    return goals


def _row_label(name: str, row: Mapping[str, Any]) -> str:
    languages = row["languages"]
    if row["projected_sizes"]:
        return f"{name} (size: mean of {len(row['projected_sizes'])}; measured: {'-'.join(languages)})"
    return name


def _cells(figures: Mapping[str, float] | None, ratios: Mapping[str, float] | None) -> list[str]:
    if figures is None or ratios is None:
        return ["", "", "", ""]
    return [f"{number(figures[key])} ({ratios[key]:.2f})" for key, _ in FIGURES]


def markdown(results: Mapping[str, Any]) -> str:
    table, settings, machine = results["table3"], results["settings"], results["machine"]
    lines = [
        "# The paper's Table 3 at full size: mBERT and DistilmBERT, PyTorch and langtrim int8 bundles",
        "",
        f"**Weights: {settings['weights']}.** Sizes, memory and speed are the real models'; no quality figure.",
        "",
        f"`{settings['command']}` ({settings['duration_s'] / 60:.0f} min). Machine: {machine['cpu']}, "
        f"{machine['usable_cores']} cores ({', '.join(machine['cpu_flags'])}), {machine['memory_gb']} GB; "
        f"1 thread; {settings['repeats']} fresh processes per engine, medians. Selection: {settings['selection']}.",
        "",
        "Load average (1, 5, 15 min) before / after measuring: "
        + " / ".join(
            ", ".join(f"{x:.1f}" for x in settings["load_average_1_5_15_min"][when])
            for when in ("before", "after")
        )
        + " (a shared machine: other jobs ran).",
        "",
        "Each cell: the figure (its ratio to mBERT: the paper's to its mBERT, ours to our PyTorch mBERT).",
        "Size: the model file (safetensors) for PyTorch, every file of the bundle for the bundles. Memory: the",
        "model's own, peak RSS after loading and one inference minus the peak after the imports. Loading: model",
        f"+ tokenizer (bundles with verify='{settings['verify']}'). Inference: batch 1, p50 over 100 sentences",
        f"of {settings['language']} (14-18 tokens).",
        "",
        "| model | paper: "
        + " | paper: ".join(h for _, h in FIGURES)
        + " | PyTorch: "
        + " | PyTorch: ".join(h for _, h in FIGURES)
        + " | int8 bundle: "
        + " | int8 bundle: ".join(h for _, h in FIGURES)
        + " |",
        "|---" + "|---:" * 12 + "|",
    ]
    for name, row in table["rows"].items():
        cells = (
            _cells(row["paper"], row["ratios"]["paper"])
            + _cells(row["pytorch"], row["ratios"]["pytorch"])
            + _cells(row["bundle"], row["ratios"]["bundle"])
        )
        lines.append(f"| {_row_label(name, row)} | " + " | ".join(cells) + " |")
    lines += ["", "## Our PyTorch ratios against the paper's (size and memory, within 0.05)", ""]
    lines += ["| row | figure | paper | ours | difference | within 0.05 |", "|---|---|---:|---:|---:|---|"]
    for check in table["checks"]:
        difference = check["our_ratio"] - check["paper_ratio"]
        lines.append(
            f"| {check['row']} | {check['figure']} | {check['paper_ratio']:.3f} | {check['our_ratio']:.3f} "
            f"| {difference:+.3f} | {'yes' if check['met'] else 'NO'} |"
        )
    lines += ["", "## Goals of the int8 bundles (against PyTorch mBERT)", ""]
    lines += ["| goal | measured | bound | met |", "|---|---:|---|---|"]
    for goal in table["goals"]:
        lines.append(
            f"| {goal['name']} | {goal['value']:.3f} | {goal['bound']} | {'yes' if goal['met'] else 'NO'} |"
        )
    lines += ["", "## Trimming exactness and parity gates at full size (random weights' own outputs)", ""]
    lines += [
        "| row | language | sentences | identical tokenization | trim max abs diff | int8 end to end cosine mean / p1 | gates |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for entry in table["exactness"]:
        lines.append(
            f"| {entry['row']} | {entry['language']} | {entry['sentences']} | {entry['identical_tokenization']:.1%} "
            f"| {entry['trim_max_abs_diff']:.1e} | {entry['end_to_end_cosine_mean']:.4f} / "
            f"{entry['end_to_end_cosine_p1']:.4f} | {'passed' if not entry['failures'] else ', '.join(entry['failures'])} |"
        )
    lines += ["", "## Sizes of every language set (`langtrim trim --dry-run`, mBERT, the paper's lists)", ""]
    lines += ["| set | rows kept | safetensors MB |", "|---|---:|---:|"]
    for name in ("mBERT en-xx", "mBERT xx"):
        for key, size in table["rows"][name]["projected_sizes"].items():
            lines.append(f"| {key} | {size['rows']:,} | {size['size_mb']:.1f} |")
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    lines += ["", f"Versions: {versions}. Raw figures: `paper_table3.json`.", ""]
    return "\n".join(lines)


def plot(results: Mapping[str, Any], path: Path) -> Path:
    """Ratios to mBERT per figure: the paper, our PyTorch reproduction, our int8 bundles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["table3"]["rows"]
    names = list(rows)
    series = (("paper", "#8c8c8c"), ("pytorch", "#c44e52"), ("bundle", "#4c72b0"))
    labels = {"paper": "paper (n1-standard-1)", "pytorch": "ours, PyTorch", "bundle": "ours, int8 bundle"}
    figure, axes = plt.subplots(1, 4, figsize=(16, 4.8), sharey=True)
    height = 0.26
    for axis, (key, title) in zip(axes, FIGURES, strict=True):
        for offset, (kind, color) in enumerate(series):
            positions = [index + (1 - offset) * height for index in range(len(names))][::-1]
            values = [(rows[n]["ratios"][kind] or {}).get(key, 0.0) for n in names]
            axis.barh(positions, values, height=height, color=color, label=labels[kind])
            for position, value in zip(positions, values, strict=True):
                if value:
                    axis.text(value, position, f" {value:.2f}", va="center", fontsize=6)
        axis.set_yticks(list(range(len(names)))[::-1], names, fontsize=8)
        axis.set_title(f"{title.split(',')[0]}: ratio to mBERT", fontsize=9)
        axis.axvline(1.0, color="#333333", linewidth=0.6)
    axes[0].legend(fontsize=7, loc="lower right")
    seed = results["settings"]["weights"].split(":")[0].removeprefix("random, ")  # "seed 0"
    figure.suptitle(
        f"Table 3 at full size, 1 thread - RANDOM weights ({seed}); "
        f"en-xx / xx measured on en-{results['settings']['language']} / {results['settings']['language']}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write(results: Mapping[str, Any], out: Path, stem: str) -> list[Path]:
    """`stem`.json (the raw run first, so a failure below loses no measurement), .md and .png into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out / f"{stem}.json", out / f"{stem}.md"
    raw = {key: value for key, value in results.items() if key != "table3"}
    json_path.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    results = {**raw, "table3": table3(raw)}
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown_path.write_text(markdown(results), encoding="utf-8")
    return [json_path, markdown_path, plot(results, out / f"{stem}.png")]


if __name__ == "__main__":
    saved = Path(sys.argv[1])
    print(", ".join(map(str, write(json.loads(saved.read_text(encoding="utf-8")), saved.parent, saved.stem))))
