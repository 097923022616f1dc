"""The server answers real client libraries unchanged: the official `openai` client.

A real server process on a free 127.0.0.1 port, the client installed from PyPI through the test extra.
"""

import base64

import numpy as np
import openai
import pytest

from langtrim.runtime import Encoder
from tests.support.server import SERVER_MODULE, free_port, packed_bundle, running_server


@pytest.fixture(scope="module")
def served(tiny_models, sentences, tmp_path_factory):
    bundle = packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)
    port = free_port()
    command = [*SERVER_MODULE, str(bundle), "--port", str(port), "--threads", "1", "--max-texts", "8"]
    with running_server(command, port) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)
        yield client, Encoder(bundle, verify="size")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


@pytest.mark.parametrize(
    "encoding_format", ["float", None, "base64"], ids=["float", "client-default", "base64"]
)
def test_the_openai_client_gets_the_encoders_vectors(served, sentences, encoding_format) -> None:
    """Without encoding_format the client asks for base64 and decodes it itself; asked for base64, it
    hands the strings over."""
    client, encoder = served
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
    assert _cosines(vectors, encoder.embed(texts)).min() >= 0.9999


def test_an_error_reaches_the_openai_client_with_its_message(served) -> None:
    client, _ = served
    with pytest.raises(openai.APIStatusError) as refused:
        client.embeddings.create(input=["x"] * 9, model="tiny")
    assert refused.value.status_code == 413
    assert "the request has 9 texts; the limit is 8 per request: split it" in refused.value.message
    with pytest.raises(openai.APIStatusError) as invalid:
        client.embeddings.create(input=[], model="tiny")
    assert "input is an empty list: send at least one text" in invalid.value.message


def test_the_openai_client_lists_the_model(served) -> None:
    client, encoder = served
    models = client.models.list()
    assert [model.id for model in models.data] == [encoder.manifest.source.name]
