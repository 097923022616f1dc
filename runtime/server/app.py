"""The ASGI application of `langtrim serve`: the route table, state routes, errors as JSON, the lifespan.

The inference routes are text-embeddings-inference's (`tei`) and OpenAI's (`openai_api`), for the bundle's
task; a route of the other task answers TEI's 424 saying which routes apply. The state routes:

    GET /health  /  /ping      200 once the bundle is loaded and warmed up, else 503 (TEI's health routes)
    GET /info                  TEI's fields (model_id, max_input_length, ...), langtrim's under "langtrim"
    GET /metrics               Prometheus text
    GET /openapi.json  /api-doc/openapi.json  /docs    the OpenAPI document and a page that renders it

Every error is JSON in the route's API shape (`limits.error_response`): TEI's `{"error", "error_type"}`,
or OpenAI's error object on the OpenAI routes. Each POST route reads its body, is admitted, validates the
body against its pydantic model, then runs its handler (`_post`).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from langtrim.runtime import __version__
from langtrim.runtime.bundle import TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION, Manifest, read_manifest
from langtrim.runtime.server import entities, openai_api, rerank, tei
from langtrim.runtime.server.batching import Batcher, load
from langtrim.runtime.server.context import ServerState, state_of
from langtrim.runtime.server.guards import REQUEST_ID_HEADER, Guards
from langtrim.runtime.server.limits import DEFAULT_LIMITS, ApiError, ServerLimits, error_response, unavailable
from langtrim.runtime.server.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from langtrim.runtime.server.openapi import openapi_schema
from langtrim.runtime.server.requests import parse_body, read_json
from langtrim.runtime.server.schemas import (
    BundleInfo,
    DecodeRequest,
    EmbedAllRequest,
    EmbedRequest,
    EntitiesRequest,
    Health,
    Info,
    OpenAIEmbeddingRequest,
    PredictRequest,
    RerankRequest,
    SimilarityRequest,
    TokenizeRequest,
)
from langtrim.runtime.server.uncovered import INDICES_HEADER, UNCOVERED_HEADER, CoverageHeaders, OnUncovered

logger = logging.getLogger(__name__)

_Choose = Callable[[Any], tuple[type, tei.Handler]]  # a body -> its model and handler
_Endpoint = Callable[[Request], Awaitable[Response]]

# The POST routes of each task: path -> (request model, handler); / and /invocations are the main route.
_EMBEDDING_ROUTES: dict[str, tuple[type, tei.Handler]] = {
    "/embed": (EmbedRequest, tei.embed),
    "/embed_all": (EmbedAllRequest, tei.embed_all),
    "/similarity": (SimilarityRequest, tei.similarity),
    "/v1/embeddings": (OpenAIEmbeddingRequest, openai_api.embeddings),
    "/embeddings": (OpenAIEmbeddingRequest, openai_api.embeddings),
}
_CLASSIFIER_ROUTES: dict[str, tuple[type, tei.Handler]] = {"/predict": (PredictRequest, tei.predict)}
_RERANKER_ROUTES: dict[str, tuple[type, tei.Handler]] = {"/rerank": (RerankRequest, rerank.rerank)}
_ENTITY_ROUTES: dict[str, tuple[type, tei.Handler]] = {"/entities": (EntitiesRequest, entities.entities)}
_SHARED_ROUTES: dict[str, tuple[type, tei.Handler]] = {
    "/tokenize": (TokenizeRequest, tei.tokenize),
    "/decode": (DecodeRequest, tei.decode),
}
_MAIN_ROUTES = ("/", "/invocations")  # TEI's default route and AWS SageMaker's
# What model a task's route needs, for TEI's 424 where the bundle is another (/embed_sparse: none is served).
_NEEDS = {
    **dict.fromkeys(_EMBEDDING_ROUTES, "an embedding"),
    "/predict": "a classifier",
    "/rerank": "a re-ranker",
    "/entities": "a token-classification",
    "/embed_sparse": "a SPLADE",
}
_HEALTH_ROUTES = ("/health", "/ping")  # and GET /, which shares its route with POST / (`_post_routes`)
_OPENAPI_ROUTES = ("/openapi.json", "/api-doc/openapi.json")
_ENDPOINTS = frozenset(
    (
        *_EMBEDDING_ROUTES,
        *_CLASSIFIER_ROUTES,
        *_SHARED_ROUTES,
        *_MAIN_ROUTES,
        *_NEEDS,
        *_HEALTH_ROUTES,
        *_OPENAPI_ROUTES,
        "/info",
        "/metrics",
        "/docs",
        "/v1/models",
    )
)


def _post(choose: _Choose) -> _Endpoint:
    """A POST route: read the body (within its timeout, holding no place), admit the request (503 while
    loading, 429 when full), validate the body as the model `choose` picks for it, run the handler."""

    async def endpoint(request: Request) -> Response:
        state = state_of(request)
        data = await read_json(request, state.limits)
        model, handler = choose(data)
        async with state.batcher.admit():
            return await handler(request, parse_body(model, data, state.limits))

    return endpoint


def _fixed(model: type, handler: tei.Handler) -> _Choose:
    return lambda data: (model, handler)


# --- state routes -------------------------------------------------------------------------------------------


async def _health(request: Request) -> Response:
    state = state_of(request)
    if state.batcher.loaded is not None:
        return JSONResponse(Health().model_dump())
    if state.load_error is not None:
        raise ApiError(503, "failed", f"the bundle could not be loaded: {state.load_error}")
    raise unavailable("not ready", "the bundle is still loading", state.limits)


def _model_type(manifest: Manifest) -> dict[str, Any]:
    """TEI's model_type: a one-label pair classifier is its "reranker"; a token classifier, which TEI does
    not serve, is langtrim's "token_classifier"."""
    if manifest.task != "feature-extraction":
        labels = manifest.labels
        kind = "token_classifier" if manifest.task == TOKEN_CLASSIFICATION else "classifier"
        if rerank.is_reranker(labels, manifest.pair_truncation):
            kind = "reranker"
        return {
            kind: {
                "id2label": {str(i): label for i, label in enumerate(labels)},
                "label2id": {label: i for i, label in enumerate(labels)},
            }
        }
    return {"embedding": {"pooling": manifest.pooling}}


