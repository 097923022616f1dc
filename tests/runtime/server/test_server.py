"""`langtrim serve`: the HTTP API over a bundle, its limits and errors, and the real uvicorn process.

Bundles are packed from the tiny random-weight XLM-R models of conftest (real e5 tokenizer, French
Tatoeba selection), fp32, so the server's vectors are compared with `Encoder`'s own: <= 1e-5 max abs
difference (the server runs texts in other batches, sorted by length; padding does not count in pooling).
"""

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient
from tokenizers import Tokenizer

from langtrim.runtime import BundleError, Encoder, UsageError
from langtrim.runtime.bundle import bundle_digest
from langtrim.runtime.server import ServerLimits, create_app
from langtrim.runtime.server.schemas import EmbedRequest
from tests.support.server import LIMITS, SERVER_MODULE, error_of, free_port, ready, running_server

SAME = 1e-5


def metric(client: TestClient, line_start: str) -> float:
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(line_start + " ")]
    return float(lines[0].split()[-1]) if lines else 0.0


# --- readiness ------------------------------------------------------------------------------------------


def test_health_is_503_with_retry_after_until_the_bundle_is_loaded(embedding_bundle: Path) -> None:
    app = create_app(embedding_bundle, threads=1)
    not_started = TestClient(app)  # outside `with`: the lifespan that loads the bundle has not run
    response = not_started.get("/health")
    assert "still loading" in error_of(response, 503)
    assert response.headers["retry-after"] == "1"
    assert "still loading" in error_of(not_started.post("/embed", json={"inputs": "x"}), 503)
    with TestClient(app) as started:
        assert ready(started).get("/health").json() == {"status": "ok"}
        assert metric(started, "langtrim_ready") == 1


def test_a_path_that_is_not_a_bundle_fails_at_create_app(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        create_app(tmp_path / "missing")


def test_a_bundle_other_than_the_pinned_one_fails_at_create_app(embedding_bundle: Path) -> None:
    other = "blake2b-256:" + "0" * 64
    with pytest.raises(BundleError, match="was pinned"):
        create_app(embedding_bundle, bundle_digest=other)
    assert create_app(embedding_bundle, bundle_digest=bundle_digest(embedding_bundle))


def test_limits_must_be_positive() -> None:
    with pytest.raises(UsageError, match="max_texts"):
        ServerLimits(max_texts=0)


# --- POST /embed (text-embeddings-inference) ------------------------------------------------------------


def test_embed_returns_one_normalised_vector_per_text_like_the_encoder(client, encoder, texts) -> None:
    response = client.post("/embed", json={"inputs": texts})
    assert response.status_code == 200
    vectors = np.array(response.json(), dtype=np.float32)
    assert vectors.shape == (len(texts), 32)
    assert np.abs(vectors - encoder.embed(texts, normalize=True)).max() <= SAME


def test_embed_of_one_string_is_a_list_of_one_vector(client, encoder, texts) -> None:
    vectors = client.post("/embed", json={"inputs": texts[0]}).json()
    assert len(vectors) == 1 and len(vectors[0]) == 32
    assert np.abs(np.array(vectors) - encoder.embed(texts[:1])).max() <= SAME


def test_embed_normalize_false_returns_the_pooled_vectors(client, encoder, texts) -> None:
    vectors = np.array(client.post("/embed", json={"inputs": texts, "normalize": False}).json())
    assert np.abs(vectors - encoder.embed(texts, normalize=False)).max() <= SAME
    assert not np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_an_unknown_prompt_name_is_422_naming_the_known_ones(client) -> None:
    detail = error_of(client.post("/embed", json={"inputs": "x", "prompt_name": "query"}), 422)
    assert "prompt_name 'query'" in detail and "(none)" in detail


# --- POST /v1/embeddings (OpenAI) -----------------------------------------------------------------------


def test_openai_embeddings_have_openai_shape_and_token_usage(
    client, encoder, texts, embedding_bundle
) -> None:
    body = client.post("/v1/embeddings", json={"input": texts, "model": "my-model"}).json()
    assert body["object"] == "list" and body["model"] == "my-model"
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", i) for i in range(len(texts))]
    vectors = np.array([d["embedding"] for d in body["data"]])
    assert np.abs(vectors - encoder.embed(texts)).max() <= SAME
    tokenizer = Tokenizer.from_file(str(embedding_bundle / "tokenizer.json"))
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts))
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_openai_base64_embeddings_decode_to_the_float_ones(client, texts) -> None:
    floats = client.post("/v1/embeddings", json={"input": texts, "model": "m"}).json()["data"]
    packed = client.post(
        "/v1/embeddings", json={"input": texts, "model": "m", "encoding_format": "base64"}
    ).json()["data"]
    for as_float, as_base64 in zip(floats, packed, strict=True):
        decoded = np.frombuffer(base64.b64decode(as_base64["embedding"]), dtype="<f4")
        assert np.array_equal(decoded, np.array(as_float["embedding"], dtype=np.float32))


