"""/rerank, /predict with pairs and /entities on tiny reranker and NER bundles, in TEI's shapes."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from langtrim.runtime import Encoder, InputError
from langtrim.runtime.server import create_app
from tests.support.server import LIMITS, ready
from tests.support.task_models import pack_task_bundle


@pytest.fixture(scope="module")
def reranker_bundle(task_model, sentences, tmp_path_factory) -> Path:
    return pack_task_bundle(task_model("xlmr-reranker"), sentences, tmp_path_factory)


@pytest.fixture(scope="module")
def reranker(reranker_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(reranker_bundle, threads=1, limits=LIMITS)) as started:
        yield ready(started)


@pytest.fixture(scope="module")
def ner(task_model, sentences, tmp_path_factory) -> Iterator[TestClient]:
    bundle = pack_task_bundle(task_model("xlmr-ner"), sentences, tmp_path_factory)
    with TestClient(create_app(bundle, threads=1, limits=LIMITS)) as started:
        yield ready(started)


def test_rerank_lists_the_texts_best_first_as_tei(reranker, reranker_bundle, sentences) -> None:
    query, texts = sentences("fr")[0], sentences("fr")[1:6]
    ranks = reranker.post("/rerank", json={"query": query, "texts": texts, "return_text": True}).json()
    scores = Encoder(reranker_bundle).rerank(query, texts)
    assert [r["index"] for r in ranks] == np.argsort(-scores, kind="stable").tolist()
    assert np.allclose([r["score"] for r in ranks], np.sort(scores)[::-1], atol=1e-6)
    assert all(r["text"] == texts[r["index"]] for r in ranks)
    raw = reranker.post("/rerank", json={"query": query, "texts": texts, "raw_scores": True}).json()
    assert "text" not in raw[0]
    assert np.allclose(
        1 / (1 + np.exp(-np.asarray([r["score"] for r in raw]))), [r["score"] for r in ranks], atol=1e-6
    )


def test_rerank_refuses_empty_texts_and_long_pairs_unless_truncated(reranker, sentences) -> None:
    empty = reranker.post("/rerank", json={"query": "q", "texts": []})
    assert empty.status_code == 400 and empty.json()["error_type"] == "Empty"
    long = "la " * 600  # 600 tokens, within the characters limit
    refused = reranker.post("/rerank", json={"query": "q", "texts": [long]})
    assert refused.status_code == 422 and "truncate" in refused.json()["error"]
    assert reranker.post("/rerank", json={"query": "q", "texts": [long], "truncate": True}).status_code == 200
    no_room = reranker.post("/rerank", json={"query": long, "texts": ["b"], "truncate": True})
    assert no_room.status_code == 422 and "shorten the query" in no_room.json()["error"]


def test_a_lone_surrogate_in_a_query_or_a_pair_is_named(reranker_bundle) -> None:
    encoder = Encoder(reranker_bundle)
    with pytest.raises(InputError, match=r"query holds a lone surrogate \(U\+D800"):
        encoder.rerank("q \ud800", ["b"])
    with pytest.raises(InputError, match=r"texts\[1\]\[1\] holds a lone surrogate"):
        encoder.probabilities([("a", "b"), ("a", "\udfff")])  # type: ignore[list-item]


def test_predict_takes_pairs_on_a_pair_bundle(reranker, reranker_bundle) -> None:
    single = reranker.post("/predict", json={"inputs": ["Où est la gare ?", "La gare est ici."]}).json()
    batch = reranker.post(
        "/predict", json={"inputs": [["Où est la gare ?", "La gare est ici."], ["Bonjour"]]}
    ).json()
    expected = Encoder(reranker_bundle).probabilities([("Où est la gare ?", "La gare est ici.")])[0, 0]
    assert single[0]["label"] == "LABEL_0" and abs(single[0]["score"] - expected) < 1e-6
    assert batch[0] == single and len(batch) == 2


def test_routes_of_other_tasks_are_teis_424(reranker, ner, classifier) -> None:
    assert reranker.post("/embed", json={"inputs": "a"}).status_code == 424
    wrong = classifier.post("/rerank", json={"query": "a", "texts": ["b"]})
    assert wrong.status_code == 424 and "not a re-ranker" in wrong.json()["error"]
    assert classifier.post("/predict", json={"inputs": ["a", "b"]}).status_code == 422  # single texts only
    assert ner.post("/predict", json={"inputs": "a"}).status_code == 424
    assert reranker.get("/info").json()["model_type"]["reranker"]["id2label"] == {"0": "LABEL_0"}


def test_entities_route_gives_offsets_into_each_text(ner, sentences) -> None:
    texts = sentences("fr")[:3]
    found = ner.post("/entities", json={"inputs": texts}).json()
    assert len(found) == 3 and any(found)
    for text, spans in zip(texts, found, strict=True):
        assert all(text[s["start"] : s["end"]] == s["text"] and s["label"] in ("PER", "LOC") for s in spans)
    paths = ner.get("/openapi.json").json()["paths"]
    assert "/entities" in paths and "/embed" not in paths


def test_rerank_takes_and_returns_teis_fields(reranker) -> None:
    from tests.runtime.server.test_openapi import TEI, _request_fields

    ours = reranker.get("/openapi.json").json()
    assert _request_fields(ours, "/rerank") == _request_fields(TEI, "/rerank")
    theirs = TEI["components"]["schemas"]["Rank"]["properties"]
    assert set(ours["components"]["schemas"]["Rank"]["properties"]) == set(theirs)
