"""Text the bundle does not cover, at serve time: a header, a counter, and `--on-uncovered reject`."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from langtrim.runtime.errors import UsageError
from langtrim.runtime.server import create_app
from langtrim.runtime.server.options import read_options
from tests.support.server import LIMITS, ready

RUSSIAN = "Я не знаю, что ты хочешь от меня."


@pytest.fixture(scope="module")
def rejecting(embedding_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(embedding_bundle, threads=1, limits=LIMITS, on_uncovered="reject")) as started:
        yield ready(started)


def _uncovered_count(client: TestClient, endpoint: str) -> int:
    prefix = f'langtrim_uncovered_texts_total{{endpoint="{endpoint}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return int(lines[0].removeprefix(prefix)) if lines else 0


def test_uncovered_texts_are_served_named_in_a_header_and_counted(client: TestClient, texts) -> None:
    before = _uncovered_count(client, "/embed")
    response = client.post("/embed", json={"inputs": [texts[0], RUSSIAN, texts[1]]})
    assert response.status_code == 200 and len(response.json()) == 3
    assert response.headers["x-langtrim-uncovered"] == "1"
    assert response.headers["x-langtrim-uncovered-indices"] == "1"
    assert _uncovered_count(client, "/embed") == before + 1


def test_covered_texts_say_none_is_uncovered(client: TestClient, texts) -> None:
    response = client.post("/v1/embeddings", json={"input": texts[:2]})
    assert response.status_code == 200
    assert (
        response.headers["x-langtrim-uncovered"] == "0"
        and "x-langtrim-uncovered-indices" not in response.headers
    )


def test_reject_answers_tei_422_naming_the_languages(rejecting: TestClient, texts) -> None:
    response = rejecting.post("/embed", json={"inputs": [texts[0], RUSSIAN, RUSSIAN]})
    assert response.status_code == 422
    body = response.json()
    assert body["error_type"] == "Validation"
    assert body["error"].startswith("`inputs[1]` (and 1 more) is not in a language this model covers (fr)")
    assert response.headers["x-langtrim-uncovered-indices"] == "1,2"


def test_reject_answers_openai_400_invalid_request(rejecting: TestClient) -> None:
    response = rejecting.post("/v1/embeddings", json={"input": RUSSIAN})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "uncovered_text"
    assert "`input` is not in a language this model covers (fr)" in error["message"]


def test_reject_still_serves_covered_text(rejecting: TestClient, texts) -> None:
    response = rejecting.post(
        "/similarity", json={"inputs": {"source_sentence": texts[0], "sentences": texts[1:3]}}
    )
    assert response.status_code == 200 and len(response.json()) == 2


def test_on_uncovered_is_an_option_and_a_variable() -> None:
    assert read_options(["b", "--on-uncovered", "reject"], {}).on_uncovered == "reject"
    assert read_options(["b"], {"LANGTRIM_ON_UNCOVERED": "reject"}).on_uncovered == "reject"
    assert read_options(["b"], {}).on_uncovered == "allow"
    with pytest.raises(UsageError, match="LANGTRIM_ON_UNCOVERED='refuse' is not one of allow, reject"):
        read_options(["b"], {"LANGTRIM_ON_UNCOVERED": "refuse"})


def test_info_shows_the_thresholds_and_the_policy(
    client: TestClient, rejecting: TestClient, embedding_bundle: Path
) -> None:
    from langtrim.runtime.bundle import read_manifest

    served = client.get("/info").json()["langtrim"]
    assert served["on_uncovered"] == "allow"
    assert rejecting.get("/info").json()["langtrim"]["on_uncovered"] == "reject"
    thresholds = read_manifest(embedding_bundle, verify="none").coverage
    assert thresholds is not None and served["coverage"] == thresholds
