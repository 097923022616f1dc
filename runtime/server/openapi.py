"""The OpenAPI 3.1 document of a `langtrim serve` instance, built from the pydantic models of the edge.

It lists only the routes the bundle's task serves and carries the server's limits as maxItems, maxLength
and id bounds, so a client generator or a fuzzer (tests/runtime/server/test_fuzz.py runs schemathesis on
it) knows what the server accepts without reading the code. The route names, request fields and error
shapes are text-embeddings-inference's and OpenAI's (tests/runtime/server/test_openapi.py diffs them
against TEI's own document).
"""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from langtrim.runtime import __version__
from langtrim.runtime.bundle import Manifest
from langtrim.runtime.server.limits import ServerLimits, speaks_openai
from langtrim.runtime.server.schemas import (
    DecodeRequest,
    EmbedAllRequest,
    EmbedRequest,
    EntitiesRequest,
    EntitySpan,
    ErrorResponse,
    Health,
    Info,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    OpenAIError,
    OpenAIModelList,
    Prediction,
    PredictRequest,
    Rank,
    RerankRequest,
    SimilarityRequest,
    SimpleToken,
    TokenizeRequest,
)

_MODELS: tuple[type[BaseModel], ...] = (
    EmbedRequest,
    EmbedAllRequest,
    SimilarityRequest,
    TokenizeRequest,
    DecodeRequest,
    PredictRequest,
    RerankRequest,
    Rank,
    EntitiesRequest,
    EntitySpan,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    Prediction,
    SimpleToken,
    ErrorResponse,
    OpenAIError,
    OpenAIModelList,
    Health,
    Info,
)
_ERRORS = (
    (400, "the body is not JSON, or a batch or text is empty"),
    (413, "the body is over the size limit"),
    (422, "the body does not match the schema, or a text is over a limit: texts, characters, tokens"),
    (429, "overloaded: retry after the Retry-After header's seconds"),
    (503, "loading: retry after the Retry-After header's seconds"),
)
_NUMBERS = {"type": "array", "items": {"type": "number"}}
_RANKING = {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}
# path -> (summary, request schema, response schema)
_POSTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "/embed": (
        "Embed texts (text-embeddings-inference)",
        {"$ref": "#/components/schemas/EmbedRequest"},
        {"type": "array", "items": _NUMBERS},
    ),
    "/embed_all": (
        "Every token's vector, not pooled",
        {"$ref": "#/components/schemas/EmbedAllRequest"},
        {"type": "array", "items": {"type": "array", "items": _NUMBERS}},
    ),
    "/similarity": (
        "Cosine similarity of source_sentence to each sentence",
        {"$ref": "#/components/schemas/SimilarityRequest"},
        _NUMBERS,
    ),
    "/tokenize": (
        "The bundle tokenizer's tokens",
        {"$ref": "#/components/schemas/TokenizeRequest"},
        {"type": "array", "items": {"type": "array", "items": {"$ref": "#/components/schemas/SimpleToken"}}},
    ),
    "/decode": (
        "Texts of token ids",
        {"$ref": "#/components/schemas/DecodeRequest"},
        {"type": "array", "items": {"type": "string"}},
    ),
    "/predict": (
        "Every label's score, best first (a list per text for a batch)",
        {"$ref": "#/components/schemas/PredictRequest"},
        {"anyOf": [_RANKING, {"type": "array", "items": _RANKING}]},
    ),
    "/rerank": (
        "Each text's relevance to the query, best first (a reranker bundle)",
        {"$ref": "#/components/schemas/RerankRequest"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Rank"}},
    ),
    "/entities": (
        "Each text's entities, with character offsets into it (langtrim's; a token-classification bundle)",
        {"$ref": "#/components/schemas/EntitiesRequest"},
        {"type": "array", "items": {"type": "array", "items": {"$ref": "#/components/schemas/EntitySpan"}}},
    ),
    "/v1/embeddings": (
        "Embed texts (OpenAI)",
        {"$ref": "#/components/schemas/OpenAIEmbeddingRequest"},
        {"$ref": "#/components/schemas/OpenAIEmbeddingResponse"},
    ),
}
_POSTS["/embeddings"] = (
    "Embed texts (OpenAI, text-embeddings-inference's path)",
    *_POSTS["/v1/embeddings"][1:],
)
_MAIN_ROUTES = ("/", "/invocations")


