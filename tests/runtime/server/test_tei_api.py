"""text-embeddings-inference's routes beyond /embed: /embed_all, /similarity, /tokenize, /decode, the main
route, and the request fields TEI has (truncation_direction, dimensions), each against the Encoder."""

import numpy as np
import pytest
from tokenizers import Tokenizer

from tests.support.server import error_of

SAME = 1e-5


def test_embed_all_is_every_tokens_hidden_state_whose_mean_is_the_embedding(client, encoder, texts) -> None:
    states = client.post("/embed_all", json={"inputs": texts[:3]}).json()
    tokenized = encoder.tokenize(texts[:3])
    pooled = encoder.outputs(tokenized.ids)
    for text_states, ids, expected in zip(states, tokenized.ids, pooled, strict=True):
        array = np.array(text_states)
        assert array.shape == (len(ids), 32)
        assert np.abs(array.mean(axis=0) - expected).max() <= SAME  # the bundle pools by mean
    assert len(client.post("/embed_all", json={"inputs": texts[0]}).json()) == 1


def test_similarity_is_the_cosine_to_the_source_sentence(client, encoder, texts) -> None:
    body = {"inputs": {"source_sentence": texts[0], "sentences": texts[1:4]}}
    scores = np.array(client.post("/similarity", json=body).json())
    vectors = encoder.embed(texts[:4], normalize=True)
    assert np.abs(scores - vectors[1:] @ vectors[0]).max() <= SAME
    assert np.abs(np.array(client.post("/", json=body).json()) - scores).max() <= SAME  # the main route too
    empty = {"inputs": {"source_sentence": texts[0], "sentences": []}}
    assert "cannot be empty" in error_of(client.post("/similarity", json=empty), 400, "Empty")
    too_many = {"inputs": {"source_sentence": "a", "sentences": ["b"] * 8}}
    assert "batch size 9" in error_of(client.post("/similarity", json=too_many), 422)


def test_tokenize_gives_ids_texts_and_byte_offsets_as_tei(client, encoder) -> None:
    text = "Où est la gare ?"
    tokens = client.post("/tokenize", json={"inputs": text}).json()
    assert len(tokens) == 1
    tokenizer = Tokenizer.from_file(str(encoder.directory / "tokenizer.json"))
    assert [t["id"] for t in tokens[0]] == tokenizer.encode(text).ids
    first, *middle, last = tokens[0]
    assert first["special"] and last["special"] and first["start"] is None and first["text"] == "<s>"
    data = text.encode("utf-8")
    for token in middle:
        assert not token["special"] and data[token["start"] : token["stop"]].decode() == token["text"]
    plain = client.post("/tokenize", json={"inputs": [text, "gare"], "add_special_tokens": False}).json()
    assert [t["id"] for t in plain[0]] == [t["id"] for t in middle] and len(plain) == 2


def test_decode_inverts_tokenize(client, encoder) -> None:
    ids = encoder.tokenize(["Où est la gare ?"]).ids[0].tolist()
    assert client.post("/decode", json={"ids": ids}).json() == ["Où est la gare ?"]
    with_specials = client.post("/decode", json={"ids": [ids, ids[:3]], "skip_special_tokens": False}).json()
    assert with_specials[0].startswith("<s>") and len(with_specials) == 2
    outside = encoder.manifest.vocab.kept_size
    assert "outside this bundle's vocabulary" in error_of(
        client.post("/decode", json={"ids": [outside]}), 422
    )


@pytest.mark.parametrize("side", ["left", "Left", "right", "Right"])
def test_truncation_direction_cuts_the_end_it_names(client, encoder, side) -> None:
    long_text = " ".join(str(i) for i in range(450))
    left, right = (encoder.tokenize([long_text], truncation=end) for end in ("left", "right"))
    assert left.lengths[0] > encoder.manifest.max_length and left.ids[0][5] != right.ids[0][5]
    body = {"inputs": long_text, "truncate": True, "truncation_direction": side}
    vector = np.array(client.post("/embed", json=body).json())
    expected = encoder.outputs(encoder.tokenize([long_text], truncation=side.lower()).ids)
    assert np.abs(vector - expected / np.linalg.norm(expected)).max() <= SAME


def test_a_truncation_direction_tei_does_not_have_is_422(client) -> None:
    body = {"inputs": "x", "truncation_direction": "middle"}
    assert "truncation_direction" in error_of(client.post("/embed", json=body), 422)


def test_embed_dimensions_keep_the_first_values(client, encoder, texts) -> None:
    pooled = encoder.embed(texts[:2], normalize=False)[:, :8]
    vectors = np.array(client.post("/embed", json={"inputs": texts[:2], "dimensions": 8}).json())
    assert np.abs(vectors - pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).max() <= SAME
    raw = np.array(
        client.post("/embed", json={"inputs": texts[:2], "dimensions": 8, "normalize": False}).json()
    )
    assert np.abs(raw - pooled).max() <= SAME
    assert "from 1 to this model's 32" in error_of(
        client.post("/embed", json={"inputs": "x", "dimensions": 0}), 422
    )


def test_health_answers_on_teis_health_routes(client) -> None:
    for path in ("/health", "/", "/ping"):
        assert client.get(path).status_code == 200
