"""Make the served ONNX variant: optimize the fp32 export, then quantize its weights.

Order: optimize first, then quantize. onnxruntime's transformer fusions (Attention, SkipLayerNormalization,
BiasGelu) match float subgraphs; quantizing first replaces the MatMuls they look for with
DynamicQuantizeLinear/MatMulInteger or MatMulNBits and nothing fuses. Optimizing first also hands the
quantizer constant-folded weights. ("basic" is enough in practice: onnxruntime repeats its own fusions when
it loads a graph, and on the trimmed e5 a fused int8 graph (QAttention) ran slower than an unfused one; see
benchmarks/quantization_choices.py.)

The fused level keeps the embedding lookup a plain `Gather` (onnxruntime's EmbedLayerNormalization fusion is
off), so the word embedding is one node we can leave in float or quantize per row. Left on, the quantizer
would see EmbedLayerNormalization and quantize all three embedding tables and the LayerNorm gamma/beta to
uint8 with one scale each.

Modes: "int8" (the default) is ours (`exact_int8.py`): int8 weights per output column and activation
scales that never mix texts (constant ones fixed at pack time from real sentences, per token for the FFN's
second layer), so a text's vector is bit-identical alone or in any batch, at any thread count.
"int8-dynamic" is onnxruntime's dynamic quantization (uint8 activations with one scale per tensor per run):
as fast, slightly lower cosine, and a text's vector depends on what it runs with. "int8-block" and "int4"
are weight-only MatMulNBits with a scale per block of weights and activations quantized per block at run
time: closest to fp32, 2-3x slower. Word-embedding choices: "fp32" leaves the table in
float; "per-tensor" is onnxruntime's own Gather quantization (one uint8 scale and zero point); "per-row" is
ours, since neither `quantize_dynamic` (Gather is per tensor only) nor `MatMulNBitsQuantizer`
(GatherBlockQuantized, 4-bit, power-of-two blocks) offers int8 per row: the table becomes int8
[vocab, hidden] plus one float scale per row, looked up by two standard `Gather`s and multiplied back.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from langtrim.packager.errors import UnsupportedModelError
from langtrim.packager.models.families import ARCHITECTURES
from langtrim.packager.pack.default_session import rewrite_for_default_sessions
from langtrim.packager.pack.exact_int8 import quantize_exact_int8
from langtrim.packager.pack.export import quiet_libraries
from langtrim.packager.pack.fewer_nodes import fewer_nodes
from langtrim.runtime.errors import UsageError

logger = logging.getLogger(__name__)

QuantizeMode = Literal["none", "int8", "int8-dynamic", "int8-block", "int4"]
EmbeddingMode = Literal["fp32", "per-tensor", "per-row"]
OptimizeLevel = Literal["none", "basic", "fused"]
QUANTIZE_MODES: tuple[str, ...] = ("none", "int8", "int8-dynamic", "int8-block", "int4")
EMBEDDING_MODES: tuple[str, ...] = ("fp32", "per-tensor", "per-row")
OPTIMIZE_LEVELS: tuple[str, ...] = ("none", "basic", "fused")

# Weight-only modes (MatMulNBits): (bits, block size). Symmetric blocks along the input axis, one float scale
# per block; 4 bits needs small blocks to keep quality, 8 bits does well with onnxruntime's default 128.
_NBITS = {"int8-block": (8, 128), "int4": (4, 32)}
# MatMulNBits accuracy level 4: activations are quantized to int8 per block at run time and the product runs
# in int8, faster than level 0 (float compute) at the same cosine to 4 decimals on the trimmed e5.
_NBITS_ACCURACY_LEVEL = 4


@dataclass(frozen=True)
class QuantizeResult:
    onnx_path: Path
    mode: str  # one of QUANTIZE_MODES
    embeddings: str  # one of EMBEDDING_MODES
    word_embedding: str | None  # the initializer recognised as the word-embedding table
    file_bytes: int


@dataclass(frozen=True)
class OptimizeResult:
    onnx_path: Path
    level: str  # one of OPTIMIZE_LEVELS
    # e.g. {"Attention": 12, "SkipLayerNormalization": 24}; empty unless the level is "fused"
    fused_operators: Mapping[str, int]
    file_bytes: int


@dataclass(frozen=True)
class VariantSettings:
    """What `langtrim pack` exposes as --quantize, --quantize-embeddings and --optimize."""

    quantize: QuantizeMode = "int8"
    embeddings: EmbeddingMode = "per-row"
    optimize: OptimizeLevel = "basic"

    def __post_init__(self) -> None:
        for option, value, allowed in (
            ("--quantize", self.quantize, QUANTIZE_MODES),
            ("--quantize-embeddings", self.embeddings, EMBEDDING_MODES),
            ("--optimize", self.optimize, OPTIMIZE_LEVELS),
        ):
            if value not in allowed:
                raise UsageError(f"{option} {value!r} is not one of {', '.join(allowed)}")

    @property
    def name(self) -> str:
        """A short label for tables and manifests, e.g. "int8/emb-per-row/fused"."""
        return f"{self.quantize}/emb-{self.embeddings}/{self.optimize}"


DEFAULT_VARIANT = VariantSettings()


@dataclass(frozen=True)
class VariantResult:
    onnx_path: Path
    settings: VariantSettings
    fused_operators: Mapping[str, int] = field(default_factory=dict)
    file_bytes: int = 0


@contextmanager
def _staging(dst: Path) -> Iterator[Path]:
    """A temporary directory beside `dst` for intermediate graphs, removed whatever happens."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _save(model: Any, path: Path) -> None:
    """Save a ModelProto as the graph in `path` and every weight of 1 kB or more in `<name>.data` beside it.

    Always, not only past protobuf's 2 GB limit: onnxruntime maps external data into memory instead of
    parsing it out of the protobuf and copying it, which lowers a served bundle's peak RSS and session start
    (benchmarks/runtime_profile.py).
    """
    import onnx

    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=f"{path.name}.data",
        size_threshold=1024,
    )


