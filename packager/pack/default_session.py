"""Write the graph so that onnxruntime with default options computes exactly what the Encoder computes.

The Encoder turns off onnxruntime's SkipLayerNormFusion when it loads a bundle (its CPU kernel is slower than
the Add + LayerNormalization it replaces, see `runtime/encoder.py`). Any other runtime (a plain
`InferenceSession(path)`, optimum, sentence-transformers, fastembed) applies it, and the fused kernel adds and
normalises in another order: on an int8 bundle the small difference moves activations across quantization
steps, and vectors drift (cosine down to 0.998 on real sentences). The fusion matches an `Add` that feeds a
`LayerNormalization`; the same residual sum written as a two-input `Sum` is computed by the same element-wise
loop, bit for bit, but no fusion matches it. So every session, whatever its options, runs the graph the Encoder
runs, at the Encoder's speed.

Only node types change, no weight: the graph file is rewritten and its external data file is left alone.
"""

import os
from pathlib import Path
from typing import Any

# Ops that start a layer norm: the op itself, or the ReduceMean of one written out (opset < 17), which
# onnxruntime fuses into LayerNormalization when it loads the graph, before SkipLayerNormFusion runs.
_LAYER_NORM_STARTS = ("LayerNormalization", "ReduceMean")


def residual_adds_as_sum(model: Any) -> int:
    """Turn each two-input ONNX `Add` that feeds a layer norm into `Sum`, in place; return how many changed.

    `Sum` broadcasts like `Add` (opset 8 on), so the rewrite is exact for any shapes.
    """
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Add" or node.domain not in ("", "ai.onnx") or len(node.input) != 2:
            continue
        readers = consumers.get(node.output[0], [])
        if any(
            reader.op_type in _LAYER_NORM_STARTS and reader.input[0] == node.output[0] for reader in readers
        ):
            node.op_type = "Sum"
            changed += 1
    return changed


def rewrite_for_default_sessions(onnx_path: Path) -> int:
    """Apply `residual_adds_as_sum` to the graph file `onnx_path` (its external data untouched); return the
    count. The file is replaced atomically and checked with onnx.checker."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    changed = residual_adds_as_sum(model)
    if changed:
        staged = onnx_path.with_name(f".{onnx_path.name}.sum")
        try:
            onnx.save_model(model, str(staged))
            os.replace(staged, onnx_path)
        finally:
            staged.unlink(missing_ok=True)
        onnx.checker.check_model(str(onnx_path))
    return changed
