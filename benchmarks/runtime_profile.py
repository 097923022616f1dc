"""Where a bundle's cold start, memory and request time go, and what onnxruntime's options change.

1. Steps: a fresh process per round does what `Encoder(bundle)` does, one step at a time (imports, manifest
   with the digest check, tokenizer, onnxruntime session, first embedding), and records wall time, CPU time and
   RSS / peak RSS (VmHWM) after each. Then, in one more process, what is resident after the first embedding,
   by mapping (/proc/self/smaps), and what the tokenizer alone costs per node of its pieces' byte trie.
2. Session options, each model in fresh processes: `Encoder`'s options, onnxruntime's defaults, and one
   option changed (CPU memory arena off, weight pre-packing off, graph optimisation level basic/extended).
   Session CPU time; peak RSS after load, after the first request, after batches of 32; CPU time of one
   request of 16 and of 128 tokens and of a batch of 32 x 40 tokens (1 thread). Models: the bundle's
   model.onnx with its weights as ONNX external data (model.onnx.data, as `langtrim pack` writes it), which
   onnxruntime maps from the file; the same with the weights inside model.onnx (one file, as pack wrote
   bundles before), which onnxruntime parses out of the protobuf and copies; and, with --fused-bundle, the same packed with --optimize fused (onnxruntime's transformer fusions
   stored in the file).
3. Operators: onnxruntime's own profile of one request of 128 tokens and of a batch of 32 x 40, as shares
   of kernel time per operator type.
4. SkipLayerNormalization against the Add + Add + LayerNormalization it fuses, alone: 24 in a chain.
5. Weight traffic, the floor of a short text: the bundle's request time at batch 1 for 2 to 32 tokens (the
   time at 2 tokens is what every request pays before its tokens count), its int8 weight bytes, and chains of
   int8 MatMuls (QuantizeLinear + MatMulIntegerToFloat, 768 x 768, 2 rows) whose weights total 7 to 57 MB:
   the GB/s at which onnxruntime streams weights that fit in the CPU's caches, and that do not.

    python benchmarks/runtime_profile.py                  # the bundles side_by_side.py built

Writes benchmarks/results/runtime_profile.json and .md. Medians over --rounds fresh processes. The bundles'
files leave the page cache first, so the first load reads them in as after a deployment.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILT = Path("/tmp/langtrim-bench/full/multilingual-e5-small")

STEPS = r"""
import sys, time
def mark(name):
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    steps.append((name, time.time(), time.process_time(), int(fields["VmRSS"].split()[0]) * 1024 / 1e6,
                  int(fields["VmHWM"].split()[0]) * 1024 / 1e6))
steps = []
mark("interpreter start")
import numpy; mark("import numpy")
import onnxruntime; mark("import onnxruntime")
import tokenizers; mark("import tokenizers")
import langtrim.runtime; mark("import langtrim.runtime")
import langtrim.runtime.encoder as encoder; mark("import langtrim.runtime.encoder")
from pathlib import Path
from langtrim.runtime.bundle import MODEL_FILE, read_manifest
from langtrim.runtime.pieces import PIECES_MODEL_FILE, PieceTokenizer
from langtrim.runtime.tokenizing import load_tokenizer, special_tokens_added
bundle = Path(sys.argv[1])
manifest = read_manifest(bundle, verify="full"); mark("manifest + digest of every file")
pieces, tokenizer = None, None
if PIECES_MODEL_FILE in manifest.files:
    pieces = PieceTokenizer.load(bundle, "bundle")
    pad_id, specials = pieces.config.pad_id, pieces.special_per_text
else:
    tokenizer, pad_id = load_tokenizer(bundle, manifest.vocab.kept_size, "bundle")
    specials = special_tokens_added(tokenizer)
