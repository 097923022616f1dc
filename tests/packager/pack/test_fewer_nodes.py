"""`fewer_nodes` removes nodes without changing a single output bit of the int8 graph (packager/pack/fewer_nodes.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from langtrim.packager.pack.calibration import calibration_ids
from langtrim.packager.pack.exact_int8 import quantize_exact_int8
from langtrim.packager.pack.export import export_onnx
from langtrim.packager.pack.fewer_nodes import constant_reshape_shapes, fewer_nodes
from langtrim.packager.pack.quantize import _name_nodes, optimize_onnx
from langtrim.packager.shipped_text import shipped_sentences
from tests.conftest import E5_TOKENIZER, MINILM_DIR

LAYERS = 2
FAMILIES = {  # transformers class, config class, config, tokenizer file
    "bert": ("BertModel", "BertConfig", dict(vocab_size=30522, num_hidden_layers=LAYERS, num_attention_heads=2,
             hidden_size=32, intermediate_size=64), MINILM_DIR / "tokenizer.json"),
    "xlm-roberta": ("XLMRobertaModel", "XLMRobertaConfig", dict(vocab_size=250002, pad_token_id=1,
                    num_hidden_layers=LAYERS, num_attention_heads=2, hidden_size=32, intermediate_size=64,
                    max_position_embeddings=514), E5_TOKENIZER),
    "distilbert": ("DistilBertModel", "DistilBertConfig", dict(vocab_size=30522, n_layers=LAYERS, n_heads=2,
                   dim=32, hidden_dim=64), MINILM_DIR / "tokenizer.json"),
}  # fmt: skip


def _float_graph(family: str, root: Path) -> tuple[Path, Path]:
    """A tiny random model of `family` exported and optimized as `pack` does before quantizing."""
    import torch
    import transformers

    model_class, config_class, config, tokenizer = FAMILIES[family]
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(getattr(transformers, config_class)(**config)).eval()
    model.save_pretrained(root / "model", safe_serialization=True)
    shutil.copy2(tokenizer, root / "model" / "tokenizer.json")
    exported = export_onnx(root / "model", root / "export")
    optimized = optimize_onnx(exported.onnx_path, root / "optimized" / "model.onnx", level="basic")
    return optimized.onnx_path, root / "model" / "tokenizer.json"


def _int8(float_path: Path, ids: list[np.ndarray], work: Path, *, simplify: bool) -> onnx.ModelProto:
    model = onnx.load(str(float_path))
    _name_nodes(model)
    work.mkdir()
    return quantize_exact_int8(fewer_nodes(model) if simplify else model, ids, work)


def _outputs(model: onnx.ModelProto, batches: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = {value.name for value in session.get_inputs()}
    return [session.run(None, {k: v for k, v in feed.items() if k in names})[0] for feed in batches]


def _batches(tokenizer_file: Path) -> list[dict[str, np.ndarray]]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    texts = [s for language in ("en", "fr", "de") for s in shipped_sentences(language)[300:316]]
    tokenizer.enable_padding(pad_id=0)
    batches = []
    for size in (1, 7, len(texts)):
        encodings = tokenizer.encode_batch(texts[:size])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        batches.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    return batches


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fewer_nodes_give_the_same_int8_outputs_to_the_bit(family: str, tmp_path: Path) -> None:
    float_path, tokenizer = _float_graph(family, tmp_path)
    ids = calibration_ids(tokenizer, ["en", "fr"], [], 128)[:40]
    before = _int8(float_path, ids, tmp_path / "before", simplify=False)
    after = _int8(float_path, ids, tmp_path / "after", simplify=True)

    def count(model: onnx.ModelProto, op: str) -> int:
        return sum(node.op_type == op for node in model.graph.node)

    def constant_targets(model: onnx.ModelProto) -> int:
        constants = {t.name for t in model.graph.initializer}
        return sum(node.op_type == "Reshape" and node.input[1] in constants for node in model.graph.node)

    # query, key and value: one product per layer instead of three; their reshapes need no Shape
    assert count(before, "MatMulIntegerToFloat") == 6 * LAYERS
    assert count(after, "MatMulIntegerToFloat") == 4 * LAYERS
    assert constant_targets(after) >= constant_targets(before) + 3 * LAYERS  # at least query, key and value's
    assert len(after.graph.node) < len(before.graph.node)
    batches = _batches(tokenizer)
    for old, new in zip(_outputs(before, batches), _outputs(after, batches), strict=True):
        assert np.array_equal(old, new)


def _reshape_graph(shape_of: str) -> onnx.ModelProto:
    """Reshape(a, Concat(Unsqueeze(Gather(Shape(`shape_of`), 0)), [-1, 2, 2])), a: [B, S, 4], b: [C, S, 4]."""
    nodes = [
        helper.make_node("Shape", [shape_of], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes"], ["batch1"], name="unsqueeze"),
        helper.make_node("Concat", ["batch1", "rest"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["a", "target"], ["y"], name="reshape"),
        helper.make_node("Identity", ["b"], ["b_out"], name="b_out"),
    ]
    graph = helper.make_graph(
        nodes,
        "reshape",
        [
            helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, ["B", "S", 4]),
            helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, ["C", "S", 4]),
        ],
        [
            helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None),
            helper.make_tensor_value_info("b_out", onnx.TensorProto.FLOAT, None),
        ],
        [
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(np.array([0], np.int64), "axes"),
            numpy_helper.from_array(np.array([-1, 2, 2], np.int64), "rest"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_reshape_target_becomes_constant_only_when_it_repeats_its_own_input_dimension() -> None:
    own = _reshape_graph("a")
    assert constant_reshape_shapes(own) == 1
    assert [node.op_type for node in own.graph.node] == ["Reshape", "Identity"]
    a = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    session = ort.InferenceSession(own.SerializeToString(), providers=["CPUExecutionProvider"])
    y = session.run(["y"], {"a": a, "b": a})[0]
    assert np.array_equal(y, a.reshape(2, -1, 2, 2))

    other = _reshape_graph("b")  # another tensor's batch size: nothing says it is a's
    assert constant_reshape_shapes(other) == 0
    assert [node.op_type for node in other.graph.node][:4] == ["Shape", "Gather", "Unsqueeze", "Concat"]
