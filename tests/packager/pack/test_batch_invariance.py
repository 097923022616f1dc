"""The default bundle's guarantee: a text's vector does not depend on the texts it is embedded with.

`langtrim pack`'s default --quantize int8 fixes every activation scale at pack time (calibration.py), so a text
alone, inside calls of any size and at any thread count gets the same vector: bit-identical, or at worst cosine
>= GUARANTEED_COSINE (docs/bundle-format.md). Sentences are the shipped Tatoeba lines the calibration did not
see, plus a long paragraph, so every call mixes lengths.
"""

import numpy as np
import pytest

from langtrim.packager.pack.calibration import CALIBRATION_SENTENCES
from langtrim.packager.shipped_text import shipped_sentences
from langtrim.runtime import Encoder, read_manifest

GUARANTEED_COSINE = 0.99999


def _held_out() -> list[str]:
    texts = [
        s for language in ("en", "fr", "de") for s in shipped_sentences(language)[CALIBRATION_SENTENCES:][:40]
    ]
    return [*texts, " ".join(texts[:30])]  # the paragraph runs past 128 tokens


@pytest.mark.slow
def test_a_texts_vector_is_the_same_alone_and_in_calls_of_any_size_and_thread_count(default_bundle):
    bundle, _ = default_bundle
    assert read_manifest(bundle).quantization.mode == "int8"
    texts = _held_out()
    single = Encoder(bundle, threads=1)
    alone = np.concatenate([single.embed([text], prompt="query") for text in texts])
    for threads in (1, 2):
        encoder = Encoder(bundle, threads=threads)
        for size, batch_size in ((3, 32), (16, 8), (len(texts), 32), (len(texts), 64)):
            order = np.random.default_rng(size).permutation(
                len(texts)
            )  # each call mixes languages and lengths
            mixed = np.empty_like(alone)
            for start in range(0, len(texts), size):
                rows = order[start : start + size]
                mixed[rows] = encoder.embed([texts[i] for i in rows], batch_size=batch_size, prompt="query")
            cosines = (alone * mixed).sum(axis=1)
            assert cosines.min() >= GUARANTEED_COSINE, (threads, size, batch_size, cosines.min())


@pytest.mark.slow
def test_a_gelu_row_is_scaled_by_its_largest_value_alone(default_bundle):
    """e5's FFN-down input is a GELU's output, which never goes below -0.17: its per-token scale needs one
    reduction (ReduceMax, floored), not two, in each of the 12 layers."""
    import onnx

    bundle, _ = default_bundle
    graph = onnx.load(str(bundle / "model.onnx"), load_external_data=False).graph
    kinds = [node.op_type for node in graph.node]
    assert kinds.count("ReduceMax") == 12 and "ReduceMin" not in kinds
    assert "int8_gelu_floor" in {t.name for t in graph.initializer}


def test_gelu_is_found_behind_its_formula_and_nothing_else_is() -> None:
    from onnx import helper

    from langtrim.packager.pack.exact_int8 import is_gelu_output

    gelu = [  # x * 0.5 * (1 + erf(x / sqrt 2)), as torch.onnx exports it
        helper.make_node("Div", ["x", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["a"]),
        helper.make_node("Mul", ["x", "a"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Mul", ["r", "half"], ["z"]),
    ]
    producers = {output: node for node in gelu for output in node.output}
    assert is_gelu_output("y", producers)
    assert not is_gelu_output("z", producers) and not is_gelu_output("x", producers)
