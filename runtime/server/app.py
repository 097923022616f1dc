"""The ASGI application of `langtrim serve`: routes, handlers, errors as JSON, the bundle's lifespan.

    POST /embed           {"inputs": str | [str], "normalize": bool, "truncate": bool, "prompt_name": str}
                          -> [[float]]                                     (text-embeddings-inference)
    POST /v1/embeddings   {"input": str | [str], "model": str, "encoding_format": "float" | "base64"}
                          -> {"object": "list", "data": [...], "model", "usage"}            (OpenAI)
    POST /classify        {"inputs": str | [str]} -> [{"label", "score"}] per text, best first
    GET  /health  /info  /metrics (Prometheus text)  /openapi.json

Only the routes of the bundle's task are served: an embedding bundle answers /classify with 404 and a
message saying why, and the reverse. Every error is JSON: `{"error": short, "detail": what to do}`, or
OpenAI's error object under /v1/ (`limits.error_body`).
The handlers only wire the parts, each testable alone: `requests` (body -> checked texts),
`batching` (inference off the event loop), `metrics`, `schemas` and `openapi`.
"""

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from langtrim.runtime import __version__
from langtrim.runtime.bundle import TEXT_CLASSIFICATION, Manifest, read_manifest
from langtrim.runtime.encoder import l2_normalize
from langtrim.runtime.server.batching import Batcher, Result, load
from langtrim.runtime.server.guards import REQUEST_ID_HEADER, Guards
from langtrim.runtime.server.limits import DEFAULT_LIMITS, ApiError, ServerLimits, error_body, unavailable
from langtrim.runtime.server.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from langtrim.runtime.server.openapi import openapi_schema
from langtrim.runtime.server.requests import check_texts, encodable, parse_body, read_json
from langtrim.runtime.server.schemas import (
    ClassifyRequest,
    EmbedRequest,
    Health,
    Info,
    OpenAIEmbedding,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    OpenAIModel,
    OpenAIModelList,
    OpenAIUsage,
)

logger = logging.getLogger(__name__)

_Body = TypeVar("_Body", bound=BaseModel)
_EMBED_ROUTES = ("/embed", "/v1/embeddings")
_CLASSIFY_ROUTES = ("/classify",)
_ENDPOINTS = frozenset(
    (*_EMBED_ROUTES, *_CLASSIFY_ROUTES, "/health", "/info", "/metrics", "/openapi.json", "/v1/models")
)


@dataclass
class _State:
    bundle_dir: Path
    manifest: Manifest
    limits: ServerLimits
    batcher: Batcher
    metrics: Metrics
    served: tuple[str, ...]  # the POST routes of the bundle's task
    load_error: BaseException | None = None


def _state(request: Request) -> _State:
    state: _State = request.app.state.langtrim
    return state


# --- inference routes ---------------------------------------------------------------------------------------


async def _infer(
    request: Request,
    inputs: str | list[str],
    prompt: str | None,
    truncate: bool | None,
    field: str = "inputs",
) -> Result:
    state = _state(request)
    texts = check_texts(inputs, state.limits, prompt, state.manifest.prompts, field)
    wanted = state.limits.auto_truncate if truncate is None else truncate
    result = await state.batcher.run(texts, prompt, wanted)
    endpoint = state.metrics.label(request.url.path)
    state.metrics.texts[endpoint] += len(texts)
    state.metrics.tokens[endpoint] += result.tokens
    return result


@asynccontextmanager
async def _admitted(request: Request, model: type[_Body]) -> AsyncIterator[_Body]:
    """The request's body as `model`, holding an in-flight place until the block ends.

    The body is read first (within its timeout), so a slow upload holds no place; then the request is
    admitted (503 when full), then validated.
    """
    state = _state(request)
    data = await read_json(request, state.limits)
    async with state.batcher.admit():
        yield parse_body(model, data, state.limits)


async def _embed(request: Request) -> Response:
    async with _admitted(request, EmbedRequest) as body:
        result = await _infer(request, body.inputs, body.prompt_name, body.truncate)
    vectors = l2_normalize(result.outputs) if body.normalize else result.outputs
    return JSONResponse(vectors.tolist())


async def _openai_embeddings(request: Request) -> Response:
    state = _state(request)
    async with _admitted(request, OpenAIEmbeddingRequest) as body:
        model = encodable(body.model, "model") if body.model else state.manifest.source.name  # echoed back
        dimension = state.batcher.loaded.encoder.dimension if state.batcher.loaded else None
        if body.dimensions is not None and body.dimensions != dimension:
            raise ApiError(
                422,
                "invalid request",
                f"dimensions is {body.dimensions}, but this model's embeddings have {dimension}: omit dimensions",
            )
        result = await _infer(request, body.input, None, None, "input")
    vectors = l2_normalize(result.outputs) if state.manifest.normalize else result.outputs
    data = [
        OpenAIEmbedding(
            index=i,
            embedding=(
                base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
                if body.encoding_format == "base64"
                else row.tolist()
            ),
        )
        for i, row in enumerate(vectors)
    ]
    response = OpenAIEmbeddingResponse(
        data=data,
        model=model,
        usage=OpenAIUsage(prompt_tokens=result.tokens, total_tokens=result.tokens),
    )
    return Response(response.model_dump_json(), media_type="application/json")