def test_openai_without_model_answers_with_the_bundles_model(client) -> None:
    assert client.post("/v1/embeddings", json={"input": "x"}).json()["model"] == "xlmr"


def test_openai_dimensions_keep_the_first_values_normalised_again(client, encoder) -> None:
    full = encoder.embed(["x"], normalize=False)[0]
    body = client.post("/v1/embeddings", json={"input": "x", "dimensions": 16}).json()
    shortened = np.array(body["data"][0]["embedding"])
    assert shortened.shape == (16,) and abs(np.linalg.norm(shortened) - 1) <= SAME
    assert np.abs(shortened - full[:16] / np.linalg.norm(full[:16])).max() <= SAME
    for wrong in (0, 33):
        detail = error_of(client.post("/v1/embeddings", json={"input": "x", "dimensions": wrong}), 400)
        assert "from 1 to this model's 32" in detail


def test_openai_token_id_input_is_400_saying_texts_are_needed(client) -> None:
    detail = error_of(client.post("/v1/embeddings", json={"input": [[101, 2023, 102]]}), 400)
    assert "token ids" in detail and "strings" in detail


# --- POST /predict, and routes of the other task -----------------------------------------------------------


def test_predict_ranks_every_label_like_the_encoder(classifier, classifier_bundle, texts) -> None:
    ranked = classifier.post("/predict", json={"inputs": [[text] for text in texts]}).json()
    encoder = Encoder(classifier_bundle)
    probabilities, labels = encoder.probabilities(texts), encoder.manifest.labels
    assert len(ranked) == len(texts)
    for row, expected in zip(ranked, probabilities, strict=True):
        assert [r["label"] for r in row] == [labels[i] for i in np.argsort(-expected, kind="stable")]
        assert abs(row[0]["score"] - expected.max()) <= SAME


def test_predict_of_one_text_is_one_ranking_and_raw_scores_are_logits(classifier, classifier_bundle) -> None:
    for inputs in ("Bonjour", ["Bonjour"]):
        ranked = classifier.post("/predict", json={"inputs": inputs}).json()
        assert len(ranked) == 3 and {"label", "score"} == set(ranked[0])
        assert ranked[0]["score"] >= ranked[1]["score"] >= ranked[2]["score"]
    encoder = Encoder(classifier_bundle)
    logits = encoder.outputs(encoder.tokenize(["Bonjour"]).ids, logits=True)[0]
    raw = classifier.post("/predict", json={"inputs": "Bonjour", "raw_scores": True}).json()
    assert abs(raw[0]["score"] - logits.max()) <= SAME and abs(sum(r["score"] for r in raw) - 1) > 1e-3


def test_predict_of_a_pair_is_422_since_the_bundle_takes_single_texts(classifier) -> None:
    assert "pair of texts" in error_of(classifier.post("/predict", json={"inputs": ["a", "b"]}), 422)
    assert "pair of texts" in error_of(classifier.post("/predict", json={"inputs": [["a"], ["a", "b"]]}), 422)


def test_the_main_route_is_the_tasks(client, classifier, encoder, texts) -> None:
    for path in ("/", "/invocations"):
        vectors = np.array(client.post(path, json={"inputs": texts[:2]}).json())
        assert np.abs(vectors - encoder.embed(texts[:2])).max() <= SAME
        assert len(classifier.post(path, json={"inputs": "Bonjour"}).json()) == 3


