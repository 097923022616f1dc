"""Recipe: LlamaIndex's `TextEmbeddingsInference` against `langtrim serve` (docs/recipes.md, "LlamaIndex")."""

from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

from tests.support.recipes import cosines


def test_llama_index_tei_embeddings_get_the_encoders_vectors(served, sentences) -> None:
    embeddings = TextEmbeddingsInference(
        model_name="xlmr", base_url=served.url, timeout=60, embed_batch_size=4
    )
    texts = sentences("fr")[:6]
    vectors = embeddings.get_text_embedding_batch(texts)
    assert cosines(vectors, served.encoder.embed(texts)).min() >= 0.9999
    query = embeddings.get_query_embedding(texts[0])
    assert cosines([query], served.encoder.embed(texts[:1])).min() >= 0.9999
