"""Fewer nodes per layer before `--quantize int8`, with the same vectors to the bit.

A short text's run at batch 1 is a few rows through ~40 nodes per layer, so onnxruntime's per-node cost is a
large share of it. Two rewrites of the float graph remove a tenth of the nodes:

- `fuse_shared_input_projections`: MatMuls that read the same activation with their own 2-D weights of the
  same input width (an attention's query, key and value) become one MatMul on the weights side by side, one
  bias Add and a Split. int8 quantizes weights per output column and gives the shared input one scale, so each
  product is the same integer as before and the layer's outputs are bit-identical.
- `constant_reshape_shapes`: a Reshape whose target is computed at run time as
  Concat(Unsqueeze(Gather(Shape(x), k)), constants), as exporters spell `view(batch, -1, heads, head_dim)`,
  gets a constant target with 0 ("keep this dimension") where shape inference shows the Reshape's input has
  x's dimension k at that place; the Shape, Gather, Unsqueeze and Concat go once nothing reads them.

docs/results.md ("Fewer nodes") gives the latency this buys; tests check the outputs are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Ops that only compute shapes: removed when a rewrite leaves their outputs unread.
_SHAPE_OPS = frozenset({"Shape", "Gather", "Unsqueeze", "Concat", "Constant"})
# Initializers up to this many elements (shape constants) keep their values for shape inference.
_SMALL_TENSOR = 64


def fewer_nodes(model: Any) -> Any:
    """Both rewrites on `model` (an onnx ModelProto, nodes named), in place; returns it."""
    fuse_shared_input_projections(model)
    constant_reshape_shapes(model)
    return model


def fuse_shared_input_projections(model: Any) -> int:
    """One MatMul (+ bias Add) and a Split for each group of linear layers on the same input; returns how
    many groups were fused. Weights another node also reads are left alone (concatenating would copy them)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    groups: dict[str, list[tuple[Any, Any | None, str | None]]] = {}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in initializers:
            continue
        weight = initializers[node.input[1]]
        if len(weight.dims) != 2 or len(readers[node.input[1]]) != 1:
            continue
        groups.setdefault(node.input[0], []).append((node, *_bias_of(node, weight, initializers, readers)))
    split_as_input = _opset(model) >= 13  # Split's sizes: an input from opset 13, an attribute before
    fused: dict[str, list[Any]] = {}  # first MatMul's name -> the nodes that replace the group
    gone: set[str] = set()
    for source, members in groups.items():
        widths = {tuple(initializers[node.input[1]].dims)[0] for node, _, _ in members}
        with_bias = [add is not None for _, add, _ in members]
        if len(members) < 2 or len(widths) != 1 or len(set(with_bias)) != 1:
            continue
        weights = [numpy_helper.to_array(initializers[node.input[1]]) for node, _, _ in members]
        first = members[0][0].name
        weight_name, product = f"{first}_fused_weight", f"{first}_fused"
        graph.initializer.append(numpy_helper.from_array(np.concatenate(weights, axis=1), weight_name))
        nodes = [helper.make_node("MatMul", [source, weight_name], [product], name=product)]
        if with_bias[0]:
            biases = [numpy_helper.to_array(initializers[bias]) for _, _, bias in members if bias]
            bias_name, biased = f"{first}_fused_bias", f"{first}_fused_biased"
            graph.initializer.append(numpy_helper.from_array(np.concatenate(biases), bias_name))
            nodes.append(helper.make_node("Add", [product, bias_name], [biased], name=biased))
            product = biased
        outputs = [(add or node).output[0] for node, add, _ in members]
        sizes = [int(w.shape[1]) for w in weights]
        if split_as_input:
            sizes_name = f"{first}_fused_sizes"
            graph.initializer.append(numpy_helper.from_array(np.array(sizes, np.int64), sizes_name))
            split = helper.make_node("Split", [product, sizes_name], outputs, name=f"{first}_split", axis=-1)
        else:
            split = helper.make_node("Split", [product], outputs, name=f"{first}_split", axis=-1, split=sizes)
        fused[first] = [*nodes, split]
        for node, add, _ in members:
            gone.update([node.name, *([add.name] if add is not None else [])])
    if fused:
        # A group's outputs now appear where its first MatMul was, which is before any of their readers.
        rewritten = []
        for node in graph.node:
            if node.name in fused:
                rewritten.extend(fused[node.name])
            elif node.name not in gone:
                rewritten.append(node)
        del graph.node[:]
        graph.node.extend(rewritten)
        _drop_unread_initializers(graph)
    return len(fused)


