"""docs/recipes.md, fastembed: a bundle as a custom model (`add_custom_model` + `specific_model_path`) makes
the Encoder's vectors; fastembed adds no prompt, so the text carries it."""

import json

import pytest

from tests.support.recipes import assert_same_vectors, encoder_vectors

pytestmark = pytest.mark.slow


def test_a_custom_model_gives_the_encoders_vectors(e5_bundle, texts, tmp_path) -> None:
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    manifest = json.loads((e5_bundle / "manifest.json").read_text())
    TextEmbedding.add_custom_model(
        "langtrim/e5-en-fr-de",
        pooling=PoolingType.MEAN if manifest["pooling"] == "mean" else PoolingType.CLS,
        normalization=manifest["normalize"],
        sources=ModelSource(hf="langtrim/e5-en-fr-de"),  # never fetched: the files are local
        dim=384,
        model_file="model.onnx",
    )
    model = TextEmbedding("langtrim/e5-en-fr-de", specific_model_path=str(e5_bundle), cache_dir=str(tmp_path))
    query = manifest["prompts"]["query"]
    vectors = list(model.embed([query + text for text in texts], batch_size=1))

    assert_same_vectors(vectors, encoder_vectors(e5_bundle, texts, prompt="query"))