def test_routes_of_the_other_task_are_424_saying_which_apply(client, classifier) -> None:
    for path in ("/predict", "/rerank", "/embed_sparse"):
        message = error_of(client.post(path, json={"inputs": "x"}), 424)
        assert "model is not" in message and "/embed" in message
    for path in ("/embed", "/embed_all", "/similarity", "/rerank"):
        assert "/predict" in error_of(classifier.post(path, json={"inputs": "x"}), 424)
    assert "/predict" in error_of(classifier.post("/v1/embeddings", json={"input": "x"}), 424)


# --- limits and bad input ---------------------------------------------------------------------------------


def test_too_many_texts_is_422_as_tei_and_400_as_openai(client) -> None:
    detail = error_of(client.post("/embed", json={"inputs": ["a"] * 9}), 422)
    assert "batch size 9 > maximum allowed batch size 8" in detail
    assert "batch size 9" in error_of(client.post("/v1/embeddings", json={"input": ["a"] * 9}), 400)


def test_a_text_over_the_character_limit_is_422(client) -> None:
    detail = error_of(client.post("/embed", json={"inputs": ["ok", "x" * 2049]}), 422)
    assert "`inputs[1]` must have less than 2048 characters. Given: 2049" in detail


def test_an_empty_text_or_batch_is_400_empty_as_tei(client) -> None:
    assert "cannot be empty" in error_of(client.post("/embed", json={"inputs": ""}), 400, "Empty")
    assert "cannot be empty" in error_of(client.post("/embed", json={"inputs": ["a", ""]}), 400, "Empty")
    assert "cannot be empty" in error_of(client.post("/embed", json={"inputs": []}), 400, "Empty")


def test_a_body_over_the_size_limit_is_413(client) -> None:
    big = json.dumps({"inputs": "a", "padding": "x" * LIMITS.max_body_bytes}).encode()
    assert "larger than 32768 bytes" in error_of(client.post("/embed", content=big), 413)


def test_a_streamed_body_without_length_over_the_limit_is_413(client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": "'
        for _ in range(40):
            yield b"a" * 1000
        yield b'"}'

    assert "larger than" in error_of(client.post("/embed", content=chunks()), 413)


def test_a_text_over_max_length_tokens_is_422_unless_truncated(client, encoder) -> None:
    max_length, long_text = encoder.manifest.max_length, "a " * 1000
    (tokens,) = encoder.tokenize([long_text]).lengths  # before truncation (tokenizer.json truncates)
    assert tokens > max_length
    detail = error_of(client.post("/embed", json={"inputs": [long_text]}), 422)
    assert f"must have less than {max_length} tokens. Given: {tokens}" in detail and "truncate" in detail
    truncated = client.post("/embed", json={"inputs": [long_text], "truncate": True})
    assert truncated.status_code == 200
    assert np.abs(np.array(truncated.json()) - encoder.embed([long_text])).max() <= SAME


def test_a_long_list_of_non_texts_is_refused_without_validating_each_item(client, monkeypatch) -> None:
    """16,000 integers once took > 30 s on the event loop: one sentence per item, each scanning the list."""
    detail = error_of(client.post("/embed", json={"inputs": [0] * 16_000}), 422)
    assert "batch size 16000 > maximum allowed batch size 8" in detail
    import langtrim.runtime.server.requests as requests

    calls = []
    describe = requests._problem
    monkeypatch.setattr(requests, "_problem", lambda *args: calls.append(1) or describe(*args))
    wide = ServerLimits(max_texts=10_000)
    with pytest.raises(requests.ApiError, match="token ids"):
        requests.parse_body(EmbedRequest, {"inputs": [0] * 5000, "normalize": "yes"}, wide)
    assert len(calls) == 2  # once per field at fault, not once per item


def test_a_number_too_long_to_parse_is_400_not_500(client) -> None:
    body = b'{"inputs": "x", "ignored": ' + b"9" * 5000 + b"}"
    assert "not JSON" in error_of(client.post("/embed", content=body), 400)


def test_an_openai_model_name_that_cannot_be_sent_back_is_400(client) -> None:
    body = b'{"input": "x", "model": "\\ud800"}'
    assert "model holds a lone surrogate" in error_of(client.post("/v1/embeddings", content=body), 400)


def test_an_empty_openai_input_is_named_as_openai_names_it(client) -> None:
    assert error_of(client.post("/v1/embeddings", json={"input": []}), 400).startswith(
        "`input` cannot be empty"
    )


def test_a_client_that_leaves_mid_body_is_a_client_error(client) -> None:
    import asyncio

    from starlette.requests import Request

    from langtrim.runtime.server.requests import ApiError, read_json

    messages = [
        {"type": "http.request", "body": b'{"inputs": ', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0)

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(ApiError) as refused:
        asyncio.run(read_json(request, LIMITS))
    assert refused.value.status == 499 and refused.value.error == "client disconnected"


def test_malformed_json_is_400(client) -> None:
    for body in (b"{not json", b"", b"\xff\xfe", b"[" * 20_000):
        assert "not JSON" in error_of(client.post("/embed", content=body), 400)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"inputs": 5}, "inputs must be a string or a list of strings, got a number"),
        ({"inputs": ["a", None]}, "inputs[1] is null"),
        ({}, "inputs is missing"),
        (["a"], "the body must be a JSON object, got a list"),
        ({"inputs": "a", "normalize": "yes"}, "normalize"),
        ({"inputs": "a", "truncate": 1}, "truncate"),
    ],
)
def test_wrong_types_are_422_naming_the_field(client, body, expected) -> None:
    assert expected in error_of(client.post("/embed", json=body), 422)