mark("tokenizer")
session = encoder._create_session(bundle / MODEL_FILE, "bundle", 1); mark("onnxruntime session")
types = encoder._check_graph(session, manifest, "bundle"); mark("graph check")
loaded = encoder.Encoder.__new__(encoder.Encoder)
loaded.directory, loaded.manifest, loaded._label, loaded._session = bundle, manifest, "bundle", session
loaded._input_types, loaded._pieces, loaded._loaded_tokenizer = types, pieces, tokenizer
loaded._pad_id, loaded._id_lookup, loaded._special_per_text, loaded._coverage = pad_id, None, specials, None
loaded.embed(["query: The quick brown fox jumps over the lazy dog."]); mark("first embedding")
import json
print(json.dumps({"spawned": float(sys.argv[2]), "steps": steps}))
"""

RESIDENT = r"""
import collections, json, re, sys
from langtrim.runtime import Encoder
encoder = Encoder(sys.argv[1], threads=1)
encoder.embed(["query: The quick brown fox jumps over the lazy dog."])
kinds = [("onnxruntime library", r"onnxruntime"), ("tokenizers library", r"tokenizers"),
         ("numpy + OpenBLAS", r"numpy|openblas|gfortran|quadmath|_multiarray|_umath"),
         ("OpenSSL (hashlib)", r"libcrypto|libssl|_hashlib"), ("Python", r"python"),
         ("the model's weights file (mapped)", r"model\.onnx")]
resident, kind = collections.Counter(), None
with open("/proc/self/smaps") as smaps:
    for line in smaps:
        fields = line.split()
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
            path = fields[5] if len(fields) > 5 and not fields[5].startswith("[stack") else ""
            kind = "anonymous (heap: Python objects, tokenizer, pre-packed weights, arena)" if (
                not path or path.startswith("[")) else next(
                (name for name, pattern in kinds if re.search(pattern, path.rsplit("/", 1)[-1])), "other files")
        elif fields[0] == "Rss:":
            resident[kind] += int(fields[1]) * 1024 / 1e6
print(json.dumps(dict(resident.most_common())))
"""

TOKENIZER_TRIE = r"""
import json, sys
def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:")) * 1024 / 1e6
import tokenizers
before = rss()
tokenizer = tokenizers.Tokenizer.from_file(sys.argv[1])
grown = rss() - before
model = json.load(open(sys.argv[1]))["model"]
pieces = [piece for piece, _ in model["vocab"]] if model["type"] == "Unigram" else list(model["vocab"])
prefixes = {piece.encode()[:end] for piece in pieces for end in range(1, len(piece.encode()) + 1)}
print(json.dumps({"model": model["type"], "pieces": len(pieces), "trie_nodes": len(prefixes),
                  "loaded_mb": grown, "bytes_per_node": grown * 1e6 / len(prefixes)}))
"""

SESSION = r"""
import json, sys, time
def mb(field):
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith(field + ":")) * 1024 / 1e6
import numpy as np, onnxruntime as ort
setting = json.loads(sys.argv[2])
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.log_severity_level = 3
if setting.get("arena") is False:
    options.enable_cpu_mem_arena = False
if setting.get("prepacking") is False:
    options.add_session_config_entry("session.disable_prepacking", "1")
if setting.get("level"):
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, setting["level"])
before, cpu = mb("VmRSS"), time.process_time()
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"],
                               disabled_optimizers=setting.get("disabled", []))
session_cpu, after_load = time.process_time() - cpu, mb("VmHWM")
names = [i.name for i in session.get_inputs()]
def feed(batch, length):
    ids = np.random.default_rng(0).integers(5, 20000, size=(batch, length))
    ids[:, 0], ids[:, -1] = 0, 2
    inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    return {name: inputs[name] for name in names}
