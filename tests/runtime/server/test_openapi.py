"""langtrim's OpenAPI document against text-embeddings-inference's (tests/data/tei-openapi.json, TEI 1.9.3).

Every route langtrim serves is TEI's (same method, same request fields, nothing TEI has missing), one of
the routes TEI's router serves without documenting them, or OpenAI's; the error shape and /info's
required fields are TEI's.
"""

import json
from pathlib import Path
from typing import Any

import pytest

TEI = json.loads((Path(__file__).parents[2] / "data" / "tei-openapi.json").read_text())
# Routes of TEI's router (router/src/http/server.rs) that its document leaves out, and the documented
# route each answers as.
TEI_UNDOCUMENTED = {"/": None, "/invocations": None, "/ping": "/health", "/embeddings": "/v1/embeddings"}
OPENAI_ONLY = {"/v1/models"}
# Fields langtrim's requests add to TEI's: an extension, never a TEI field answered differently.
ADDED_FIELDS = {("/predict", "prompt_name")}


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _request_fields(document: dict[str, Any], path: str) -> set[str]:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return set(_resolve(document, body)["properties"])


@pytest.mark.parametrize("bundle", ["client", "classifier"])
def test_every_route_is_teis_or_openais_with_teis_request_fields(bundle, request) -> None:
    ours = request.getfixturevalue(bundle).get("/openapi.json").json()
    for path, operations in ours["paths"].items():
        documented = TEI_UNDOCUMENTED.get(path, path)
        if path in OPENAI_ONLY or documented is None:
            assert path in OPENAI_ONLY or set(operations) <= {"get", "post"}
            continue
        assert documented in TEI["paths"], f"{path} is not a TEI route"
        for method in operations:
            if path == "/" and method == "get":
                continue
            assert method in TEI["paths"][documented], f"TEI has no {method.upper()} {path}"
            if method == "post":
                tei_fields = _request_fields(TEI, documented)
                our_fields = _request_fields(ours, path) - {f for p, f in ADDED_FIELDS if p == path}
                assert our_fields == tei_fields, (path, our_fields ^ tei_fields)


def test_nested_request_fields_and_the_error_shape_are_teis(client) -> None:
    ours = client.get("/openapi.json").json()["components"]["schemas"]
    theirs = TEI["components"]["schemas"]
    for name in ("SimilarityInput", "SimilarityParameters", "SimpleToken"):
        assert set(ours[name]["properties"]) == set(theirs[name]["properties"]), name
    assert set(ours["ErrorResponse"]["properties"]) == set(theirs["ErrorResponse"]["properties"])
    assert set(ours["ErrorResponse"]["properties"]["error_type"]["enum"]) == set(theirs["ErrorType"]["enum"])


def test_info_has_every_field_tei_requires(client) -> None:
    info = client.get("/info").json()
    assert set(TEI["components"]["schemas"]["Info"]["required"]) <= set(info)
    assert set(TEI["components"]["schemas"]["Info"]["properties"]) <= set(info)


def test_the_main_and_health_routes_of_teis_router_are_served(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"post", "get"} == set(paths["/"]) and "post" in paths["/invocations"]
    assert "get" in paths["/ping"] and "post" in paths["/embeddings"]