async def _info(request: Request) -> Response:
    state = state_of(request)
    manifest, loaded, limits = state.manifest, state.batcher.loaded, state.limits
    info = Info(
        model_id=manifest.source.name,
        model_dtype=manifest.quantization.mode,
        served_model_name=manifest.source.name,
        model_type=_model_type(manifest),
        max_concurrent_requests=limits.max_inflight,
        max_input_length=manifest.max_length,
        max_batch_tokens=limits.max_batch_tokens,
        max_batch_requests=None if state.batcher.batching else 1,
        max_client_batch_size=limits.max_texts,
        auto_truncate=limits.auto_truncate,
        tokenization_workers=1,  # the inference thread tokenizes
        version=__version__,
        langtrim=BundleInfo(
            description=manifest.source.description,
            task=manifest.task,
            languages=list(manifest.languages),
            vocab=asdict(manifest.vocab),
            quantization=asdict(manifest.quantization),
            optimization=manifest.optimization,
            normalize=manifest.normalize,
            dimension=loaded.encoder.dimension if loaded else None,
            prompts=dict(manifest.prompts),
            parity=dict(manifest.parity) if manifest.parity is not None else None,
            bundle_format=manifest.format_version,
            bundle_langtrim_version=manifest.langtrim_version,
            limits=asdict(limits),
            batching=state.batcher.batching,
            coverage=dict(manifest.coverage) if manifest.coverage is not None else None,
            on_uncovered=state.on_uncovered,
        ),
    )
    return Response(info.model_dump_json(), media_type="application/json")


async def _metrics(request: Request) -> Response:
    state = state_of(request)
    return PlainTextResponse(state.metrics.render(state.batcher), media_type=CONTENT_TYPE)


async def _openapi(request: Request) -> Response:
    """The schema, rebuilt once the model is loaded: only then is the embedding dimension known."""
    state = state_of(request)
    dimension = state.batcher.loaded.encoder.dimension if state.batcher.loaded else None
    cached: tuple[int | None, dict[str, Any]] | None = request.app.state.openapi
    if cached is None or cached[0] != dimension:
        served = request.app.state.served
        cached = dimension, openapi_schema(state.manifest, state.limits, served, dimension)
        request.app.state.openapi = cached
    return JSONResponse(cached[1])


# Swagger UI, loaded by the reader's browser from a CDN (the server ships no web assets); without it the
# page still links the schema.
_DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>langtrim API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"><p>The API is described by <a href="/openapi.json">/openapi.json</a>.</p></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>window.SwaggerUIBundle && SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>
"""


async def _docs(request: Request) -> Response:
    return HTMLResponse(_DOCS_PAGE)


# --- errors as JSON -----------------------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    metrics = state_of(request).metrics
    metrics.errors[metrics.label(request.url.path), exc.error] += 1
    status, body = error_response(request.url.path, exc)
    return JSONResponse(body, status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown path, wrong method) in the same JSON shape."""
    assert isinstance(exc, HTTPException)
    detail = f"{request.method} {request.url.path}: {exc.detail}; see GET /openapi.json for the endpoints"
    error = ApiError(exc.status_code, str(exc.detail).lower(), detail, dict(exc.headers or {}))
    return await _api_error(request, error)


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error(
        "request %s (%s %s) failed: %s",
        request.scope.get("state", {}).get("request_id", "-"),
        request.method,
        request.url.path,
        exc,
        exc_info=exc,
    )
    detail = f"{type(exc).__name__}: a bug in langtrim; see the server log"
    return await _api_error(request, ApiError(500, "internal error", detail))