session.run(None, feed(1, 16))
after_first = mb("VmHWM")
def cpu_ms(batch, length, times):
    inputs, spent = feed(batch, length), []
    session.run(None, inputs)
    for _ in range(times):
        start = time.process_time()
        session.run(None, inputs)
        spent.append(time.process_time() - start)
    return sorted(spent)[len(spent) // 2] * 1e3
figures = {"b1_16_cpu_ms": cpu_ms(1, 16, 30), "b1_128_cpu_ms": cpu_ms(1, 128, 10), "b32_40_cpu_ms": cpu_ms(32, 40, 3)}
print(json.dumps({"imports_mb": before, "session_cpu_ms": session_cpu * 1e3, "peak_after_load_mb": after_load,
                  "peak_after_first_mb": after_first, "peak_after_batches_mb": mb("VmHWM"), **figures}))
"""

OPERATORS = r"""
import collections, glob, json, os, sys
import numpy as np, onnxruntime as ort
folder, setting = sys.argv[3], json.loads(sys.argv[2])
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.log_severity_level = 3
options.enable_profiling = True
options.profile_file_prefix = os.path.join(folder, "profile")
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"],
                               disabled_optimizers=setting.get("disabled", []))
names = [i.name for i in session.get_inputs()]
batch, length = setting["shape"]
ids = np.random.default_rng(0).integers(5, 20000, size=(batch, length))
inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
for _ in range(4):
    session.run(None, {name: inputs[name] for name in names})
events = json.load(open(session.end_profiling()))
by_type = collections.Counter()
for event in events:
    if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
        by_type[event["args"]["op_name"]] += event["dur"]
runs = sorted(e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
total = sum(by_type.values())
print(json.dumps({"run_ms": runs[len(runs) // 2] / 1e3,
                  "shares": {op: time / total for op, time in by_type.most_common(6)}}))
"""

SKIP_LAYER_NORM = r"""
import json, statistics, time
import numpy as np, onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
hidden, chain = 384, 24
rng = np.random.default_rng(0)
weights = [numpy_helper.from_array(rng.random(hidden, dtype=np.float32), name) for name in ("g", "b", "bias")]
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, hidden])
skip = helper.make_tensor_value_info("s", TensorProto.FLOAT, [None, None, hidden])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
def graph(fused):
    nodes, current = [], "x"
    for i in range(chain):
        if fused:
            nodes.append(helper.make_node("SkipLayerNormalization", [current, "s", "g", "b", "bias"], [f"o{i}"],
                                          domain="com.microsoft", epsilon=1e-12))
        else:
            nodes += [helper.make_node("Add", [current, "s"], [f"a{i}"]),
                      helper.make_node("Add", [f"a{i}", "bias"], [f"c{i}"]),
                      helper.make_node("LayerNormalization", [f"c{i}", "g", "b"], [f"o{i}"], axis=-1, epsilon=1e-12)]
        current = f"o{i}"
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(helper.make_graph(nodes, "chain", [x, skip], [y], weights), opset_imports=opsets)
result = {}
for name, fused in (("SkipLayerNormalization", True), ("Add + Add + LayerNormalization", False)):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(graph(fused).SerializeToString(), options, providers=["CPUExecutionProvider"])
    for batch, length in ((1, 128), (32, 40)):
        inputs = {"x": rng.random((batch, length, hidden), dtype=np.float32),
                  "s": rng.random((batch, length, hidden), dtype=np.float32)}
        session.run(None, inputs)
        spent = []
        for _ in range(20):
            start = time.process_time()
            session.run(None, inputs)
            spent.append(time.process_time() - start)
        result[f"{name}, {batch}x{length}"] = statistics.median(spent) / chain * 1e3
print(json.dumps(result))
"""

WEIGHT_TRAFFIC = r"""
import json, statistics, sys, time
import numpy as np, onnx, onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
def median_ms(session, inputs, times):
    session.run(None, inputs)
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        session.run(None, inputs)
        spent.append(time.perf_counter() - start)
    return statistics.median(spent) * 1e3
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.log_severity_level = 3
setting = json.loads(sys.argv[2])
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"],
                               disabled_optimizers=setting["disabled"])
names = [i.name for i in session.get_inputs()]
by_length = {}
for length in (2, 4, 8, 16, 32):
    ids = np.random.default_rng(0).integers(5, 20000, size=(1, length))
    ids[:, 0], ids[:, -1] = 0, 2
    inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    by_length[length] = median_ms(session, {name: inputs[name] for name in names}, 100)