async def _classify(request: Request) -> Response:
    state = _state(request)
    async with _admitted(request, ClassifyRequest) as body:
        result = await _infer(request, body.inputs, body.prompt_name, body.truncate)
    labels = state.manifest.labels
    ranked = [
        [{"label": labels[c], "score": float(row[c])} for c in np.argsort(-row, kind="stable")]
        for row in result.outputs
    ]
    return JSONResponse(ranked[0] if isinstance(body.inputs, str) else ranked)


def _wrong_task(route: str) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        task = _state(request).manifest.task
        other = "POST /classify" if task == TEXT_CLASSIFICATION else "POST /embed or /v1/embeddings"
        raise ApiError(
            404,
            "not found",
            f"this server's bundle is a {task} model, so {route} does not apply: use {other}",
        )

    return handler


# --- state routes -------------------------------------------------------------------------------------------


async def _health(request: Request) -> Response:
    state = _state(request)
    if state.batcher.loaded is not None:
        return JSONResponse(Health().model_dump())
    if state.load_error is not None:
        raise ApiError(503, "failed", f"the bundle could not be loaded: {state.load_error}")
    raise unavailable("not ready", "the bundle is still loading", state.limits)


async def _info(request: Request) -> Response:
    state = _state(request)
    manifest, loaded = state.manifest, state.batcher.loaded
    info = Info(
        model=manifest.source.name,
        description=manifest.source.description,
        task=manifest.task,
        languages=list(manifest.languages),
        vocab=asdict(manifest.vocab),
        quantization=asdict(manifest.quantization),
        optimization=manifest.optimization,
        pooling=manifest.pooling,
        normalize=manifest.normalize,
        max_length=manifest.max_length,
        dimension=loaded.encoder.dimension if loaded else None,
        prompts=dict(manifest.prompts),
        labels=list(manifest.labels),
        parity=dict(manifest.parity) if manifest.parity is not None else None,
        bundle_format=manifest.format_version,
        bundle_langtrim_version=manifest.langtrim_version,
        langtrim_version=__version__,
        limits=asdict(state.limits),
        batching=state.batcher.batching,
    )
    return Response(info.model_dump_json(), media_type="application/json")


async def _openai_models(request: Request) -> Response:
    """OpenAI's model list: the one model this server serves, under the name /v1/embeddings echoes."""
    manifest = _state(request).manifest
    created = int(datetime.fromisoformat(manifest.created).timestamp())
    model = OpenAIModel(id=manifest.source.name, created=created)
    return Response(OpenAIModelList(data=[model]).model_dump_json(), media_type="application/json")


async def _metrics(request: Request) -> Response:
    state = _state(request)
    return PlainTextResponse(state.metrics.render(state.batcher), media_type=CONTENT_TYPE)


async def _openapi(request: Request) -> Response:
    """The schema, rebuilt once the model is loaded: only then is the embedding dimension known."""
    state = _state(request)
    dimension = state.batcher.loaded.encoder.dimension if state.batcher.loaded else None
    cached: tuple[int | None, dict[str, Any]] | None = request.app.state.openapi
    if cached is None or cached[0] != dimension:
        cached = dimension, openapi_schema(state.manifest, state.limits, state.served, dimension)
        request.app.state.openapi = cached
    return JSONResponse(cached[1])


# --- errors as JSON -----------------------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    metrics = _state(request).metrics
    metrics.errors[metrics.label(request.url.path), exc.error] += 1
    return JSONResponse(
        error_body(request.url.path, exc.status, exc.error, exc.detail), exc.status, exc.headers
    )


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
    metrics = _state(request).metrics
    metrics.errors[metrics.label(request.url.path), "internal error"] += 1
    detail = f"{type(exc).__name__}: a bug in langtrim; see the server log"
    return JSONResponse(error_body(request.url.path, 500, "internal error", detail), 500)


# --- the application ----------------------------------------------------------------------------------------


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
) -> Starlette:
    """The ASGI app serving `bundle_dir`. Raises BundleError now if it is not a readable bundle.

    The model loads (with full sha256 verification) in the background once the app starts (its lifespan),
    then runs one warm-up inference; until then /health and the inference routes answer 503. `threads` is
    onnxruntime's intra-op thread count (None: one per core). `batching=False` runs each request alone.
    `bundle_digest` (see `bundle.bundle_digest`) refuses any bundle but the one pinned. `api_key`: every
    route but /health needs `Authorization: Bearer KEY`. `cors_origins`: the browser origins allowed to call
    the server ("*" for any); none by default. `access_log`: one INFO line per request, with its id.
    """
    directory = Path(bundle_dir)
    manifest = read_manifest(directory, verify="none", expected_digest=bundle_digest)
    served = _CLASSIFY_ROUTES if manifest.task == TEXT_CLASSIFICATION else _EMBED_ROUTES
    state = _State(directory, manifest, limits, Batcher(limits, batching), Metrics(_ENDPOINTS), served)

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

    handlers = {"/embed": _embed, "/v1/embeddings": _openai_embeddings, "/classify": _classify}
    routes = [
        *(
            Route(path, handler if path in served else _wrong_task(path), methods=["POST"])
            for path, handler in handlers.items()
        ),
        Route("/health", _health, methods=["GET"]),
        Route("/info", _info, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
        *([Route("/v1/models", _openai_models, methods=["GET"])] if "/v1/embeddings" in served else []),
        Route("/openapi.json", _openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error},
    )
    app.add_middleware(Guards, api_key=api_key)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER],
        )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, access_log=access_log)
    app.state.langtrim = state
    app.state.openapi = None  # built on the first GET /openapi.json (see _openapi)
    return app