def _bias_of(
    node: Any, weight: Any, initializers: dict[str, Any], readers: dict[str, list[Any]]
) -> tuple[Any | None, str | None]:
    """The Add that adds a constant bias to `node`'s product, and the bias's name, when it is its only reader."""
    after = readers.get(node.output[0], [])
    if len(after) != 1 or after[0].op_type != "Add":
        return None, None
    others = [name for name in after[0].input if name != node.output[0]]
    if (
        len(others) == 1
        and others[0] in initializers
        and list(initializers[others[0]].dims) == [weight.dims[1]]
    ):
        return after[0], others[0]
    return None, None


def constant_reshape_shapes(model: Any) -> int:
    """Constant targets for the Reshapes whose target only repeats their input's dimensions and constants;
    returns how many were rewritten."""
    from onnx import numpy_helper

    graph = model.graph
    constants = {  # shape constants only: converting every weight would copy the whole model
        t.name: numpy_helper.to_array(t) for t in graph.initializer if _is_small(t)
    }
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producers = {output: node for node in graph.node for output in node.output}
    dims = _inferred_dims(model)

    def same_dim(a: str, i: int, b: str, j: int) -> bool:
        if a not in dims or b not in dims or i >= len(dims[a]) or j >= len(dims[b]):
            return False
        x, y = dims[a][i], dims[b][j]
        if x.dim_param and x.dim_param == y.dim_param:
            return True
        return bool(x.HasField("dim_value") and y.HasField("dim_value") and x.dim_value == y.dim_value > 0)

    def kept_dimension(part: str, data: str, position: int) -> bool:
        """Whether `part` is Unsqueeze(Gather(Shape(x), k)) with x's dimension k = data's at `position`."""
        unsqueeze = producers.get(part)
        gather = (
            producers.get(unsqueeze.input[0])
            if unsqueeze is not None and unsqueeze.op_type == "Unsqueeze"
            else None
        )
        if (
            gather is None
            or gather.op_type != "Gather"
            or any(a.i != 0 for a in gather.attribute if a.name == "axis")
        ):
            return False
        shape = producers.get(gather.input[0])
        index = constants.get(gather.input[1])
        if shape is None or shape.op_type != "Shape" or index is None or index.ndim != 0:
            return False
        bounds = {a.name: a.i for a in shape.attribute}  # onnxruntime writes start=0 out; an end is not seen
        if "end" in bounds or bounds.get("start", 0) < 0:
            return False
        return same_dim(shape.input[0], bounds.get("start", 0) + int(index), data, position)

    count = 0
    for node in graph.node:
        concat = producers.get(node.input[1]) if node.op_type == "Reshape" else None
        if (
            concat is None
            or concat.op_type != "Concat"
            or any(a.name == "allowzero" and a.i for a in node.attribute)
        ):
            continue
        target: list[int] = []
        for part in concat.input:
            if part in constants and constants[part].ndim == 1:
                target.extend(int(v) for v in constants[part])
            elif kept_dimension(part, node.input[0], len(target)):
                target.append(0)
            else:
                break
        else:
            name = f"{node.name}_shape"
            graph.initializer.append(numpy_helper.from_array(np.array(target, np.int64), name))
            node.input[1] = name
            count += 1
    if count:
        _drop_unread_shape_nodes(graph)
        _drop_unread_initializers(graph)
    return count


def _inferred_dims(model: Any) -> dict[str, list[Any]]:
    """Each tensor's dimensions by onnx shape inference, run on a copy whose large weights are declared as
    inputs rather than copied (a full-size model's would double the packer's memory)."""
    import onnx

    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    graph = light.graph
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    declared = {value.name for value in model.graph.input}
    for tensor in model.graph.initializer:
        if _is_small(tensor):
            graph.initializer.append(tensor)
        elif tensor.name not in declared:  # an initializer may already be declared as an input
            graph.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims))
            )
    inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False).graph
    return {
        value.name: list(value.type.tensor_type.shape.dim)
        for value in (*inferred.input, *inferred.value_info, *inferred.output)
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape")
    }


def _is_small(tensor: Any) -> bool:
    return bool(np.prod(tensor.dims, dtype=np.int64) <= _SMALL_TENSOR)


def _drop_unread_shape_nodes(graph: Any) -> None:
    outputs = {value.name for value in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        unread = [n for n in graph.node if n.op_type in _SHAPE_OPS and not any(o in read for o in n.output)]
        if not unread:
            return
        for node in unread:
            graph.node.remove(node)


def _drop_unread_initializers(graph: Any) -> None:
    read = {name for node in graph.node for name in node.input}
    read |= {value.name for value in (*graph.input, *graph.output)}  # an initializer may double as an input
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
