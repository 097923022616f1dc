"""Recipe: the official `openai` client against `langtrim serve` (docs/recipes.md, "the openai client")."""

import base64

import numpy as np
import openai
import pytest

from tests.support.recipes import MAX_TEXTS, cosines


@pytest.fixture(scope="module")
def client(served) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.mark.parametrize(
    "encoding_format", ["float", None, "base64"], ids=["float", "client-default", "base64"]
)
def test_the_openai_client_gets_the_encoders_vectors(client, served, sentences, encoding_format) -> None:
    """Without encoding_format the client asks for base64 and decodes it itself; asked for base64, it
    hands the strings over."""
    texts = sentences("fr")[:5]
    options = {} if encoding_format is None else {"encoding_format": encoding_format}
    response = client.embeddings.create(input=texts, model="tiny", **options)
    if encoding_format == "base64":
        vectors = np.stack(
            [np.frombuffer(base64.b64decode(item.embedding), dtype="<f4") for item in response.data]
        )
    else:
        vectors = np.asarray([item.embedding for item in response.data], dtype=np.float32)
    assert response.model == "tiny" and response.usage.prompt_tokens > 0
    assert cosines(vectors, served.encoder.embed(texts)).min() >= 0.9999


def test_an_error_reaches_the_openai_client_with_its_message(client) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(input=["x"] * (MAX_TEXTS + 1), model="tiny")
    assert f"batch size {MAX_TEXTS + 1} > maximum allowed batch size {MAX_TEXTS}" in refused.value.message
    with pytest.raises(openai.BadRequestError) as invalid:
        client.embeddings.create(input=[], model="tiny")
    assert "`input` cannot be empty" in invalid.value.message


def test_the_openai_client_lists_the_model(client, served) -> None:
    models = client.models.list()
    assert [model.id for model in models.data] == [served.encoder.manifest.source.name]