def test_openai_encoding_format_other_than_float_or_base64_is_400(client) -> None:
    response = client.post("/v1/embeddings", json={"input": "x", "encoding_format": "hex"})
    assert "encoding_format" in error_of(response, 400)


def test_a_lone_surrogate_is_422(client) -> None:
    detail = error_of(client.post("/embed", content=b'{"inputs": ["ok", "\\ud800"]}'), 422)
    assert "inputs[1]" in detail and "surrogate" in detail


def test_unknown_paths_and_methods_answer_json(client) -> None:
    assert "GET /nope" in error_of(client.get("/nope"), 404)
    assert "Method Not Allowed" in error_of(client.get("/embed"), 405)


# --- /info, /metrics, /openapi.json ------------------------------------------------------------------------


def test_info_has_teis_fields_and_the_bundles(client, classifier, encoder) -> None:
    info = client.get("/info").json()
    manifest = encoder.manifest
    assert info["model_id"] == info["served_model_name"] == "xlmr" and info["model_dtype"] == "none"
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["max_input_length"] == manifest.max_length and info["max_client_batch_size"] == 8
    assert info["max_concurrent_requests"] == 4 and info["max_batch_tokens"] == 16_384
    assert info["auto_truncate"] is False and isinstance(info["version"], str)
    bundle = info["langtrim"]
    assert bundle["languages"] == ["fr"] and bundle["task"] == "feature-extraction"
    assert bundle["vocab"] == {"original_size": 250_002, "kept_size": manifest.vocab.kept_size}
    assert bundle["quantization"] == {"mode": "none", "embeddings": "fp32"}
    assert bundle["dimension"] == 32 and bundle["parity"]["passed"] is True
    assert bundle["limits"]["max_texts"] == 8 and bundle["batching"] is True
    classes = classifier.get("/info").json()["model_type"]["classifier"]
    assert classes["label2id"] == {label: int(i) for i, label in classes["id2label"].items()}


def test_metrics_count_requests_errors_texts_tokens_and_latency(client, texts) -> None:
    ok, too_many = (
        'langtrim_requests_total{endpoint="/embed",status="200"}',
        'langtrim_request_errors_total{endpoint="/embed",error="too many texts"}',
    )
    texts_total, tokens_total = (
        'langtrim_texts_total{endpoint="/embed"}',
        'langtrim_tokens_total{endpoint="/embed"}',
    )
    latency = 'langtrim_request_duration_seconds_count{endpoint="/embed"}'
    before = {name: metric(client, name) for name in (ok, too_many, texts_total, tokens_total, latency)}
    client.post("/embed", json={"inputs": texts[:3]})
    client.post("/embed", json={"inputs": ["a"] * 9})
    after = {name: metric(client, name) for name in before}
    assert after[ok] == before[ok] + 1 and after[too_many] == before[too_many] + 1
    assert after[texts_total] == before[texts_total] + 3 and after[tokens_total] > before[tokens_total] + 3
    assert after[latency] == before[latency] + 2
    assert client.get("/metrics").headers["content-type"].startswith("text/plain; version=0.0.4")


