"""Recipe: huggingface_hub's `InferenceClient` against `langtrim serve`, as against text-embeddings-inference
(docs/recipes.md, "huggingface_hub")."""

import numpy as np
import pytest
from huggingface_hub import InferenceClient

from tests.support.recipes import cosines


def test_feature_extraction_posts_to_the_root_and_gets_the_encoders_vectors(served, sentences) -> None:
    client = InferenceClient(served.url, timeout=60)
    for text in sentences("fr")[:3]:
        vector = client.feature_extraction(text)
        assert vector.shape == (1, served.encoder.dimension)
        assert cosines(vector, served.encoder.embed([text])).min() >= 0.9999
    raw = client.feature_extraction(sentences("fr")[0], normalize=False)
    assert np.abs(raw - served.encoder.embed(sentences("fr")[:1], normalize=False)).max() <= 1e-5


def test_feature_extraction_truncates_either_end_when_asked(served) -> None:
    client = InferenceClient(served.url, timeout=60)
    long_text = " ".join(f"mot{i}" for i in range(1000))
    with pytest.raises(Exception, match="422"):
        client.feature_extraction(long_text)
    encoder, vectors = served.encoder, {}
    for side in ("Right", "Left"):
        vectors[side] = client.feature_extraction(long_text, truncate=True, truncation_direction=side)
        tokenized = encoder.tokenize([long_text], truncation=side.lower())  # type: ignore[arg-type]
        assert cosines(vectors[side], encoder.outputs(tokenized.ids)).min() >= 0.9999
    assert cosines(vectors["Right"], vectors["Left"]).min() < 0.999  # the two ends are different text


@pytest.mark.parametrize("path", ["/similarity", ""], ids=["similarity-route", "root"])
def test_sentence_similarity_is_the_cosine_of_the_encoders_vectors(served, sentences, path) -> None:
    client = InferenceClient(served.url + path, timeout=60)
    source, *others = sentences("fr")[:4]
    scores = client.sentence_similarity(source, other_sentences=others)
    vectors = served.encoder.embed([source, *others], normalize=True)
    assert np.abs(np.array(scores) - vectors[1:] @ vectors[0]).max() <= 1e-4
