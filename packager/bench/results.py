"""What a benchmark run measured, as plain JSON: the machine, the versions, every raw figure, the targets.

`results_json` is what `benchmarks/side_by_side.py` and `langtrim bench` write; `report` draws its
tables and plots from it, so a saved run can be redrawn.
"""

import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from langtrim.packager.bench.measure import METRICS, BenchTexts, Engine, Run
from langtrim.packager.outputs import directory_bytes


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _meminfo_mb(field: str) -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    line = next((x for x in meminfo.read_text().splitlines() if x.startswith(field + ":")), None)
    return None if line is None else round(int(line.split()[1]) * 1024 / 1e6, 1)


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, memory, OS, Python, and the page cache's huge pages.

    Files written shortly before a run (a fresh `pip install`) sit in the page cache as 2 MiB folios, and
    mapping a library from such folios makes whole folios resident: every process's peak RSS comes out
    higher (by ~5 MB for the runtime, ~90 MB for PyTorch) than after the files were read from disk. The
    figure tells which case a run measured."""
    memory_mb = _meminfo_mb("MemTotal")
    flags: list[str] = []
    if Path("/proc/cpuinfo").is_file():
        line = next((x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags")), "")
        present = set(line.split(":", 1)[-1].split())
        flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in present]
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": None if memory_mb is None else round(memory_mb / 1e3, 1),
        "page_cache_huge_pages_mb": _meminfo_mb("FileHugePages"),
        "cpu_flags": flags,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


_BENCH_PACKAGES = (
    "langtrim",
    "onnxruntime",
    "tokenizers",
    "numpy",
    "torch",
    "transformers",
    "optimum-onnx",
    "onnx",
    "fastembed",
    "sentence-transformers",
)


def versions(names: Sequence[str] = _BENCH_PACKAGES) -> dict[str, str]:
    """Installed versions of `names` ("not installed" for a missing one), for every benchmark's JSON."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


@dataclass(frozen=True)
class Target:
    """A goal for the headline engine (1 thread): an absolute bound and/or a ratio to a reference engine,
    PyTorch unless `against` names another engine of the run (what users would pick instead)."""

    name: str
    metric: str  # a METRICS key, or "disk"
    at_most: float | None = None  # in the metric's unit (MB for "disk")
    ratio_at_least: float | None = None  # how many times better than the reference (>1: better)
    against: str | None = None  # the reference engine's label; None: the family's PyTorch engine


def _ratio(target: Target, engine: Engine, run: Run, reference: tuple[Engine, Run] | None) -> float | None:
    if target.against is None:
        return run.ratios.get(target.metric)
    if reference is None:
        return None
    other, other_run = reference
    if target.metric == "disk":
        return other.disk_bytes / engine.disk_bytes
    mine, theirs = run.summary[target.metric].median, other_run.summary[target.metric].median
    lower_is_better = METRICS[target.metric][2]
    return theirs / mine if lower_is_better else mine / theirs


def check_targets(
    targets: Sequence[Target],
    engine: Engine,
    run: Run,
    references: Mapping[str, tuple[Engine, Run]] | None = None,
) -> list[dict[str, Any]]:
    """Each target with the measured value, the ratio to its reference, and whether (and by how much) it is
    met. `references`: engine label -> (engine, run at the headline's thread count), for `Target.against`."""
    checked = []
    for target in targets:
        value = engine.disk_bytes / 1e6 if target.metric == "disk" else run.summary[target.metric].median
        reference = (references or {}).get(target.against) if target.against else None
        ratio = _ratio(target, engine, run, reference)
        met_value = target.at_most is None or value <= target.at_most
        met_ratio = target.ratio_at_least is None or (ratio is not None and ratio >= target.ratio_at_least)
        checked.append(
            {
                **asdict(target),
                "against": target.against or "PyTorch",
                "engine": engine.label,
                "threads": run.threads,
                "value": value,
                "ratio": ratio,
                "met": met_value and met_ratio,
                # how far off: measured / bound for values (>1 missed), bound / measured for ratios
                "value_vs_bound": None if target.at_most is None else value / target.at_most,
                "ratio_vs_bound": None
                if target.ratio_at_least is None or ratio is None
                else ratio / target.ratio_at_least,
            }
        )
    return checked


def results_json(
    engines: Sequence[Engine],
    runs: Sequence[Run],
    texts: BenchTexts,
    settings: Mapping[str, Any],
    targets: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Everything a run measured, with the machine and versions, as plain JSON values."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "settings": dict(settings),
        "texts": asdict(texts),
        "engines": [{**asdict(engine), "files": directory_bytes(Path(engine.path))[1]} for engine in engines],
        "runs": [asdict(run) for run in runs],
        "targets": list(targets),
    }
