"""docs/recipes.md, optimum: `ORTModelForFeatureExtraction.from_pretrained(bundle)` and the bundle's tokenizer,
pooled and normalised as the manifest says, make the Encoder's vectors."""

import json

import numpy as np
import pytest

from tests.support.recipes import assert_same_vectors, encoder_vectors

pytestmark = pytest.mark.slow


def test_ort_model_for_feature_extraction_gives_the_encoders_vectors(e5_bundle, texts) -> None:
    from optimum.onnxruntime import ORTModelForFeatureExtraction
    from transformers import AutoTokenizer

    manifest = json.loads((e5_bundle / "manifest.json").read_text())
    model = ORTModelForFeatureExtraction.from_pretrained(e5_bundle)
    tokenizer = AutoTokenizer.from_pretrained(e5_bundle)

    def embed(text: str) -> np.ndarray:
        inputs = tokenizer([text], padding=True, truncation=True, return_tensors="np")
        hidden = model(**inputs).last_hidden_state  # [1, tokens, 384]
        mask = inputs["attention_mask"][..., None]
        pooled = (hidden * mask).sum(1) / mask.sum(1) if manifest["pooling"] == "mean" else hidden[:, 0]
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True))[0]

    query = manifest["prompts"]["query"]
    vectors = np.stack([embed(query + text) for text in texts])

    assert_same_vectors(vectors, encoder_vectors(e5_bundle, texts, prompt="query"))
