"""PNG plots of a benchmark run (matplotlib, imported only here): bars per engine, and lines against the
number of languages. Read from the results JSON, like the tables in `report`."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langtrim.packager.bench.report import (
    Results,
    engines_by_label,
    is_side_by_side,
    number,
    runs_at,
    scaling_rows,
)
from langtrim.runtime.errors import UsageError

_LINE_COLORS = ("#4c72b0", "#55a868", "#8172b2", "#ccb974")


def _color(label: str) -> str:
    """PyTorch red, untrimmed ONNX grey, trimmed bundles blue."""
    return "#c44e52" if "PyTorch" in label else "#8c8c8c" if "untrimmed" in label else "#4c72b0"


def _bars(axis: Any, labels: list[str], figures: Sequence[Mapping[str, float]], title: str) -> None:
    """Horizontal bars, the first label at the top, with min–max whiskers."""
    medians = [f["median"] for f in figures]
    errors = [
        [m - f["min"] for m, f in zip(medians, figures, strict=True)],
        [f["max"] - m for m, f in zip(medians, figures, strict=True)],
    ]
    positions = list(range(len(labels)))[::-1]
    axis.barh(
        positions,
        medians,
        xerr=errors,
        color=[_color(label) for label in labels],
        ecolor="#333333",
        capsize=2,
    )
    axis.set_yticks(positions, labels, fontsize=7)
    axis.set_title(title, fontsize=9)
    axis.tick_params(axis="x", labelsize=7)
    for position, value in zip(positions, medians, strict=True):
        axis.text(value, position, " " + number(value), va="center", fontsize=6)


def plots(results: Results, out: Path, stem: str) -> list[Path]:
    """Three PNGs: bars per engine (size, memory, load, cold start), speed bars, scaling lines."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise UsageError("the benchmark's PNG plots need matplotlib: pip install 'langtrim[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines, settings = engines_by_label(results), results["settings"]
    first, threads = settings["threads"][0], settings["threads"]
    shown = [
        r for r in runs_at(results, first) if is_side_by_side(engines[r["engine"]], settings["languages"])
    ]
    labels = [run["engine"] for run in shown]
    written = []

    figure, axes = plt.subplots(1, 4, figsize=(16, 0.45 * len(labels) + 1.5), sharey=True)
    disk = [{k: engines[r["engine"]]["disk_bytes"] / 1e6 for k in ("median", "min", "max")} for r in shown]
    _bars(axes[0], labels, disk, "on-disk size, MB")
    _bars(
        axes[1], labels, [r["summary"]["rss_after_first_mb"] for r in shown], "peak RSS after 1st request, MB"
    )
    _bars(axes[2], labels, [r["summary"]["load_s"] for r in shown], "load (model + tokenizer), s")
    _bars(axes[3], labels, [r["summary"]["cold_start_s"] for r in shown], "cold start, s")
    figure.suptitle(f"{settings['source']}, {','.join(settings['languages'])}, {first} thread", fontsize=10)
    figure.tight_layout()
    written.append(out / f"{stem}_size_memory_load.png")
    figure.savefig(written[-1], dpi=120)
    plt.close(figure)

    speed_metrics = (
        ("short_p50_ms", "batch 1 short, p50 ms"),
        ("long_p50_ms", "batch 1 128 tokens, p50 ms"),
        ("batch32_sentences_per_s", "batch 32, sentences/s"),
    )
    figure, axes = plt.subplots(
        len(threads), 3, figsize=(15, (0.45 * len(labels) + 1.2) * len(threads)), sharey=True, squeeze=False
    )
    for row, n in enumerate(threads):
        by_label = {r["engine"]: r for r in runs_at(results, n)}
        for column, (key, title) in enumerate(speed_metrics):
            _bars(
                axes[row][column],
                labels,
                [by_label[label]["summary"][key] for label in labels],
                f"{title} ({n} thread{'s' if n > 1 else ''})",
            )
    figure.tight_layout()
    written.append(out / f"{stem}_speed.png")
    figure.savefig(written[-1], dpi=120)
    plt.close(figure)

    rows = scaling_rows(results, first)
    counts = sorted({r["languages"] for r in rows if r["languages"] is not None})
    positions = {count: index for index, count in enumerate(counts)}
    positions[None] = len(counts)
    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = (
        ("disk", "on-disk size, MB"),
        ("rss_after_first_mb", "peak RSS after 1st request, MB"),
        ("load_s", "load (model + tokenizer), s"),
    )
    for axis, (key, title) in zip(axes, panels, strict=True):
        for variant in sorted({r["variant"] for r in rows}):
            points = [r for r in rows if r["variant"] == variant]
            values = [
                r["engine"]["disk_bytes"] / 1e6 if key == "disk" else r["summary"][key]["median"]
                for r in points
            ]
            if variant == "PyTorch":
                axis.axhline(values[0], linestyle="--", color="#c44e52", label="PyTorch, untrimmed")
            elif len(points) > 1:  # a variant measured at one language count only is no line
                axis.plot(
                    [positions[r["languages"]] for r in points],
                    values,
                    marker="o",
                    label=variant,
                    color=_LINE_COLORS[len(axis.lines) % len(_LINE_COLORS)],
                )
        vocabulary = {r["languages"]: r["engine"]["vocab_rows"] for r in rows if r["variant"] != "PyTorch"}
        ticks = [f"{c}\n{vocabulary[c]:,} tokens" for c in counts] + [
            f"all\n{vocabulary.get(None) or 0:,} tokens"
        ]
        axis.set_xticks(list(positions.values()), ticks, fontsize=7)
        axis.set_xlabel("languages in the bundle")
        axis.set_title(title, fontsize=9)
        axis.set_ylim(bottom=0)
        axis.legend(fontsize=7)
    figure.suptitle(
        f"{settings['source']}: cost against the number of languages ({first} thread)", fontsize=10
    )
    figure.tight_layout()
    written.append(out / f"{stem}_scaling.png")
    figure.savefig(written[-1], dpi=120)
    plt.close(figure)
    return written
