"""docs/recipes.md, sentence-transformers: `SentenceTransformer(bundle, backend="onnx")` makes the Encoder's
vectors, normalised and with the bundle's prompts, from the folder's own files."""

import pytest

from tests.support.recipes import assert_same_vectors, encoder_vectors

pytestmark = pytest.mark.slow


def test_prompt_name_query_gives_the_encoders_query_vectors(e5_bundle, texts) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_bundle), backend="onnx")
    vectors = model.encode(texts, prompt_name="query", batch_size=1)

    assert {name: model.prompts[name] for name in ("query", "passage")} == {
        "query": "query: ",
        "passage": "passage: ",
    }
    assert_same_vectors(vectors, encoder_vectors(e5_bundle, texts, prompt="query"))


def test_without_a_prompt_it_gives_the_encoders_plain_vectors_which_differ(e5_bundle, texts) -> None:
    """So the prompt above was really applied: without it the vectors are the Encoder's without it."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_bundle), backend="onnx")
    plain = model.encode(texts, batch_size=1)
    assert_same_vectors(plain, encoder_vectors(e5_bundle, texts))
    queries = encoder_vectors(e5_bundle, texts, prompt="query")
    assert (plain * queries).sum(1).min() < 0.99


def test_a_sentence_transformers_source_keeps_its_normalize_and_takes_the_bundles_length(
    minilm_bundle, texts
) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_bundle), backend="onnx")
    assert [type(module).__name__ for module in model] == ["Transformer", "Pooling", "Normalize"]
    assert model.max_seq_length == 512
    assert_same_vectors(model.encode(texts, batch_size=1), encoder_vectors(minilm_bundle, texts))