def test_openapi_lists_the_routes_of_the_bundles_task_with_the_limits(client, classifier) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    assert client.get("/api-doc/openapi.json").json() == schema
    embedding_routes = {"/embed", "/embed_all", "/similarity", "/v1/embeddings", "/embeddings", "/v1/models"}
    common = {"/", "/invocations", "/tokenize", "/decode", "/health", "/ping", "/info", "/metrics"}
    assert set(schema["paths"]) == embedding_routes | common
    inputs = schema["components"]["schemas"]["EmbedRequest"]["properties"]["inputs"]["anyOf"]
    assert {"type": "string", "minLength": 1, "maxLength": 2048} in inputs
    assert any(o.get("maxItems") == 8 for o in inputs)
    assert set(classifier.get("/openapi.json").json()["paths"]) == common | {"/predict"}
    assert "swagger-ui" in client.get("/docs").text


# --- work off the event loop: queue, batching, failures -----------------------------------------------------


class Gate:
    """Holds the inference thread at the start of each round until released; counts rounds entered."""

    def __init__(self, batcher) -> None:
        self.open, self.entered, self._run = threading.Event(), threading.Semaphore(0), batcher._run_round
        batcher._run_round = self

    def __call__(self, jobs):
        self.entered.release()
        self.open.wait(30)
        return self._run(jobs)


def post_in_thread(client: TestClient, body: dict, results: list) -> threading.Thread:
    """POST /embed from another thread; appends (body, response) to `results`."""
    thread = threading.Thread(target=lambda: results.append((body, client.post("/embed", json=body))))
    thread.start()
    return thread


def while_one_request_is_held(client: TestClient, batcher, send):
    """(send()'s response, the held request's response): `send` runs while one request holds the inference
    thread, so the server has one request in flight."""
    gate, results = Gate(batcher), []
    thread = post_in_thread(client, {"inputs": "held"}, results)
    assert gate.entered.acquire(timeout=30)
    response = send()
    gate.open.set()
    thread.join(30)
    return response, results[0][1]


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_requests_waiting_together_run_in_one_round_with_the_same_vectors(embedding_bundle, encoder, texts):
    app = create_app(embedding_bundle, threads=1)
    batcher = app.state.langtrim.batcher
    with TestClient(app) as started:
        ready(started)
        gate, results, threads = Gate(batcher), [], []
        threads.append(post_in_thread(started, {"inputs": ["first"]}, results))
        assert gate.entered.acquire(timeout=30)  # the first request holds the inference thread
        threads += [post_in_thread(started, {"inputs": [t]}, results) for t in texts[:4]]
        wait_for(lambda: batcher.inflight == 5)
        gate.open.set()
        for thread in threads:
            thread.join(30)
    assert batcher.batch_sizes[4] >= 1  # the four waiting requests ran as one round
    assert len(results) == 5 and all(response.status_code == 200 for _, response in results)
    for body, response in results:
        assert np.abs(np.array(response.json()) - encoder.embed(body["inputs"])).max() <= SAME


def test_without_batching_each_request_runs_alone(embedding_bundle, texts) -> None:
    app = create_app(embedding_bundle, threads=1, batching=False)
    with TestClient(app) as started:
        ready(started)
        results: list = []
        for thread in [post_in_thread(started, {"inputs": [t]}, results) for t in texts]:
            thread.join(30)
    assert [response.status_code for _, response in results] == [200] * len(texts)
    assert set(app.state.langtrim.batcher.batch_sizes) == {1}


def test_a_bug_in_inference_is_a_500_json_and_the_server_keeps_serving(embedding_bundle, caplog) -> None:
    app = create_app(embedding_bundle, threads=1)
    batcher = app.state.langtrim.batcher
    with TestClient(app, raise_server_exceptions=False) as started:
        ready(started)
        working = batcher._run_round

        def fail_once(jobs):
            batcher._run_round = working
            raise RuntimeError("boom")

        batcher._run_round = fail_once
        with caplog.at_level("ERROR", logger="langtrim.runtime.server.app"):
            failed = started.post("/embed", json={"inputs": "x"}, headers={"x-request-id": "bug-1"})
        assert "a bug in langtrim" in error_of(failed, 500)
        assert "request bug-1 (POST /embed) failed: boom" in caplog.text
        assert started.post("/embed", json={"inputs": "x"}).status_code == 200


