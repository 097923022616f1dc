"""Recipe: LangChain's `OpenAIEmbeddings` against `langtrim serve` (docs/recipes.md, "LangChain")."""

from langchain_openai import OpenAIEmbeddings

from tests.support.recipes import cosines


def test_langchain_openai_embeddings_get_the_encoders_vectors(served, sentences) -> None:
    # check_embedding_ctx_length=False: LangChain otherwise sends tiktoken ids of OpenAI's vocabulary
    # (and downloads tiktoken's tables), which mean nothing to another model.
    embeddings = OpenAIEmbeddings(
        model="xlmr",
        base_url=f"{served.url}/v1",
        api_key="unused",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    texts = sentences("fr")[:5]
    assert cosines(embeddings.embed_documents(texts), served.encoder.embed(texts)).min() >= 0.9999
    query = embeddings.embed_query(texts[0])
    assert cosines([query], served.encoder.embed(texts[:1])).min() >= 0.9999
