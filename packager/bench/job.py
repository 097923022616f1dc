"""`langtrim bench` as a library call: measure a bundle against its source model, and write the results.

The measuring is `measure` (fresh processes per figure); the results JSON is `results`; its tables are
`report` and its plots `plots`. This module only wires them, so none of them needs another's caller.
"""

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langtrim.packager.bench.measure import bench_texts, bundle_engine, measure, torch_engine
from langtrim.packager.bench.plots import plots
from langtrim.packager.bench.report import Results, markdown
from langtrim.packager.bench.results import results_json
from langtrim.runtime.bundle import read_manifest


def bench_bundle(
    bundle: Path,
    *,
    against: str | None = None,
    threads: Sequence[int] = (1,),
    repeats: int = 3,
    allow_pickle: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """`langtrim bench`: a bundle against its source model in PyTorch (`against`, default the manifest's
    source), on the shipped sentences of the bundle's languages with its first prompt; returns the results
    JSON (see `results_json`)."""
    from langtrim.packager.models.default_model import DEFAULT_MODEL_NAME
    from langtrim.packager.models.sources import load_tokenizer, resolve_model

    manifest = read_manifest(bundle, verify="full")
    name = against or manifest.source.name
    source = resolve_model(None if name == DEFAULT_MODEL_NAME else name, allow_pickle=allow_pickle)
    family = Path(name).name
    variant = manifest.quantization.mode if manifest.quantization.mode != "none" else "fp32"
    onnx = bundle_engine(bundle, f"bundle ({variant}, {manifest.optimization})", family)
    original = torch_engine(source.path, "PyTorch original", family, like=onnx)
    prompt = next(iter(manifest.prompts.values()), "")
    texts = bench_texts(load_tokenizer(source), manifest.languages, prompt=prompt)
    engines = [original, onnx]
    runs = measure(engines, texts, threads=threads, repeats=repeats, progress=progress)
    settings = {
        "command": f"langtrim bench {bundle} --repeats {repeats} --threads {','.join(map(str, threads))}",
        "mode": "bundle",
        "source": family,
        "languages": list(manifest.languages),
        "repeats": repeats,
        "warmup_processes": 1,
        "threads": list(threads),
        "verify": "full",
        "prompt": prompt,
    }
    return results_json(engines, runs, texts, settings)


def write_results(results: Results, out: Path, stem: str) -> list[Path]:
    """`stem`.json, `stem`.md and the plots into `out`; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown_path.write_text(markdown(results), encoding="utf-8")
    return [json_path, markdown_path, *plots(results, out, stem)]