def test_a_full_server_answers_429_with_retry_after(embedding_bundle) -> None:
    app = create_app(embedding_bundle, threads=1, limits=ServerLimits(max_inflight=1, retry_after_seconds=2))
    with TestClient(app) as started:
        ready(started)
        send = lambda: started.post("/embed", json={"inputs": "one too many"})  # noqa: E731
        response, held = while_one_request_is_held(started, app.state.langtrim.batcher, send)
    assert "overloaded" in error_of(response, 429) and response.headers["retry-after"] == "2"
    assert held.status_code == 200


def _answer(connection: socket.socket) -> str:
    """What the server sent back on a raw connection, up to the end of a JSON body or the connection."""
    received = b""
    while not received.endswith(b"}") and (chunk := connection.recv(4096)):
        received += chunk
    return received.decode("latin-1")


def _connections(port: int, count: int, first_bytes: bytes) -> list[socket.socket]:
    """`count` raw connections to the server, each having sent `first_bytes` and nothing more."""
    connections = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
    for connection in connections:
        connection.sendall(first_bytes)
    return connections


def _server_command(bundle: Path, port: int, *options: str) -> list[str]:
    return [*SERVER_MODULE, str(bundle), "--port", str(port), "--threads", "1", *options]


def test_stalled_uploads_hold_no_place_and_time_out_with_408(embedding_bundle) -> None:
    """64 clients that send headers and 5 bytes of body, then stall, once made every valid request 503."""
    port = free_port()
    command = _server_command(embedding_bundle, port, "--max-inflight", "2", "--body-timeout-seconds", "2")
    with running_server(command, port) as server:
        head = b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        stalled = _connections(port, 16, head + b'{"inp')
        started = time.monotonic()
        for _ in range(4):  # more than max_inflight, one after the other
            assert (
                httpx.post(f"{server.url}/embed", json={"inputs": "still served"}, timeout=30).status_code
                == 200
            )
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
        answers = [_answer(connection) for connection in stalled]
        waited = time.monotonic() - started
        for connection in stalled:
            connection.close()
    assert all(answer.startswith("HTTP/1.1 408") and "did not arrive" in answer for answer in answers), (
        answers[0]
    )
    assert waited < 30