def _publish(staged: Path, dst: Path) -> int:
    """Move a finished graph and its external data into place; return the bytes written.

    The graph names its data file, so `staged` must already carry `dst`'s file name."""
    import onnx

    assert staged.name == dst.name, "the graph's external data location would point at the wrong file"
    onnx.checker.check_model(str(staged))
    data = staged.with_name(f"{staged.name}.data")
    os.replace(staged, dst)
    dst_data = dst.with_name(f"{dst.name}.data")
    if data.exists():
        os.replace(data, dst_data)
    elif dst_data.exists():
        dst_data.unlink()
    return onnx_bytes(dst)


def onnx_bytes(path: Path) -> int:
    """Bytes of a graph `_save` wrote: the graph file plus its weights in `<name>.data`, if any."""
    data = path.with_name(f"{path.name}.data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def _find_word_embedding(model: Any) -> tuple[Any, str] | None:
    """The Gather node that looks up the word embeddings and its table's initializer name, or None.

    The word embedding is the Gather on a 2-D float initializer indexed by the graph input `input_ids`; if no
    Gather reads `input_ids` directly, the one on the largest 2-D table (the vocabulary is the longest axis).
    """
    import onnx

    tables = {
        tensor.name: tensor
        for tensor in model.graph.initializer
        if len(tensor.dims) == 2 and tensor.data_type == onnx.TensorProto.FLOAT
    }
    gathers = [node for node in model.graph.node if node.op_type == "Gather" and node.input[0] in tables]
    if not gathers:
        return None
    direct = [node for node in gathers if node.input[1] == "input_ids"]
    node = max(direct or gathers, key=lambda n: tables[n.input[0]].dims[0])
    return node, node.input[0]


def _name_nodes(model: Any) -> None:
    """Give every node a unique name: onnxruntime's quantizer selects and excludes nodes by name."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)


def _quantize_rows(model: Any, gather_name: str, table_name: str) -> None:
    """Replace the word-embedding table with int8 rows and one float scale per row (symmetric, in place).

    Gather(table, ids) becomes Gather(q, ids) -> Cast(float) -> Mul(Gather(scales, ids)); the scales are
    [vocab, 1] so they broadcast over the hidden axis. Each row uses its own max |value| / 127.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    table = next(tensor for tensor in graph.initializer if tensor.name == table_name)
    weights = numpy_helper.to_array(table).astype(np.float32)  # [vocab, hidden]
    scales = np.abs(weights).max(axis=1, keepdims=True) / 127.0
    scales[scales == 0] = 1.0
    quantized = np.clip(np.rint(weights / scales), -127, 127).astype(np.int8)

    node = next(n for n in graph.node if n.name == gather_name)
    ids, output = node.input[1], node.output[0]
    axis = [a for a in node.attribute if a.name == "axis"]
    q_name, scale_name = f"{table_name}_int8_rows", f"{table_name}_row_scales"
    new_nodes = [
        helper.make_node("Gather", [q_name, ids], [f"{output}_int8"], name=f"{gather_name}_int8", axis=0),
        helper.make_node("Cast", [f"{output}_int8"], [f"{output}_cast"], name=f"{gather_name}_cast", to=1),
        helper.make_node(
            "Gather", [scale_name, ids], [f"{output}_scale"], name=f"{gather_name}_scale", axis=0
        ),
        helper.make_node(
            "Mul", [f"{output}_cast", f"{output}_scale"], [output], name=f"{gather_name}_dequantize"
        ),
    ]
    if axis and helper.get_attribute_value(axis[0]) != 0:
        raise UnsupportedModelError(
            f"the word-embedding Gather {gather_name!r} is not on axis 0: cannot quantize it per row"
        )
    position = list(graph.node).index(node)
    graph.node.remove(node)
    for offset, new_node in enumerate(new_nodes):
        graph.node.insert(position + offset, new_node)
    graph.initializer.extend(
        [
            numpy_helper.from_array(quantized, q_name),
            numpy_helper.from_array(scales.astype(np.float32), scale_name),
        ]
    )
    if not any(table_name in n.input for n in graph.node):
        graph.initializer.remove(table)
        for value in [v for v in graph.input if v.name == table_name]:
            graph.input.remove(value)
    else:
        logger.info("%s is also used by other nodes: its float copy stays in the graph", table_name)


def _nbits_quantizer() -> Any:
    """onnxruntime's MatMulNBitsQuantizer class, which imports `onnx_ir`, a package onnxruntime does not require."""
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ModuleNotFoundError as error:
        raise UsageError(
            f"--quantize int8-block and int4 need the {error.name!r} package, which onnxruntime does not install: pip install onnx-ir, or use --quantize int8"
        ) from error
    return MatMulNBitsQuantizer


def quantize_onnx(
    src: Path,
    dst: Path,
    *,
    mode: QuantizeMode = "int8",
    embeddings: EmbeddingMode = "per-row",
    per_channel: bool = True,
    reduce_range: bool = True,
    calibration_ids: Sequence[np.ndarray] = (),
) -> QuantizeResult:
    """Quantize `src`'s weights into `dst`.

    mode "int8": every MatMul on a constant weight runs as MatMulIntegerToFloat with activation scales that
    depend on no other text (`exact_int8.py`); `calibration_ids` are the token ids of real sentences its
    constant scales are measured on (`calibration.calibration_ids`); `per_channel` and `reduce_range` do not
    apply (weights are always per column, 7 bits). A fused Attention stays float in this mode.
    mode "int8-dynamic" (onnxruntime's dynamic quantization): every MatMul (and fused Attention) with a constant weight
    runs as MatMulInteger/QAttention, weights int8 with one scale per output column (`per_channel`) and
    activations uint8 with one scale per tensor, computed at run time. `reduce_range` stores 7-bit weights so
    the u8*s8 products cannot saturate on x86 CPUs without VNNI, where onnxruntime uses VPMADDUBSW: the bundle
    then gives the same embeddings on any CPU, at a cost of ~3e-4 mean cosine where VNNI exists.
    mode "int8-block" / "int4": weight-only MatMulNBits, 8 bits in blocks of 128 / 4 bits in blocks of 32,
    each block with its own scale; activations are quantized per block at run time (accuracy level 4), which
    is finer than int8's one scale per tensor, so quality is higher and speed lower. A fused Attention's
    packed QKV weight stays float in these modes, as MatMulNBits does not cover it.
    mode "none": MatMuls stay float. The word embedding is quantized as `embeddings` says, independently of
    the mode; position and token-type tables stay float (they are small).
    """
    import onnx

    if mode not in QUANTIZE_MODES:
        raise UsageError(f"--quantize {mode!r} is not one of {', '.join(QUANTIZE_MODES)}")
    if embeddings not in EMBEDDING_MODES:
        raise UsageError(f"--quantize-embeddings {embeddings!r} is not one of {', '.join(EMBEDDING_MODES)}")
    src, dst = Path(src), Path(dst)
    model = onnx.load(str(src))
    _name_nodes(model)
    found = _find_word_embedding(model)
    if embeddings != "fp32" and found is None:
        raise UnsupportedModelError(
            f"{str(src)!r} has no Gather on a word-embedding table (an EmbedLayerNormalization fusion hides it): "
            "quantize the unfused export, or pass --quantize-embeddings fp32"
        )
    word_node, table_name = found if found else (None, None)

    with _staging(dst) as staging, quiet_libraries():
        if mode == "int8":
            model = quantize_exact_int8(fewer_nodes(model), calibration_ids, staging)
        op_types = (["MatMul", "Attention"] if mode == "int8-dynamic" else []) + (
            ["Gather"] if embeddings == "per-tensor" else []
        )
        if op_types:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            other_gathers = [n.name for n in model.graph.node if n.op_type == "Gather" and n is not word_node]
            quantize_dynamic(
                model,
                staging / "dynamic.onnx",
                op_types_to_quantize=op_types,
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=other_gathers,
                # onnx's shape inference cannot type the outputs of fused com.microsoft ops (Attention,
                # SkipLayerNormalization); every tensor here is float32.
                extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            model = onnx.load(str(staging / "dynamic.onnx"))
        if mode in _NBITS:
            bits, block_size = _NBITS[mode]
            quantizer = _nbits_quantizer()(
                model,
                bits=bits,
                block_size=block_size,
                is_symmetric=True,
                accuracy_level=_NBITS_ACCURACY_LEVEL,
                op_types_to_quantize=("MatMul",),
            )
            quantizer.process()
            model = quantizer.model.model
        if embeddings == "per-row" and word_node is not None and table_name is not None:
            _quantize_rows(model, word_node.name, table_name)
        _save(model, staging / dst.name)
        file_bytes = _publish(staging / dst.name, dst)
    logger.info(
        "quantized %s -> %s (%s, embeddings %s, %.1f MB)", src, dst, mode, embeddings, file_bytes / 1e6
    )
    return QuantizeResult(
        onnx_path=dst, mode=mode, embeddings=embeddings, word_embedding=table_name, file_bytes=file_bytes
    )


def optimize_onnx(
    src: Path,
    dst: Path,
    *,
    level: OptimizeLevel = "fused",
    model_type: str = "bert",
    num_heads: int = 0,
    hidden_size: int = 0,
) -> OptimizeResult:
    """Write `src` optimized for CPU to `dst`.

    "basic": onnxruntime's basic graph optimizations only (constant folding, redundant-node removal), which
    are hardware-independent and so safe to store; "fused": those plus onnxruntime's transformer fusions
    (Attention, SkipLayerNormalization, BiasGelu; EmbedLayerNormalization off, see the module docstring);
    "none": a copy. `model_type` is onnxruntime's fusion family ("bert" covers BERT, RoBERTa, XLM-R and
    DistilBERT; see `models.families`); num_heads and hidden_size of 0 are read from the graph.
    """
    if level not in OPTIMIZE_LEVELS:
        raise UsageError(f"--optimize {level!r} is not one of {', '.join(OPTIMIZE_LEVELS)}")
    src, dst = Path(src), Path(dst)
    fused: dict[str, int] = {}
    with _staging(dst) as staging, quiet_libraries():
        staged = staging / dst.name
        if level == "none":
            import onnx

            _save(onnx.load(str(src)), staged)
        else:
            from onnxruntime.transformers.fusion_options import FusionOptions
            from onnxruntime.transformers.optimizer import optimize_model

            options = FusionOptions(model_type)
            options.enable_embed_layer_norm = False
            optimized = optimize_model(
                str(src),
                model_type=model_type,
                num_heads=num_heads,
                hidden_size=hidden_size,
                optimization_options=options,
                opt_level=1,
                only_onnxruntime=level == "basic",
            )
            if level == "fused":
                fused = {
                    op: count for op, count in optimized.get_fused_operator_statistics().items() if count
                }
                if not fused.get("Attention"):
                    logger.warning("onnxruntime fused no Attention in %s: the graph runs unfused", src)
            _save(optimized.model, staged)
        file_bytes = _publish(staged, dst)
    logger.info("optimized %s -> %s (%s) %s", src, dst, level, fused)
    return OptimizeResult(onnx_path=dst, level=level, fused_operators=fused, file_bytes=file_bytes)


def build_onnx_variant(
    src: Path,
    dst: Path,
    settings: VariantSettings = DEFAULT_VARIANT,
    *,
    config: Mapping[str, Any] | None = None,
    calibration_ids: Sequence[np.ndarray] = (),
) -> VariantResult:
    """Optimize, then quantize, the fp32 export `src` into `dst` as `settings` say: the one call `pack` makes.

    Last, the residual Adds become Sums (`default_session.py`), so that onnxruntime with default options
    gives the Encoder's vectors.

    `config` is the model's config.json contents, needed for --optimize fused (model type, heads, hidden size).
    `calibration_ids` are token ids of real sentences, needed by --quantize int8 (see `calibration.py`).
    """
    src, dst = Path(src), Path(dst)
    if settings.optimize == "fused":
        known = ARCHITECTURES.get(str((config or {}).get("model_type")))
        if known is None:
            raise UnsupportedModelError(
                f"onnxruntime's fusions do not know model_type {(config or {}).get('model_type')!r}: "
                "use --optimize basic or none"
            )
        model_type, num_heads, hidden_size = known.fusion_settings(config or {})
    else:
        model_type, num_heads, hidden_size = "bert", 0, 0
    quantizing = settings.quantize != "none" or settings.embeddings != "fp32"
    with _staging(dst) as staging:
        optimized = optimize_onnx(
            src,
            staging / "optimized.onnx" if quantizing else dst,
            level=settings.optimize,
            model_type=model_type,
            num_heads=num_heads,
            hidden_size=hidden_size,
        )
        if quantizing:
            result = quantize_onnx(
                optimized.onnx_path,
                dst,
                mode=settings.quantize,
                embeddings=settings.embeddings,
                calibration_ids=calibration_ids,
            )
            file_bytes = result.file_bytes
        else:
            file_bytes = optimized.file_bytes
    rewrite_for_default_sessions(dst)  # last: a default onnxruntime session then runs what the Encoder runs
    return VariantResult(
        onnx_path=dst, settings=settings, fused_operators=optimized.fused_operators, file_bytes=file_bytes
    )
