"""The residual Adds written as Sums: a default onnxruntime session runs the graph the Encoder runs."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from langtrim.packager.pack.default_session import residual_adds_as_sum
from langtrim.runtime import Encoder
from langtrim.runtime.bundle import MODEL_FILE
from langtrim.runtime.encoder import mean_pool
from tests.support.server import packed_bundle

HIDDEN = 8


def _graph() -> onnx.ModelProto:
    """x + skip -> LayerNormalization, (x + skip) + bias -> ReduceMean (a layer norm written out), and an Add
    that feeds neither (it must stay)."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.random(HIDDEN, dtype=np.float32), name)
        for name in ("gamma", "beta", "bias")
    ]
    nodes = [
        helper.make_node("Add", ["x", "skip"], ["residual"], name="residual"),
        helper.make_node("LayerNormalization", ["residual", "gamma", "beta"], ["normed"], axis=-1),
        helper.make_node("Add", ["normed", "bias"], ["biased"], name="biased"),
        helper.make_node("ReduceMean", ["biased"], ["mean"], axes=[-1], keepdims=1),
        helper.make_node("Add", ["mean", "mean"], ["y"], name="other"),
    ]
    shape = [None, None, HIDDEN]
    graph = helper.make_graph(
        nodes,
        "residuals",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "skip")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None, 1])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_adds_that_feed_a_layer_norm_become_sums_and_others_stay() -> None:
    model = _graph()
    assert residual_adds_as_sum(model) == 2
    assert {node.name: node.op_type for node in model.graph.node if node.name} == {
        "residual": "Sum",
        "biased": "Sum",
        "other": "Add",
    }
    onnx.checker.check_model(model)


def test_the_rewritten_graph_computes_the_same_bits() -> None:
    rng = np.random.default_rng(1)
    feed = {name: rng.random((2, 5, HIDDEN), dtype=np.float32) for name in ("x", "skip")}
    before, after = _graph(), _graph()
    residual_adds_as_sum(after)
    outputs = [
        onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, feed
        )[0]
        for m in (before, after)
    ]
    assert np.array_equal(outputs[0], outputs[1])


@pytest.fixture(scope="module")
def bundle(tiny_models, sentences, tmp_path_factory) -> Path:
    return packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)


def test_a_default_session_of_a_packed_bundle_fuses_no_skip_layer_norm(bundle: Path, tmp_path: Path) -> None:
    graph = onnx.load(str(bundle / MODEL_FILE), load_external_data=False)
    assert "Sum" in {node.op_type for node in graph.graph.node}
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(str(bundle / MODEL_FILE), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx"), load_external_data=False)
    op_types = {node.op_type for node in optimized.graph.node}
    assert "LayerNormalization" in op_types and "SkipLayerNormalization" not in op_types


def test_a_default_session_gives_the_encoders_vectors_bit_for_bit(bundle: Path, sentences) -> None:
    encoder = Encoder(bundle)
    session = onnxruntime.InferenceSession(str(bundle / MODEL_FILE))
    names = [graph_input.name for graph_input in session.get_inputs()]
    for text in sentences("fr")[:20]:
        (ids,) = encoder.tokenize([text]).ids
        batch = ids[None, :]
        feed = {
            "input_ids": batch,
            "attention_mask": np.ones_like(batch),
            "token_type_ids": np.zeros_like(batch),
        }
        hidden = session.run(None, {name: feed[name] for name in names})[0]
        assert np.array_equal(mean_pool(hidden, feed["attention_mask"]), encoder.outputs([ids]))