graph = onnx.load(sys.argv[1], load_external_data=False).graph
int8_bytes = sum(int(np.prod(t.dims)) for t in graph.initializer
                 if t.data_type == TensorProto.INT8 and len(t.dims) == 2 and "word_embeddings" not in t.name)
side, rng = 768, np.random.default_rng(0)
chains = {}
for count in (12, 48, 96):
    nodes, current = [], "x"
    weights = [numpy_helper.from_array(np.array(0.02, np.float32), "scale"),
               numpy_helper.from_array(np.array(128, np.uint8), "zero")]
    for i in range(count):
        weights += [numpy_helper.from_array(rng.integers(-63, 64, (side, side)).astype(np.int8), f"w{i}"),
                    numpy_helper.from_array(np.full(side, 0.01, np.float32), f"ws{i}")]
        nodes += [helper.make_node("QuantizeLinear", [current, "scale", "zero"], [f"q{i}"]),
                  helper.make_node("MatMulIntegerToFloat", [f"q{i}", f"w{i}", "scale", f"ws{i}", "zero"],
                                   [f"y{i}"], domain="com.microsoft")]
        current = f"y{i}"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, side])
    y = helper.make_tensor_value_info(current, TensorProto.FLOAT, None)
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(helper.make_graph(nodes, "chain", [x], [y], weights), opset_imports=opsets)
    chain = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    ms = median_ms(chain, {"x": rng.standard_normal((2, side), dtype=np.float32)}, 40)
    megabytes = count * side * side / 1e6
    chains[f"{megabytes:.0f}"] = {"ms": ms, "gb_per_s": megabytes / ms}