def openapi_schema(
    manifest: Manifest, limits: ServerLimits, served: tuple[str, ...], dimension: int | None = None
) -> dict[str, Any]:
    """OpenAPI 3.1 for the POST routes in `served` and the GET routes, request limits included.

    `dimension`, the embeddings' size once the model is loaded, bounds `dimensions`.
    """
    _, top = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top["$defs"]
    _add_limits(schemas, manifest, limits, dimension)
    errors = {
        str(code): {"description": text, **_json_content({"$ref": "#/components/schemas/ErrorResponse"})}
        for code, text in _ERRORS
    }
    openai_errors = {
        str(400 if code == 422 else code): {
            "description": text,
            **_json_content({"$ref": "#/components/schemas/OpenAIError"}),
        }
        for code, text in _ERRORS
    }
    main = next((path for path in ("/predict", "/entities") if path in served), "/embed")
    operations = {path: _POSTS[path] for path in served if path in _POSTS}
    for path in _MAIN_ROUTES:
        if path in served:
            summary, request, response = _POSTS[main]
            if main == "/embed":  # a similarity body is answered there too
                request = {"anyOf": [request, _POSTS["/similarity"][1]]}
                response = {"anyOf": [response, _POSTS["/similarity"][2]]}
            operations[path] = (f"The main route: {summary}", request, response)
    paths: dict[str, Any] = {
        path: {
            "post": {
                "summary": summary,
                "requestBody": {"required": True, **_json_content(request)},
                "responses": {
                    "200": {"description": "OK", **_json_content(response)},
                    **(openai_errors if speaks_openai(path) else errors),
                },
            }
        }
        for path, (summary, request, response) in operations.items()
    }
    for path in ("/health", "/", "/ping"):
        health = _get("200 once the bundle is loaded and warmed up", {"$ref": "#/components/schemas/Health"})
        health["get"]["responses"]["503"] = errors["503"]
        paths.setdefault(path, {}).update(health)
    paths["/info"] = _get(
        "TEI's model info, and the bundle's under langtrim", {"$ref": "#/components/schemas/Info"}
    )
    paths["/metrics"] = _get("Prometheus metrics", {"type": "string"}, "text/plain")
    if "/v1/embeddings" in served:
        paths["/v1/models"] = _get(
            "The model this server serves (OpenAI)", {"$ref": "#/components/schemas/OpenAIModelList"}
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"langtrim: {manifest.source.name} ({', '.join(manifest.languages)})",
            "version": __version__,
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _add_limits(
    schemas: dict[str, Any], manifest: Manifest, limits: ServerLimits, dimension: int | None
) -> None:
    """The limits as JSON Schema keywords: texts per request and characters per text (empty texts are
    refused), token ids within the vocabulary, dimensions within the model's, the accepted spellings of
    truncation_direction and the bundle's prompt names."""
    text = {"type": "string", "minLength": 1, "maxLength": limits.max_text_chars}
    texts = {"anyOf": [text, {"type": "array", "items": text, "minItems": 1, "maxItems": limits.max_texts}]}
    for name in ("EmbedRequest", "EmbedAllRequest", "TokenizeRequest", "EntitiesRequest"):
        schemas[name]["properties"]["inputs"] = texts
    schemas["OpenAIEmbeddingRequest"]["properties"]["input"] = texts
    single = {"type": "array", "items": text, "minItems": 1, "maxItems": 2 if manifest.pair_truncation else 1}
    schemas["PredictRequest"]["properties"]["inputs"] = {
        "anyOf": [
            text,
            single,
            {"type": "array", "items": single, "minItems": 1, "maxItems": limits.max_texts},
        ],
        "description": "a text, [text], or a batch [[text], ...]; pairs [a, b] need a pair-classifier bundle",
    }
    rerank = schemas["RerankRequest"]["properties"]
    rerank["query"] = text
    rerank["texts"] = {"type": "array", "items": text, "minItems": 1, "maxItems": limits.max_texts}
    similarity = schemas["SimilarityInput"]["properties"]
    similarity["source_sentence"] = text
    similarity["sentences"] = {
        "type": "array",
        "items": text,
        "minItems": 1,
        "maxItems": limits.max_texts - 1,
    }
    token_id = {"type": "integer", "minimum": 0, "maximum": manifest.vocab.kept_size - 1}
    ids = {"type": "array", "items": token_id}
    schemas["DecodeRequest"]["properties"]["ids"] = {
        "anyOf": [ids, {"type": "array", "items": ids, "minItems": 1, "maxItems": limits.max_texts}]
    }
    bound = {"type": "integer", "minimum": 1, **({"maximum": dimension} if dimension else {})}
    for name in ("EmbedRequest", "OpenAIEmbeddingRequest"):
        schemas[name]["properties"]["dimensions"] = {"anyOf": [bound, {"type": "null"}]}
    for schema in schemas.values():
        properties = schema.get("properties", {})
        if "truncation_direction" in properties:
            properties["truncation_direction"] = {
                "enum": ["right", "left", "Right", "Left"],
                "default": "right",
            }
        if "prompt_name" in properties:
            prompts = list(manifest.prompts)
            properties["prompt_name"] = (
                {"anyOf": [{"enum": prompts}, {"type": "null"}]} if prompts else {"type": "null"}
            )


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _get(summary: str, response: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": "OK", "content": {media: {"schema": response}}}},
        }
    }