# --- the application ----------------------------------------------------------------------------------------


def _post_routes(manifest: Manifest) -> tuple[list[Route], tuple[str, ...]]:
    """The POST routes for the bundle's task, and the paths it serves (for the OpenAPI document)."""
    if manifest.task == TEXT_CLASSIFICATION:
        served, instead = dict(_CLASSIFIER_ROUTES), "POST /predict"
        if rerank.is_reranker(manifest.labels, manifest.pair_truncation):
            served, instead = {**served, **_RERANKER_ROUTES}, "POST /rerank or /predict"
    elif manifest.task == TOKEN_CLASSIFICATION:
        served, instead = _ENTITY_ROUTES, "POST /entities"
    else:
        served, instead = _EMBEDDING_ROUTES, "POST /embed or /v1/embeddings"
    main = next(iter(served.values()))
    routes = [Route(path, _post(_fixed(*entry)), methods=["POST"]) for path, entry in served.items()]
    routes += [Route(path, _post(_fixed(*entry)), methods=["POST"]) for path, entry in _SHARED_ROUTES.items()]
    main_post = _post(tei.main_route(*main))

    async def root(request: Request) -> Response:  # one route, so a 405 there allows both methods
        return await (main_post(request) if request.method == "POST" else _health(request))

    routes += [Route("/", root, methods=["GET", "POST"]), Route("/invocations", main_post, methods=["POST"])]
    routes += [
        Route(path, tei.wrong_task(path, needs, instead), methods=["POST"])
        for path, needs in _NEEDS.items()
        if path not in served
    ]
    return routes, (*served, *_SHARED_ROUTES, *_MAIN_ROUTES)


def create_app(
    bundle_dir: str | Path,
    *,
    threads: int | None = None,
    limits: ServerLimits = DEFAULT_LIMITS,
    batching: bool = True,
    bundle_digest: str | None = None,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
    access_log: bool = False,
    on_uncovered: OnUncovered = "allow",
) -> Starlette:
    """The ASGI app serving `bundle_dir`. Raises BundleError now if it is not a readable bundle.

    The model loads (with every file's digest checked) in the background once the app starts (its lifespan),
    then runs one warm-up inference; until then /health and the inference routes answer 503. `threads` is
    onnxruntime's intra-op thread count (None: one per core). `batching=False` runs each request alone.
    `bundle_digest` (see `bundle.bundle_digest`) refuses any bundle but the one pinned. `api_key`: every
    route but the health routes needs `Authorization: Bearer KEY`. `cors_origins`: the browser origins
    allowed to call the server ("*" for any); none by default. `access_log`: one INFO line per request,
    with its id. `on_uncovered`: "reject" refuses a request with text the bundle does not cover (422),
    "allow" serves it and names it in a header (see `uncovered`).
    """
    directory = Path(bundle_dir)
    manifest = read_manifest(directory, verify="none", expected_digest=bundle_digest)
    state = ServerState(
        directory, manifest, limits, Batcher(limits, batching), Metrics(_ENDPOINTS), on_uncovered=on_uncovered
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def load_bundle() -> None:
            try:
                state.batcher.loaded = await asyncio.to_thread(load, directory, threads, bundle_digest)
                logger.info("serving %s: loaded and warmed up", directory)
            except Exception as error:
                state.load_error = error
                logger.error("cannot serve %s: %s", directory, error)
                on_failure = getattr(app.state, "on_load_failure", None)
                if on_failure is not None:
                    on_failure(error)

        tasks = [asyncio.create_task(load_bundle()), asyncio.create_task(state.batcher.serve_forever())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    post_routes, served = _post_routes(manifest)
    routes = [
        *post_routes,
        *(Route(path, _health, methods=["GET"]) for path in _HEALTH_ROUTES),
        Route("/info", _info, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
        *(Route(path, _openapi, methods=["GET"]) for path in _OPENAPI_ROUTES),
        Route("/docs", _docs, methods=["GET"]),
        *([Route("/v1/models", openai_api.models, methods=["GET"])] if "/v1/embeddings" in served else []),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error},
    )
    app.add_middleware(Guards, api_key=api_key)
    app.add_middleware(CoverageHeaders)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, UNCOVERED_HEADER, INDICES_HEADER],
        )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, access_log=access_log)
    app.state.langtrim = state
    app.state.served = served
    app.state.openapi = None  # built on the first GET /openapi.json (see _openapi)
    return app
