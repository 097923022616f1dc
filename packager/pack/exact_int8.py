"""`--quantize int8`: int8 MatMuls whose activation scales never mix texts, so a text's vector is the same
alone, in any batch and at any thread count.

onnxruntime's dynamic quantization (`int8-dynamic`) gives each MatMul input one uint8 scale for the whole
tensor, computed at run time: a text's activations are rounded on a grid set by the most extreme text of its
run, and its vector changes with its company. Here each MatMul input gets a scale that depends on nothing but
the text's own token, or on nothing at all:

- inputs no wider than the MatMul's output (the attention's Q/K/V and output projections and the FFN's first
  layer, all fed by a LayerNorm or by the attention) get one constant scale, fixed at pack time from the
  largest |value| the float graph shows on real sentences (`calibration.py`); onnxruntime runs them as
  `MatMulIntegerToFloat` with the bias folded in, as fast as dynamic quantization;
- inputs wider than the output (the FFN's second layer, fed by GELU, whose rare huge values would crush a
  constant scale) get a scale per token, max |row| / 127, computed at run time: a `ReduceMax`/`ReduceMin`
  over the row and a blocked `QuantizeLinear` (opset 21), then the product is multiplied by the row's scale.

Activations are uint8 with zero point 128 (symmetric), weights int8 per output column in 7 bits (`reduce_range`)
so that x86 CPUs without VNNI, whose u8 x s8 instruction sums pairs into int16, cannot saturate: the bundle
gives the same vectors there. Integer products are exact and the float steps around them (LayerNorm, softmax,
pooling) work row by row, so nothing couples the rows of a batch. benchmarks/exact_quantization.py measures
this against the alternatives (onnxruntime's static QDQ, per-token scales everywhere, dynamic).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from langtrim.packager.pack.calibration import largest_values

OPSET = 21  # blocked QuantizeLinear (one scale per token row)
_WEIGHT_LEVELS = 63  # 7-bit weights: see the module docstring
_ZERO_POINT = 128
_TINY = 1e-12  # floor of a scale, for an all-zero row or tensor
# Above the deepest value of GELU (-0.16997 exact, -0.17004 with the tanh approximation), so that a GELU row's
# largest |value| is at most max(its largest value, this).
_GELU_FLOOR = 0.1701


def is_gelu_output(name: str, producers: dict[str, Any], depth: int = 3) -> bool:
    """Whether `name` is computed by a GELU: a fused Gelu node, or the Erf or Tanh of its formula within
    `depth` nodes back (the exported graph spells GELU as x * 0.5 * (1 + erf(x / sqrt 2)))."""
    node = producers.get(name)
    if node is None:
        return False
    if node.op_type in ("Gelu", "FastGelu", "BiasGelu", "Erf", "Tanh"):
        return True
    return depth > 0 and any(is_gelu_output(i, producers, depth - 1) for i in node.input)


def _weight_matmuls(graph: Any) -> list[Any]:
    """The MatMuls whose second input is a 2-D float initializer (a linear layer)."""
    import onnx

    weights = {
        t.name for t in graph.initializer if len(t.dims) == 2 and t.data_type == onnx.TensorProto.FLOAT
    }
    return [node for node in graph.node if node.op_type == "MatMul" and node.input[1] in weights]


def quantize_exact_int8(
    model: Any,
    calibration_ids: Sequence[np.ndarray],
    work: Path,
    *,
    per_token: Literal["wider", "all"] = "wider",
    weight_bits: Literal[7, 8] = 7,
) -> Any:
    """`model` (an onnx ModelProto, float, nodes named) with every linear-layer MatMul in int8 as the module
    docstring says; the model is changed in place and returned. `work` holds the calibration graph.

    `per_token` and `weight_bits` are the choices benchmarks/exact_quantization.py compares: per-token scales
    on every input ("all") or only on inputs wider than their output, and 8-bit weights for VNNI-only use."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    matmuls = _weight_matmuls(graph)
    shapes = {node.name: tuple(initializers[node.input[1]].dims) for node in matmuls}  # (in, out)
    per_token_inputs = {
        node.input[0] for node in matmuls if per_token == "all" or shapes[node.name][0] > shapes[node.name][1]
    }
    levels_max = _WEIGHT_LEVELS if weight_bits == 7 else 127
    constant = sorted({node.input[0] for node in matmuls} - per_token_inputs)
    ranges = largest_values(model, constant, calibration_ids, work)
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producers = {output: node for node in graph.node for output in node.output}

    added: list[Any] = []

    def constant_tensor(name: str, value: np.ndarray) -> str:
        added.append(numpy_helper.from_array(value, name))
        return name

    one = constant_tensor("int8_one", np.array(1.0, np.float32))
    zero_point = constant_tensor("int8_zero_point", np.array(_ZERO_POINT, np.uint8))
    tiny = constant_tensor("int8_tiny", np.array(_TINY, np.float32))
    gelu_floor = constant_tensor("int8_gelu_floor", np.array(_GELU_FLOOR, np.float32))
    inverse_levels = constant_tensor("int8_inverse_levels", np.array(1 / 127, np.float32))
    last_axis = constant_tensor("int8_last_axis", np.array([-1], np.int64))
    row_zero_points = "int8_row_zero_points"  # [batch, seq, 1] of 128, built once from the first row scales
    quantized: dict[str, tuple[str, str]] = {}  # input -> (uint8 tensor, its scale)
    removed: set[str] = set()
    done_weights: set[str] = set()
    rewritten: list[Any] = []

    def quantize_input(name: str, width: int) -> tuple[str, str]:
        if name in quantized:
            return quantized[name]
        prefix = f"int8_in{len(quantized)}"
        scale, values = f"{prefix}_scale", f"{prefix}_uint8"
        if name in ranges:
            constant_tensor(scale, np.array(max(ranges[name], _TINY) / 127, np.float32))
            rewritten.append(
                helper.make_node("QuantizeLinear", [name, scale, zero_point], [values], name=values)
            )
        else:
            rewritten.append(
                helper.make_node("ReduceMax", [name, last_axis], [f"{prefix}_max"], name=f"{prefix}_max")
            )
            if is_gelu_output(name, producers):
                bounds = [f"{prefix}_max", gelu_floor]
            else:
                rewritten.extend(
                    [
                        helper.make_node(
                            "ReduceMin", [name, last_axis], [f"{prefix}_min"], name=f"{prefix}_min"
                        ),
                        helper.make_node("Neg", [f"{prefix}_min"], [f"{prefix}_neg"], name=f"{prefix}_neg"),
                    ]
                )
                bounds = [f"{prefix}_max", f"{prefix}_neg", tiny]
            rewritten.extend(
                [
                    helper.make_node("Max", bounds, [f"{prefix}_abs"], name=f"{prefix}_abs"),
                    helper.make_node("Mul", [f"{prefix}_abs", inverse_levels], [scale], name=scale),
                ]
            )
            if not any(row_zero_points in node.output for node in rewritten):
                rewritten.extend(
                    [
                        helper.make_node("Shape", [scale], ["int8_row_shape"], name="int8_row_shape"),
                        helper.make_node(
                            "ConstantOfShape",
                            ["int8_row_shape"],
                            [row_zero_points],
                            name=row_zero_points,
                            value=numpy_helper.from_array(np.array([_ZERO_POINT], np.uint8)),
                        ),
                    ]
                )
            rewritten.append(
                helper.make_node(
                    "QuantizeLinear",
                    [name, scale, row_zero_points],
                    [values],
                    name=values,
                    axis=-1,
                    block_size=width,
                )
            )
        quantized[name] = (values, scale)
        return quantized[name]

    targets = {node.name for node in matmuls}
    for node in graph.node:
        if node.name in removed:
            continue
        if node.name not in targets:
            rewritten.append(node)
            continue
        source, weight_name = node.input
        weight = numpy_helper.to_array(initializers[weight_name]).astype(np.float32)  # [in, out]
        values, scale = quantize_input(source, weight.shape[0])
        q_weight, q_scales = f"{weight_name}_int8", f"{weight_name}_int8_scales"
        if weight_name not in done_weights:  # a weight two MatMuls share is stored once
            done_weights.add(weight_name)
            column_scales = np.abs(weight).max(axis=0) / levels_max
            column_scales[column_scales == 0] = 1.0
            levels = np.clip(np.rint(weight / column_scales), -levels_max, levels_max).astype(np.int8)
            constant_tensor(q_weight, levels)
            constant_tensor(q_scales, column_scales.astype(np.float32))
        output, bias = node.output[0], None
        after = consumers.get(output, [])
        if len(after) == 1 and after[0].op_type == "Add":  # the layer's bias: folded into the product
            others = [name for name in after[0].input if name != output]
            if (
                len(others) == 1
                and others[0] in initializers
                and list(initializers[others[0]].dims) == [weight.shape[1]]
            ):
                bias, output = others[0], after[0].output[0]
                removed.add(after[0].name)
        if source in ranges:
            inputs = [values, q_weight, scale, q_scales, zero_point, "", *([bias] if bias else [])]
            rewritten.append(
                helper.make_node(
                    "MatMulIntegerToFloat", inputs, [output], name=node.name, domain="com.microsoft"
                )
            )
        else:
            product, scaled = f"{node.name}_product", f"{node.name}_scaled"
            rewritten.append(
                helper.make_node(
                    "MatMulIntegerToFloat",
                    [values, q_weight, one, q_scales, zero_point],
                    [product],
                    name=node.name,
                    domain="com.microsoft",
                )
            )
            rewritten.append(
                helper.make_node("Mul", [product, scale], [scaled if bias else output], name=scaled)
            )
            if bias:
                rewritten.append(helper.make_node("Add", [scaled, bias], [output], name=f"{node.name}_bias"))

    del graph.node[:]
    graph.node.extend(rewritten)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in [*graph.initializer, *added] if t.name in used]  # constants no node reads go
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, OPSET)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    model.ir_version = max(
        model.ir_version, onnx.helper.find_min_ir_version_for([helper.make_opsetid("", OPSET)])
    )
    return model