print(json.dumps({"batch1_ms_by_tokens": by_length, "int8_weight_mb": int8_bytes / 1e6, "chains": chains}))
"""

ENCODER_OPTIONS = {"disabled": ["SkipLayerNormFusion"]}  # what runtime/encoder.py sets
SETTINGS = {
    "Encoder's options (SkipLayerNormFusion off)": ENCODER_OPTIONS,
    "onnxruntime defaults": {},
    "Encoder's + CPU memory arena off": {**ENCODER_OPTIONS, "arena": False},
    "Encoder's + pre-packing off": {**ENCODER_OPTIONS, "prepacking": False},
    "Encoder's + optimisation level basic": {**ENCODER_OPTIONS, "level": "ORT_ENABLE_BASIC"},
    "Encoder's + optimisation level extended": {**ENCODER_OPTIONS, "level": "ORT_ENABLE_EXTENDED"},
}
_MAIN_MODEL = "bundle model.onnx (+ model.onnx.data)"
_ONE_FILE = "the same, weights inside model.onnx (one file)"


def _fresh(code: str, *args: str) -> dict:
    spawned = time.time()
    completed = subprocess.run(
        [sys.executable, "-c", code, *args, repr(spawned)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(completed.stderr[-2000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


def step_profile(bundle: Path, rounds: int) -> list[dict]:
    """Per step: wall and CPU milliseconds since the previous step, RSS and peak RSS after it (medians)."""
    runs = [_fresh(STEPS, str(bundle)) for _ in range(rounds)]
    per_step: list[dict[str, list[float]]] = []
    for run in runs:
        wall, cpu = run["spawned"], 0.0  # the clock starts when the process is spawned
        for index, (_, step_wall, step_cpu, rss, peak) in enumerate(run["steps"]):
            if len(per_step) <= index:
                per_step.append({"wall_ms": [], "cpu_ms": [], "rss_mb": [], "peak_rss_mb": []})
            figures = {"wall_ms": (step_wall - wall) * 1e3, "cpu_ms": (step_cpu - cpu) * 1e3}
            for key, value in {**figures, "rss_mb": rss, "peak_rss_mb": peak}.items():
                per_step[index][key].append(value)
            wall, cpu = step_wall, step_cpu
    rows = [
        {"step": name, **{key: statistics.median(values) for key, values in figures.items()}}
        for (name, *_), figures in zip(runs[0]["steps"], per_step, strict=True)
    ]
    last = [run["steps"][-1] for run in runs]
    rows.append(
        {
            "step": "total: cold start",
            "wall_ms": statistics.median(
                (s[1] - r["spawned"]) * 1e3 for s, r in zip(last, runs, strict=True)
            ),
            "cpu_ms": statistics.median(s[2] * 1e3 for s in last),
            "rss_mb": statistics.median(s[3] for s in last),
            "peak_rss_mb": statistics.median(s[4] for s in last),
        }
    )
    return rows


def session_profile(models: dict[str, Path], rounds: int) -> list[dict]:
    """Every option on the bundle's model, Encoder's options and the defaults on the others; rounds go over
    every case in turn so that a busy spell hits all alike."""
    cases = [
        (label, path, name, setting)
        for label, path in models.items()
        for name, setting in SETTINGS.items()
        if label == _MAIN_MODEL or name in list(SETTINGS)[:2]
    ]
    raw: dict[tuple[str, str], list[dict]] = {(label, name): [] for label, _, name, _ in cases}
    for _ in range(rounds):
        for label, path, name, setting in cases:
            raw[(label, name)].append(_fresh(SESSION, str(path), json.dumps(setting)))
    return [
        {"model": label, "setting": name, **{key: statistics.median(r[key] for r in runs) for key in runs[0]}}
        for (label, name), runs in raw.items()
    ]


def operator_profile(models: dict[str, Path], folder: Path) -> list[dict]:
    rows = []
    for label, path in models.items():
        for name, setting in list(SETTINGS.items())[:2]:
            for shape in ((1, 128), (32, 40)):
                result = _fresh(OPERATORS, str(path), json.dumps({**setting, "shape": shape}), str(folder))
                rows.append({"model": label, "setting": name, "shape": f"{shape[0]}x{shape[1]}", **result})
    return rows


def single_file_copy(model: Path, folder: Path) -> Path:
    """`model` with its external data moved into the protobuf."""
    import onnx

    out = folder / "model.onnx"
    onnx.save_model(onnx.load(str(model)), str(out))
    return out


def markdown(result: dict) -> str:
    steps = [
        "| step | wall, ms | CPU, ms | RSS after, MB | peak RSS after, MB |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r['step']} | {r['wall_ms']:.1f} | {r['cpu_ms']:.1f} | {r['rss_mb']:.1f} | {r['peak_rss_mb']:.1f} |"
            for r in result["steps"]
        ),
    ]
    resident = ["| mapping | resident, MB |", "|---|---:|"] + [
        f"| {kind} | {mb:.1f} |" for kind, mb in result["resident"].items()
    ]
    trie = result["tokenizer_trie"]
    sessions = [
        "| model | options | session CPU, ms | peak RSS after load, MB | after 1st request | after batches "
        "| 16 tokens, CPU ms | 128 tokens, CPU ms | 32 x 40 tokens, CPU ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['model']} | {r['setting']} | {r['session_cpu_ms']:.0f} | {r['peak_after_load_mb']:.1f} | "
            f"{r['peak_after_first_mb']:.1f} | {r['peak_after_batches_mb']:.1f} | {r['b1_16_cpu_ms']:.2f} | "
            f"{r['b1_128_cpu_ms']:.1f} | {r['b32_40_cpu_ms']:.0f} |"
            for r in result["sessions"]
        ),
    ]
    operators = [
        "| model | options | input | run, ms | kernel time by operator |",
        "|---|---|---|---:|---|",
        *(
            f"| {r['model']} | {r['setting']} | {r['shape']} | {r['run_ms']:.1f} | "
            + ", ".join(f"{op} {share:.0%}" for op, share in r["shares"].items())
            + " |"
            for r in result["operators"]
        ),
    ]
    skip = ["| kernel, input | ms per operator (CPU) |", "|---|---:|"] + [
        f"| {name} | {value:.3f} |" for name, value in result["skip_layer_norm"].items()
    ]
    traffic = result["weight_traffic"]
    lengths = traffic["batch1_ms_by_tokens"]
    weights = [
        "| tokens (batch 1) | " + " | ".join(lengths) + " |",
        "|---|" + "---:|" * len(lengths),
        "| request, ms | " + " | ".join(f"{ms:.2f}" for ms in lengths.values()) + " |",
    ]
    chains = ["| int8 weights in the chain, MB | ms (2 rows) | GB/s |", "|---:|---:|---:|"] + [
        f"| {mb} | {c['ms']:.2f} | {c['gb_per_s']:.1f} |" for mb, c in traffic["chains"].items()
    ]
    parts = [
        f"# Runtime profile: {result['bundle']}",
        f"`{result['command']}`; {result['machine']['cpu']}, {result['machine']['logical_cores']} cores; "
        f"onnxruntime {result['versions']['onnxruntime']}. Medians of {result['rounds']} fresh processes, 1 "
        "thread. CPU time is the process's (all threads), steadier than wall time on a shared machine.",
        "## Encoder(bundle) step by step",
        "\n".join(steps),
        "## Resident memory after the first request, by mapping (/proc/self/smaps, one process)",
        "\n".join(resident),
        f"The tokenizer alone ({trie['model']}, {trie['pieces']:,} pieces) grows a process by "
        f"{trie['loaded_mb']:.1f} MB: {trie['bytes_per_node']:.0f} bytes per node of the byte trie its pieces "
        f"make ({trie['trie_nodes']:,} nodes, one per distinct prefix), tokenizers' Unigram model builds with "
        "a std HashMap in every node.",
        "## onnxruntime session options",
        "\n".join(sessions),
        f"RSS after importing numpy and onnxruntime, before the session: {result['sessions'][0]['imports_mb']:.1f} MB.",
        "## Where a request's time goes (onnxruntime's profiler)",
        "\n".join(operators),
        "## SkipLayerNormalization against Add + Add + LayerNormalization (hidden 384, chain of 24)",
        "\n".join(skip),
        "## Weight traffic: what a short text pays before its tokens count",
        "\n".join(weights),
        f"The bundle's int8 matrices (every MatMul's weights, word embeddings not counted): "
        f"{traffic['int8_weight_mb']:.1f} MB, read once per request whatever its length.",
        "\n".join(chains),
    ]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bundle", type=Path, default=BUILT / "en-fr-de-int8", help="a bundle (pack's defaults)"
    )
    parser.add_argument(
        "--fused-bundle",
        type=Path,
        default=BUILT / "en-fr-de-int8-fused",
        help="the same packed --optimize fused",
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from langtrim.packager.bench.measure import evict_from_page_cache
    from langtrim.packager.bench.results import machine, versions

    for bundle in (args.bundle, args.fused_bundle):  # read in by the first step's load, as after a deployment
        if bundle and bundle.is_dir():
            evict_from_page_cache(bundle)
    with tempfile.TemporaryDirectory(prefix="langtrim-profile-") as name:
        folder = Path(name)
        models = {
            _MAIN_MODEL: args.bundle / "model.onnx",
            _ONE_FILE: single_file_copy(args.bundle / "model.onnx", folder),
        }
        if args.fused_bundle and args.fused_bundle.is_dir():
            models["bundle packed --optimize fused"] = args.fused_bundle / "model.onnx"
        result = {
            "command": " ".join(["python benchmarks/runtime_profile.py", *sys.argv[1:]]),
            "bundle": str(args.bundle),
            "rounds": args.rounds,
            "machine": machine(),
            "versions": versions(),
            "steps": step_profile(args.bundle, args.rounds),
            "resident": _fresh(RESIDENT, str(args.bundle)),
            "tokenizer_trie": _fresh(TOKENIZER_TRIE, str(args.bundle / "tokenizer.json")),
            "sessions": session_profile(models, args.rounds),
            "operators": operator_profile({k: v for k, v in models.items() if k != _ONE_FILE}, folder),
            "skip_layer_norm": _fresh(SKIP_LAYER_NORM),
            "weight_traffic": _fresh(
                WEIGHT_TRAFFIC, str(args.bundle / "model.onnx"), json.dumps(ENCODER_OPTIONS)
            ),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runtime_profile.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (args.out / "runtime_profile.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