def test_connections_that_trickle_their_headers_are_closed(embedding_bundle) -> None:
    """Slowloris: a header line now and then once held a connection forever (any byte reset uvicorn's timer)."""
    port = free_port()
    command = _server_command(
        embedding_bundle, port, "--header-timeout-seconds", "2", "--max-connections", "32"
    )
    with running_server(command, port) as server:
        trickling = _connections(port, 24, b"POST /embed HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for connection in trickling:
            connection.sendall(b"X-Slow: 1\r\n")  # some bytes, never the end of the headers
        closed = [connection.recv(1) == b"" for connection in trickling]
        waited = time.monotonic() - started
        assert httpx.post(f"{server.url}/embed", json={"inputs": "served"}, timeout=30).status_code == 200
        for connection in trickling:
            connection.close()
    assert all(closed) and waited < 20


def test_an_api_key_guards_every_route_but_health(embedding_bundle) -> None:
    app = create_app(embedding_bundle, threads=1, api_key="s3cret")
    with TestClient(app) as started:
        ready(started)
        refused = started.post("/embed", json={"inputs": "x"})
        assert "API key" in error_of(refused, 401) and refused.headers["www-authenticate"] == "Bearer"
        assert started.get("/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert started.get("/metrics").status_code == 401
        ok = started.post("/embed", json={"inputs": "x"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert started.get("/health").status_code == 200


def test_the_api_key_can_come_from_the_environment_and_is_not_printed(embedding_bundle) -> None:
    port = free_port()
    env = {**os.environ, "LANGTRIM_API_KEY": "from-env-key"}
    shown = subprocess.run([*SERVER_MODULE, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "from-env-key" not in shown.stdout
    with running_server(_server_command(embedding_bundle, port), port, env=env) as server:
        assert httpx.post(f"{server.url}/embed", json={"inputs": "x"}, timeout=30).status_code == 401
        allowed = {"Authorization": "Bearer from-env-key"}
        assert (
            httpx.post(f"{server.url}/embed", json={"inputs": "x"}, headers=allowed, timeout=30).status_code
            == 200
        )


def test_a_body_that_says_it_is_not_json_is_415(client) -> None:
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        response = client.post("/embed", content=b'{"inputs": "x"}', headers={"Content-Type": content_type})
        assert "Content-Type: application/json" in error_of(response, 415), content_type
    for content_type in ("application/json", "application/json; charset=utf-8", "application/vnd.api+json"):
        response = client.post("/embed", content=b'{"inputs": "x"}', headers={"Content-Type": content_type})
        assert response.status_code == 200, content_type


def test_requests_carry_an_id_in_and_out(client) -> None:
    mine = client.post("/embed", json={"inputs": "x"}, headers={"x-request-id": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    generated = client.post("/embed", json={"inputs": "x"}, headers={"x-request-id": "bad id " * 30})
    assert len(generated.headers["x-request-id"]) == 32 and generated.headers["x-request-id"] != "trace-42"
    assert client.get("/nope").headers["x-request-id"]


def test_cors_is_off_unless_an_origin_is_allowed(embedding_bundle) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(embedding_bundle, threads=1)) as closed:
        ready(closed)
        assert "access-control-allow-origin" not in closed.options("/embed", headers=preflight).headers
    with TestClient(create_app(embedding_bundle, threads=1, cors_origins=["https://app.example"])) as open_:
        ready(open_)
        answer = open_.options("/embed", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "https://app.example"
        other = open_.options("/embed", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_request_over_the_token_budget_is_422(embedding_bundle, texts) -> None:
    limits = ServerLimits(max_texts=64, max_batch_tokens=100)
    with TestClient(create_app(embedding_bundle, threads=1, limits=limits)) as started:
        ready(started)
        detail = error_of(started.post("/embed", json={"inputs": (texts * 20)[:60]}), 422)
        assert "tokens for the model to run; the limit is 100 per request" in detail
        assert started.post("/embed", json={"inputs": texts[:2]}).status_code == 200


def test_the_access_log_names_each_request(embedding_bundle, caplog) -> None:
    with TestClient(create_app(embedding_bundle, threads=1, access_log=True)) as started:
        ready(started)
        with caplog.at_level("INFO", logger="langtrim.access"):
            started.post("/embed", json={"inputs": "x"}, headers={"x-request-id": "trace-7"})
    assert any("POST /embed 200" in line and "request_id=trace-7" in line for line in caplog.messages)


def test_a_round_drops_the_jobs_of_requests_that_went_away(embedding_bundle) -> None:
    import asyncio

    from langtrim.runtime.server.batching import Batcher, Request

    async def take() -> list[list[str]]:
        batcher = Batcher(ServerLimits(), batching=True)
        tasks = [asyncio.create_task(batcher.run(Request([text]))) for text in ("a", "b", "c")]
        await asyncio.sleep(0)  # the three jobs are queued
        tasks[1].cancel()
        await asyncio.sleep(0)
        rounds = [[job.request.texts[0] for job in batcher._take_round()]]
        for task in (tasks[0], tasks[2]):
            task.cancel()
        return rounds

    assert asyncio.run(take()) == [["a", "c"]]


# --- the real server process --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["module", "cli"])
def test_the_server_process_serves_embeddings_without_torch(embedding_bundle, encoder, command) -> None:
    import httpx

    port = free_port()
    launcher = (
        SERVER_MODULE if command == "module" else [str(Path(sys.executable).parent / "langtrim"), "serve"]
    )
    with running_server(
        [*launcher, str(embedding_bundle), "--port", str(port), "--threads", "1"], port
    ) as server:
        response = httpx.post(f"{server.url}/embed", json={"inputs": ["Bonjour", "Merci"]}, timeout=10)
        assert response.status_code == 200
        assert np.abs(np.array(response.json()) - encoder.embed(["Bonjour", "Merci"])).max() <= SAME
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        assert "torch" not in maps and "transformers" not in maps
    assert "Finished server process" in server.log


def test_the_server_writes_no_onnxruntime_telemetry_state(embedding_bundle, tmp_path) -> None:
    """onnxruntime's Linux wheels keep a telemetry device id under ~/.cache/Microsoft; the server opts out."""
    import httpx

    plain_home, server_home = tmp_path / "plain", tmp_path / "server"
    plain_home.mkdir()
    server_home.mkdir()
    # onnxruntime also stays quiet when CI or ORT_RUNNING_UNIT_TESTS is set: unset them, or CI would skip
    quieting = ("ORT_DISABLE_TELEMETRY", "ORT_RUNNING_UNIT_TESTS", "CI", "XDG_CACHE_HOME")
    env = {k: v for k, v in os.environ.items() if k not in quieting}
    session = f"import onnxruntime; onnxruntime.InferenceSession('{embedding_bundle / 'model.onnx'}')"
    subprocess.run(
        [sys.executable, "-c", session], env={**env, "HOME": str(plain_home)}, check=True, timeout=60
    )
    if not list(plain_home.rglob("*")):
        pytest.skip("this onnxruntime keeps no telemetry state on disk: nothing to check")
    port = free_port()
    command = [*SERVER_MODULE, str(embedding_bundle), "--port", str(port), "--threads", "1"]
    with running_server(command, port, env={**env, "HOME": str(server_home)}) as server:
        assert httpx.post(f"{server.url}/embed", json={"inputs": "Bonjour"}, timeout=10).status_code == 200
    assert list(server_home.rglob("*")) == []


def test_the_encoder_writes_no_onnxruntime_telemetry_state(embedding_bundle, tmp_path) -> None:
    """The library opts out too: it runs inside users' services."""
    quieting = ("ORT_DISABLE_TELEMETRY", "ORT_RUNNING_UNIT_TESTS", "CI", "XDG_CACHE_HOME")
    env = {k: v for k, v in os.environ.items() if k not in quieting}
    plain_home, encoder_home = tmp_path / "plain", tmp_path / "encoder"
    plain_home.mkdir()
    encoder_home.mkdir()
    session = f"import onnxruntime; onnxruntime.InferenceSession('{embedding_bundle / 'model.onnx'}')"
    subprocess.run(
        [sys.executable, "-c", session], env={**env, "HOME": str(plain_home)}, check=True, timeout=60
    )
    if not list(plain_home.rglob("*")):
        pytest.skip("this onnxruntime keeps no telemetry state on disk: nothing to check")
    embed = f"from langtrim.runtime import Encoder; Encoder('{embedding_bundle}').embed(['Bonjour'])"
    subprocess.run(
        [sys.executable, "-c", embed], env={**env, "HOME": str(encoder_home)}, check=True, timeout=60
    )
    assert list(encoder_home.rglob("*")) == []


def test_the_server_command_prints_one_line_for_a_bad_bundle(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SERVER_MODULE, str(tmp_path / "missing")], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: bundle {str(tmp_path / 'missing')!r} does not exist: give the directory langtrim pack wrote"
    ]


def test_a_port_in_use_is_one_line_naming_the_port(embedding_bundle) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*SERVER_MODULE, str(embedding_bundle), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "--port" in result.stderr and "Traceback" not in result.stderr


def test_langtrim_serve_without_the_serve_extra_says_how_to_install_it(embedding_bundle) -> None:
    """Simulated by hiding starlette from a fresh interpreter; the message names the extra."""
    code = (
        "import sys; sys.modules['starlette'] = None; sys.argv = ['langtrim', 'serve', sys.argv[1]]\n"
        "from langtrim.packager.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(embedding_bundle)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: langtrim serve needs the serve extra (starlette is not installed): pip install 'langtrim[serve]'"
    ]


# --- module boundaries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("langtrim.runtime.encoder", ("starlette", "uvicorn", "pydantic")),
        ("langtrim.runtime.server.limits", ("starlette", "uvicorn", "pydantic", "onnxruntime")),
        ("langtrim.runtime.server.batching", ("starlette", "uvicorn", "pydantic")),
        ("langtrim.runtime.server", ("torch", "transformers", "typer")),
    ],
)
def test_modules_import_only_their_stack(module: str, forbidden: tuple[str, ...]) -> None:
    code = f"import sys, {module}\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]", f"{module} imports {result.stdout.strip()}"
