"""The OpenAPI 3.1 document of a `langtrim serve` instance, built from the pydantic models of the edge.

It lists only the routes the bundle's task serves and carries the server's limits as maxItems and
maxLength, so a client generator or a fuzzer (tests/test_server_fuzz.py runs schemathesis on it) knows
what the server accepts without reading the code.
"""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from langtrim.runtime import __version__
from langtrim.runtime.bundle import Manifest
from langtrim.runtime.server.limits import ServerLimits
from langtrim.runtime.server.schemas import (
    ClassifyRequest,
    EmbedRequest,
    ErrorBody,
    Health,
    Info,
    LabelScore,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    OpenAIError,
    OpenAIModelList,
)

_MODELS: tuple[type[BaseModel], ...] = (
    EmbedRequest,
    OpenAIEmbeddingRequest,
    ClassifyRequest,
    OpenAIEmbeddingResponse,
    LabelScore,
    ErrorBody,
    OpenAIError,
    OpenAIModelList,
    Health,
    Info,
)
_ERRORS = (
    (400, "the body is not JSON"),
    (413, "over a limit: body size, texts per request, characters or tokens per text"),
    (422, "the JSON does not match the request schema"),
    (503, "loading or overloaded: retry after the Retry-After header's seconds"),
)


def openapi_schema(
    manifest: Manifest, limits: ServerLimits, served: tuple[str, ...], dimension: int | None = None
) -> dict[str, Any]:
    """OpenAPI 3.1 for the POST routes in `served` and the GET routes, request limits included.

    `dimension`, the embeddings' size once the model is loaded, is the one value OpenAI's `dimensions`
    may take (the server does not shorten vectors).
    """
    _, top = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top["$defs"]
    _add_limits(schemas, limits)
    if dimension is not None:
        schemas["OpenAIEmbeddingRequest"]["properties"]["dimensions"] = {
            "anyOf": [{"const": dimension}, {"type": "null"}],
            "description": "the model's embedding size, if given: vectors are not shortened",
        }
    prompts = list(manifest.prompts)
    for name in ("EmbedRequest", "ClassifyRequest"):
        schemas[name]["properties"]["prompt_name"] = (
            {"anyOf": [{"enum": prompts}, {"type": "null"}]} if prompts else {"type": "null"}
        )
    errors = {str(code): {"description": text, **_json_content(_ref("ErrorBody"))} for code, text in _ERRORS}
    openai_errors = {code: {**error, **_json_content(_ref("OpenAIError"))} for code, error in errors.items()}

    def post(summary: str, request: str, response: dict[str, Any], shape: dict = errors) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "requestBody": {"required": True, **_json_content(_ref(request))},
                "responses": {"200": {"description": "OK", **_json_content(response)}, **shape},
            }
        }

    vector = {"type": "array", "items": {"type": "number"}}
    ranked = {"type": "array", "items": _ref("LabelScore")}
    posts: dict[str, Any] = {
        "/embed": post(
            "Embed texts (text-embeddings-inference)", "EmbedRequest", {"type": "array", "items": vector}
        ),
        "/v1/embeddings": post(
            "Embed texts (OpenAI)", "OpenAIEmbeddingRequest", _ref("OpenAIEmbeddingResponse"), openai_errors
        ),
        "/classify": post(
            "Labels of texts, best first (a list per text when inputs is a list)",
            "ClassifyRequest",
            {"anyOf": [ranked, {"type": "array", "items": ranked}]},
        ),
    }
    paths = {path: operation for path, operation in posts.items() if path in served}
    paths["/health"] = _get("200 once the bundle is loaded and warmed up", _ref("Health"))
    paths["/health"]["get"]["responses"]["503"] = errors["503"]
    paths["/info"] = _get("What the bundle is: languages, vocabulary, quantization, parity", _ref("Info"))
    paths["/metrics"] = _get("Prometheus metrics", {"type": "string"}, "text/plain")
    if "/v1/embeddings" in served:
        paths["/v1/models"] = _get("The model this server serves (OpenAI)", _ref("OpenAIModelList"))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"langtrim: {manifest.source.name} ({', '.join(manifest.languages)})",
            "version": __version__,
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _add_limits(schemas: dict[str, Any], limits: ServerLimits) -> None:
    """The texts' limits as JSON Schema keywords on the `inputs` / `input` field of each request."""
    for name, key in (
        ("EmbedRequest", "inputs"),
        ("OpenAIEmbeddingRequest", "input"),
        ("ClassifyRequest", "inputs"),
    ):
        for option in schemas[name]["properties"][key]["anyOf"]:
            if option["type"] == "string":
                option["maxLength"] = limits.max_text_chars
            else:
                option.update(minItems=1, maxItems=limits.max_texts)
                option["items"]["maxLength"] = limits.max_text_chars


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _get(summary: str, response: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": "OK", "content": {media: {"schema": response}}}},
        }
    }
