"""Does onnxruntime with default options give the Encoder's vectors, and at what speed?

The Encoder loads a bundle with SkipLayerNormFusion off; every other runtime loads it with onnxruntime's
defaults. `langtrim pack` writes the residual Adds that feed a layer norm as Sums, which no fusion matches
(packager/pack/default_session.py). This script compares that graph with the graph as pack wrote it before
(the same bundle with those Sums turned back into Adds, built in a temporary folder):

1. Vectors: each text alone (a text's int8 vector also depends on its batch, which is not measured here),
   the Encoder against a default `InferenceSession(model.onnx)` pooled and normalised as the manifest says:
   cosine min / mean and max absolute difference over the shipped sentences of the bundle's languages.
2. Speed: CPU milliseconds of one request of 16 and of 128 tokens and of a batch of 32 x 40 tokens, 1 thread,
   each graph with the Encoder's options and with onnxruntime's defaults; fresh processes, rounds going over
   every case in turn, medians with min and max (runtime_profile.py's measurement); and the Sum kernel
   against the Add kernel alone, where a whole model's noise does not hide a small difference.

    python benchmarks/default_session.py --bundle en-fr-de.bundle

Writes benchmarks/results/default_session.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from runtime_profile import ENCODER_OPTIONS, SESSION, _fresh

ROOT = Path(__file__).resolve().parents[1]
_SPEED_KEYS = ("b1_16_cpu_ms", "b1_128_cpu_ms", "b32_40_cpu_ms")

SUM_AGAINST_ADD = r"""
import json, statistics, time
import numpy as np, onnxruntime as ort
from onnx import TensorProto, helper
hidden, chain = 384, 24
def graph(op):
    nodes, current = [], "x"
    for i in range(chain):
        nodes.append(helper.make_node(op, [current, "s"], [f"o{i}"]))
        current = f"o{i}"
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    typed = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, None, hidden])
    graph = helper.make_graph(nodes, "chain", [typed("x"), typed("s")], [typed("y")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
rng, result = np.random.default_rng(0), {}
for op in ("Add", "Sum"):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(graph(op).SerializeToString(), options, providers=["CPUExecutionProvider"])
    for batch, length in ((1, 128), (32, 40)):
        feed = {name: rng.random((batch, length, hidden), dtype=np.float32) for name in ("x", "s")}
        session.run(None, feed)
        spent = []
        for _ in range(30):
            start = time.process_time()
            session.run(None, feed)
            spent.append(time.process_time() - start)
        result[f"{op}, {batch}x{length}"] = statistics.median(spent) / chain * 1e3
print(json.dumps(result))
"""


def graph_as_before(bundle: Path, folder: Path) -> Path:
    """A copy of the bundle's graph with the residual Sums back as Adds, beside the same weights."""
    import onnx

    model = onnx.load(str(bundle / "model.onnx"), load_external_data=False)
    for node in model.graph.node:
        if node.op_type == "Sum" and len(node.input) == 2:
            node.op_type = "Add"
    data = bundle / "model.onnx.data"
    try:  # onnxruntime refuses a weights file that a link resolves outside the graph's folder
        os.link(data, folder / data.name)
    except OSError:
        shutil.copy2(data, folder / data.name)
    onnx.save_model(model, str(folder / "model.onnx"))
    return folder / "model.onnx"


def vectors_alone(encoder, model: Path, texts: list[str]) -> dict[str, float]:
    """Cosine of a default session's vectors to the Encoder's, one text at a time."""
    import onnxruntime

    from langtrim.runtime.encoder import cls_pool, l2_normalize, mean_pool

    session = onnxruntime.InferenceSession(str(model))
    names = [i.name for i in session.get_inputs()]
    cosines, worst = [], 0.0
    for text in texts:
        (ids,) = encoder.tokenize([text]).ids
        ids = ids[None, :]
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, {name: feed[name] for name in names})[0]
        pooled = (
            mean_pool(hidden, feed["attention_mask"])
            if encoder.manifest.pooling == "mean"
            else cls_pool(hidden)
        )
        theirs = l2_normalize(pooled)[0]
        mine = encoder.embed([text], normalize=True)[0]
        cosines.append(float(mine @ theirs))
        worst = max(worst, float(np.abs(mine - theirs).max()))
    return {
        "texts": len(texts),
        "cosine_min": min(cosines),
        "cosine_mean": statistics.fmean(cosines),
        "max_abs": worst,
    }


def speeds(models: dict[str, Path], rounds: int) -> list[dict]:
    settings = {"Encoder's options": ENCODER_OPTIONS, "onnxruntime defaults": {}}
    raw: dict[tuple[str, str], list[dict]] = {(m, s): [] for m in models for s in settings}
    for _ in range(rounds):
        for label, path in models.items():
            for name, setting in settings.items():
                raw[(label, name)].append(_fresh(SESSION, str(path), json.dumps(setting)))
    return [
        {
            "graph": label,
            "options": name,
            **{
                key: {
                    "median": statistics.median(r[key] for r in runs),
                    "min": min(r[key] for r in runs),
                    "max": max(r[key] for r in runs),
                }
                for key in _SPEED_KEYS
            },
        }
        for (label, name), runs in raw.items()
    ]


def markdown(result: dict) -> str:
    vectors = [
        "| graph | texts | cosine min | cosine mean | max abs difference |",
        "|---|---:|---:|---:|---:|",
    ]
    vectors += [
        f"| {label} | {v['texts']} | {v['cosine_min']:.6f} | {v['cosine_mean']:.6f} | {v['max_abs']:.1e} |"
        for label, v in result["vectors"].items()
    ]
    speed = ["| graph | options | 16 tokens | 128 tokens | 32 x 40 tokens |", "|---|---|---:|---:|---:|"]
    speed += [
        f"| {r['graph']} | {r['options']} | "
        + " | ".join(f"{r[k]['median']:.2f} ({r[k]['min']:.2f}-{r[k]['max']:.2f})" for k in _SPEED_KEYS)
        + " |"
        for r in result["speeds"]
    ]
    kernels = ["| kernel, input | ms per operator (CPU), median (min-max) |", "|---|---:|"]
    kernels += [
        f"| {key} | {statistics.median(values):.4f} ({min(values):.4f}-{max(values):.4f}) |"
        for key in result["sum_against_add"][0]
        for values in [[run[key] for run in result["sum_against_add"]]]
    ]
    return (
        "\n\n".join(
            [
                f"# onnxruntime defaults against the Encoder: {result['bundle']}",
                f"`{result['command']}`; {result['machine']['cpu']}, onnxruntime {result['versions']['onnxruntime']}.",
                "## Vectors: a default session against the Encoder, each text alone",
                "\n".join(vectors),
                f"## Speed: CPU ms, 1 thread, medians (min-max) of {result['rounds']} fresh processes",
                "\n".join(speed),
                "## Sum against Add alone (hidden 384, chain of 24, 1 thread)",
                "\n".join(kernels),
            ]
        )
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle packed by this langtrim")
    parser.add_argument("--texts", type=int, default=100, help="shipped sentences per language")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from langtrim.packager.bench.results import machine, versions
    from langtrim.packager.shipped_text import shipped_sentences
    from langtrim.runtime import Encoder

    encoder = Encoder(args.bundle, threads=1)
    texts = [text for code in encoder.manifest.languages for text in shipped_sentences(code)[: args.texts]]
    with tempfile.TemporaryDirectory(prefix="langtrim-default-session-") as name:
        models = {
            "as packed now (residual Sums)": args.bundle / "model.onnx",
            "as packed before (residual Adds)": graph_as_before(args.bundle, Path(name)),
        }
        result = {
            "command": " ".join(["python benchmarks/default_session.py", *sys.argv[1:]]),
            "bundle": str(args.bundle),
            "rounds": args.rounds,
            "machine": machine(),
            "versions": versions(),
            "vectors": {label: vectors_alone(encoder, path, texts) for label, path in models.items()},
            "speeds": speeds(models, args.rounds),
            "sum_against_add": [_fresh(SUM_AGAINST_ADD) for _ in range(args.rounds)],
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "default_session.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (args.out / "default_session.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
