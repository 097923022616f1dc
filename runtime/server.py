"""Serve a bundle over HTTP: text-embeddings-inference and OpenAI compatible, on Starlette + uvicorn.

    POST /embed           {"inputs": str | [str], "normalize": bool, "truncate": bool, "prompt_name": str}
                          -> [[float]]                                     (text-embeddings-inference)
    POST /v1/embeddings   {"input": str | [str], "model": str, "encoding_format": "float" | "base64"}
                          -> {"object": "list", "data": [...], "model", "usage"}            (OpenAI)
    POST /classify        {"inputs": str | [str]} -> [{"label", "score"}] per text, best first
    GET  /health  /info  /metrics (Prometheus text)  /openapi.json

Only the routes of the bundle's task are served: an embedding bundle answers /classify with 404 and a
message saying why, and the reverse. Every error is JSON `{"error": short, "detail": what to do}`.

Work flows through one `_Batcher`: requests queue as jobs (at most `ServerLimits.max_inflight`, then 503
with Retry-After) and one inference thread runs them, so the event loop never blocks and onnxruntime's
intra-op threads have the cores. While it works, new jobs wait; the next round takes every waiting job
with the same prompt and runs their texts together, sorted by length and cut into chunks that pad little.
That helps because one onnxruntime call has a fixed cost (~2 ms for multilingual-e5-small int8, about as
much as 10 tokens of work) while padding short texts to a long one costs more than it saves; see
benchmarks/server_load.py for the measured effect.
"""

import argparse
import asyncio
import base64
import json
import logging
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tokenizers import Tokenizer

from langtrim.runtime import __version__
from langtrim.runtime.bundle import TOKENIZER_FILE, Manifest, read_manifest
from langtrim.runtime.encoder import Encoder, l2_normalize
from langtrim.runtime.errors import LangtrimError, UsageError

logger = logging.getLogger(__name__)

_WARM_UP_TEXT = "warm-up"
_CHUNK_TEXTS = 32  # texts per onnxruntime call
_PADDING_SLACK = 0.25  # a chunk may hold 25% more (padded) tokens than its texts really have
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask and how much work may wait; over a limit the server answers 413 or 503."""

    max_texts: int = 128  # texts per request
    max_text_chars: int = 8192  # characters per text (Unicode code points)
    max_body_bytes: int = 4 * 1024 * 1024  # request body
    max_inflight: int = 64  # requests admitted (waiting or running); more get 503 + Retry-After
    max_batch_texts: int = 256  # texts one round of the batcher may take from several requests
    retry_after_seconds: int = 1
    auto_truncate: bool = False  # truncate texts over max_length tokens when the request does not say

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, bool) and (not isinstance(value, int) or value < 1):
                raise UsageError(f"ServerLimits.{name} must be a positive integer, got {value!r}")


# --- the HTTP edge: request and response bodies ---------------------------------------------------------


class _Body(BaseModel):
    # strict: "true" is not a bool and 1 is not a string; unknown fields are ignored, as the APIs we copy do
    model_config = ConfigDict(strict=True, extra="ignore")


class EmbedRequest(_Body):
    """text-embeddings-inference's /embed body."""

    inputs: str | list[str]
    normalize: bool = True
    truncate: bool | None = None  # None: the server's ServerLimits.auto_truncate
    prompt_name: str | None = None  # one of the bundle's prompts, e.g. "query" for multilingual-e5


class OpenAIEmbeddingRequest(_Body):
    """OpenAI's /v1/embeddings body; token-id arrays as `input` are not supported."""

    input: str | list[str]
    model: str | None = None  # echoed back; the server has one model
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None  # must equal the model's: the vectors are not shortened
    user: str | None = None


class ClassifyRequest(_Body):
    inputs: str | list[str]
    truncate: bool | None = None
    prompt_name: str | None = None


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # str: base64 of little-endian float32, as OpenAI's clients decode it


class OpenAIUsage(BaseModel):
    prompt_tokens: int  # tokens the model saw, special tokens included, after truncation
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


class LabelScore(BaseModel):
    label: str
    score: float


class ErrorBody(BaseModel):
    error: str  # what went wrong, short and stable
    detail: str  # the specific problem and what to do about it


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Info(BaseModel):
    model: str
    description: str
    task: str
    languages: list[str]
    vocab: dict[str, int]
    quantization: dict[str, str]
    optimization: str
    pooling: str
    normalize: bool
    max_length: int
    dimension: int | None
    prompts: dict[str, str]
    labels: list[str]
    parity: dict[str, Any] | None
    bundle_format: int
    bundle_langtrim_version: str
    langtrim_version: str
    limits: dict[str, int | bool]
    batching: bool


class _ApiError(Exception):
    """An error answered as JSON {"error", "detail"} with `status`; `headers` e.g. Retry-After."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


# --- inference: jobs, rounds, chunks --------------------------------------------------------------------


@dataclass
class _Job:
    texts: list[str]
    prompt: str | None
    truncate: bool
    future: "asyncio.Future[_Result]"


@dataclass(frozen=True)
class _Result:
    outputs: (
        np.ndarray
    )  # [len(texts), dim] pooled embeddings, not normalised; or [len(texts), labels] probabilities
    tokens: int  # tokens the model saw (prompt and special tokens included, after truncation)


@dataclass
class _Loaded:
    encoder: Encoder
    counter: Tokenizer  # the bundle's tokenizer without truncation or padding, to count tokens


class _Batcher:
    """Queues jobs and runs them on one thread, several waiting jobs together when `batching`."""

    def __init__(self, limits: ServerLimits, batching: bool) -> None:
        self.limits, self.batching = limits, batching
        self.loaded: _Loaded | None = None
        self.inflight = 0  # jobs admitted and not yet answered
        self.batch_sizes: Counter[int] = Counter()  # jobs per round -> rounds
        self._waiting: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None  # made by serve_forever, in the loop it serves

    async def run(self, texts: list[str], prompt: str | None, truncate: bool) -> _Result:
        if self.loaded is None:
            raise _ApiError(
                503,
                "not ready",
                "the bundle is still loading: retry after a moment",
                {"Retry-After": str(self.limits.retry_after_seconds)},
            )
        if self.inflight >= self.limits.max_inflight:
            raise _ApiError(
                503,
                "overloaded",
                f"{self.inflight} requests are already waiting or running (the limit is "
                f"{self.limits.max_inflight}): retry later or add replicas",
                {"Retry-After": str(self.limits.retry_after_seconds)},
            )
        self.inflight += 1
        try:
            job = _Job(texts, prompt, truncate, asyncio.get_running_loop().create_future())
            self._waiting.append(job)
            if self._wake is not None:
                self._wake.set()
            return await job.future
        finally:
            self.inflight -= 1

    async def serve_forever(self) -> None:
        """Take rounds of waiting jobs and run them off the event loop, until cancelled."""
        loop, wake = asyncio.get_running_loop(), asyncio.Event()
        self._wake = wake
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="langtrim-inference") as executor:
            while True:
                await wake.wait()
                wake.clear()
                while self._waiting:
                    jobs = self._take_round()
                    self.batch_sizes[len(jobs)] += 1
                    try:
                        results = await loop.run_in_executor(executor, self._run_round, jobs)
                    except Exception as error:  # a bug: answer these jobs with 500, keep serving others
                        logger.exception("inference failed")
                        results = [error] * len(jobs)
                    for job, result in zip(jobs, results, strict=True):
                        if job.future.done():  # cancelled: the client went away
                            continue
                        if isinstance(result, BaseException):
                            job.future.set_exception(result)
                        else:
                            job.future.set_result(result)

    def _take_round(self) -> list[_Job]:
        """The oldest job, and when batching the later ones with its prompt, up to max_batch_texts texts."""
        first = self._waiting.popleft()
        jobs, texts, kept = [first], len(first.texts), deque[_Job]()
        while self.batching and self._waiting:
            job = self._waiting.popleft()
            if job.prompt == first.prompt and texts + len(job.texts) <= self.limits.max_batch_texts:
                jobs.append(job)
                texts += len(job.texts)
            else:
                kept.append(job)
        self._waiting.extendleft(reversed(kept))
        return jobs

    def _run_round(self, jobs: list[_Job]) -> list[_Result | Exception]:
        """Runs on the inference thread: count tokens, refuse over-long texts, infer chunks, split results."""
        assert self.loaded is not None
        encoder, max_length = self.loaded.encoder, self.loaded.encoder.manifest.max_length
        prefix = encoder.manifest.prompts.get(jobs[0].prompt or "", "")
        refused: dict[int, Exception] = {}
        tokens: dict[int, int] = {}
        items: list[tuple[int, int, int]] = []  # (tokens, job, text) of every text to run
        for j, job in enumerate(jobs):
            counts = [len(e.ids) for e in self.loaded.counter.encode_batch([prefix + t for t in job.texts])]
            too_long = [i for i, n in enumerate(counts) if n > max_length]
            if too_long and not job.truncate:
                i = too_long[0]
                refused[j] = _ApiError(
                    413,
                    "text too long",
                    f"texts[{i}] has {counts[i]} tokens, more than this model's max_length {max_length}: "
                    'shorten it, or send "truncate": true to keep its first tokens',
                )
                continue
            counts = [min(n, max_length) for n in counts]
            tokens[j] = sum(counts)
            items.extend((n, j, i) for i, n in enumerate(counts))
        outputs: dict[int, np.ndarray] = {}
        for chunk in _length_chunks(items):
            texts = [jobs[j].texts[i] for _, j, i in chunk]
            if encoder.manifest.task == "text-classification":
                values = encoder.probabilities(texts, batch_size=len(texts), prompt=jobs[0].prompt)
            else:
                values = encoder.embed(texts, batch_size=len(texts), normalize=False, prompt=jobs[0].prompt)
            for (_, j, i), row in zip(chunk, values, strict=True):
                if j not in outputs:
                    outputs[j] = np.empty((len(jobs[j].texts), values.shape[1]), dtype=np.float32)
                outputs[j][i] = row
        return [refused[j] if j in refused else _Result(outputs[j], tokens[j]) for j in range(len(jobs))]


def _length_chunks(items: list[tuple[int, int, int]]) -> list[list[tuple[int, int, int]]]:
    """(tokens, ...) items sorted by length and cut where a chunk would pad more than _PADDING_SLACK."""
    chunks: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    real = 0
    for item in sorted(items):
        padded = item[0] * (len(current) + 1)  # the new item is the chunk's longest
        if current and (len(current) == _CHUNK_TEXTS or padded > (1 + _PADDING_SLACK) * (real + item[0])):
            chunks.append(current)
            current, real = [], 0
        current.append(item)
        real += item[0]
    if current:
        chunks.append(current)
    return chunks


def _load(bundle_dir: Path, threads: int | None) -> _Loaded:
    """Load and verify the bundle, then run one inference so the first request does not pay for warm-up."""
    encoder = Encoder(bundle_dir, threads=threads)
    if encoder.manifest.task == "text-classification":
        encoder.probabilities([_WARM_UP_TEXT])
    else:
        encoder.embed([_WARM_UP_TEXT])
    counter = Tokenizer.from_file(str(bundle_dir / TOKENIZER_FILE))
    counter.no_truncation()
    counter.no_padding()
    return _Loaded(encoder, counter)


# --- metrics ---------------------------------------------------------------------------------------------


@dataclass
class _Metrics:
    """Counters for /metrics. Only the event loop's thread touches them, so they need no lock."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (endpoint, status)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, error)
    texts: Counter[str] = field(default_factory=Counter)
    tokens: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=dict)  # endpoint -> bucket counts, sum, count

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[endpoint, status] += 1
        counts = self.latency.setdefault(endpoint, [0.0] * (len(_LATENCY_BUCKETS) + 2))
        for b, bound in enumerate(_LATENCY_BUCKETS):
            if seconds <= bound:
                counts[b] += 1
        counts[-2] += seconds
        counts[-1] += 1

    def render(self, batcher: _Batcher) -> str:
        lines = [
            "# HELP langtrim_requests_total HTTP requests by endpoint and status code.",
            "# TYPE langtrim_requests_total counter",
            *(
                f'langtrim_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                for (e, s), n in sorted(self.requests.items())
            ),
            "# HELP langtrim_request_errors_total Requests answered with an error, by error.",
            "# TYPE langtrim_request_errors_total counter",
            *(
                f'langtrim_request_errors_total{{endpoint="{e}",error="{k}"}} {n}'
                for (e, k), n in sorted(self.errors.items())
            ),
            "# HELP langtrim_texts_total Texts encoded.",
            "# TYPE langtrim_texts_total counter",
            *(f'langtrim_texts_total{{endpoint="{e}"}} {n}' for e, n in sorted(self.texts.items())),
            "# HELP langtrim_tokens_total Tokens the model saw (special tokens included, after truncation).",
            "# TYPE langtrim_tokens_total counter",
            *(f'langtrim_tokens_total{{endpoint="{e}"}} {n}' for e, n in sorted(self.tokens.items())),
            "# HELP langtrim_request_duration_seconds Time from request to response.",
            "# TYPE langtrim_request_duration_seconds histogram",
        ]
        for endpoint, counts in sorted(self.latency.items()):
            name = f'langtrim_request_duration_seconds_bucket{{endpoint="{endpoint}"'
            lines += [f'{name},le="{b}"}} {int(n)}' for b, n in zip(_LATENCY_BUCKETS, counts, strict=False)]
            lines.append(f'{name},le="+Inf"}} {int(counts[-1])}')
            lines.append(f'langtrim_request_duration_seconds_sum{{endpoint="{endpoint}"}} {counts[-2]:.6f}')
            lines.append(
                f'langtrim_request_duration_seconds_count{{endpoint="{endpoint}"}} {int(counts[-1])}'
            )
        lines += [
            "# HELP langtrim_inflight_requests Requests waiting for or in inference.",
            "# TYPE langtrim_inflight_requests gauge",
            f"langtrim_inflight_requests {batcher.inflight}",
            "# HELP langtrim_inference_rounds_total Inference rounds, by how many requests each ran together.",
            "# TYPE langtrim_inference_rounds_total counter",
            *(
                f'langtrim_inference_rounds_total{{requests="{k}"}} {n}'
                for k, n in sorted(batcher.batch_sizes.items())
            ),
            "# HELP langtrim_ready 1 once the bundle is loaded and warmed up.",
            "# TYPE langtrim_ready gauge",
            f"langtrim_ready {int(batcher.loaded is not None)}",
        ]
        return "\n".join(lines) + "\n"


def _endpoint(path: str) -> str:
    """The metrics label of a path; unknown paths share one label so scanners cannot grow the metrics."""
    return path if path in _ROUTES else "other"


class _MetricsMiddleware:
    """Times every request and counts it by endpoint and status code."""

    def __init__(self, app: ASGIApp, metrics: _Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.observe(_endpoint(scope["path"]), status, time.perf_counter() - start)


# --- handlers --------------------------------------------------------------------------------------------


@dataclass
class _State:
    bundle_dir: Path
    manifest: Manifest
    limits: ServerLimits
    batcher: _Batcher
    metrics: _Metrics
    load_error: BaseException | None = None


def _state(request: Request) -> _State:
    state: _State = request.app.state.langtrim
    return state


async def _read_json(request: Request, limits: ServerLimits) -> Any:
    """The body parsed as JSON; 413 past max_body_bytes (counted as it arrives), 400 if not JSON."""
    too_big = _ApiError(
        413,
        "body too large",
        f"the request body is larger than {limits.max_body_bytes} bytes: send fewer or shorter texts",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise too_big
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise _ApiError(
            400,
            "invalid JSON",
            f'the body is not JSON ({error}): send a JSON object such as {{"inputs": "a text"}}',
        ) from None


def _parse(model: type[_Body], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = dict.fromkeys(_problem(e, data) for e in error.errors(include_url=False))
        raise _ApiError(422, "invalid request", "; ".join(problems)) from None


def _problem(error: Any, data: Any) -> str:
    """One pydantic error as a sentence about the request's field (unions are described as a whole)."""
    if not error["loc"]:
        return f"the body must be a JSON object, got {_json_type(data)}"
    name = str(error["loc"][0])
    if error["type"] == "missing":
        return f"{name} is missing"
    if name not in ("inputs", "input"):
        return f"{name}: {error['msg']}"
    value = data[name]
    if isinstance(value, list):
        bad = [item for item in value if not isinstance(item, str)]
        if all(
            isinstance(v, int) or (isinstance(v, list) and all(isinstance(i, int) for i in v)) for v in bad
        ):
            return f"{name} holds token ids, which this server does not take: send the texts as strings"
        index = next(i for i, item in enumerate(value) if not isinstance(item, str))
        return (
            f"{name} must be a string or a list of strings, but {name}[{index}] is {_json_type(value[index])}"
        )
    return f"{name} must be a string or a list of strings, got {_json_type(value)}"


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _check_texts(inputs: str | list[str], state: _State, prompt: str | None) -> list[str]:
    """The request's texts after the limits (413) and content checks (422)."""
    limits, texts = state.limits, [inputs] if isinstance(inputs, str) else inputs
    if not texts:
        raise _ApiError(422, "invalid request", "inputs is an empty list: send at least one text")
    if len(texts) > limits.max_texts:
        raise _ApiError(
            413,
            "too many texts",
            f"the request has {len(texts)} texts; the limit is {limits.max_texts} per request: split it",
        )
    for i, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            raise _ApiError(
                413,
                "text too long",
                f"texts[{i}] has {len(text)} characters; the limit is {limits.max_text_chars}: shorten or split it",
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _ApiError(
                422,
                "invalid request",
                f"texts[{i}] holds a lone surrogate (\\ud800-\\udfff): send valid Unicode",
            ) from None
    if prompt is not None and prompt not in state.manifest.prompts:
        known = ", ".join(map(repr, state.manifest.prompts)) or "none"
        raise _ApiError(
            422, "invalid request", f"prompt_name {prompt!r} is not one of this model's prompts ({known})"
        )
    return texts


async def _infer(
    request: Request, inputs: str | list[str], prompt: str | None, truncate: bool | None
) -> _Result:
    state = _state(request)
    texts = _check_texts(inputs, state, prompt)
    wanted = state.limits.auto_truncate if truncate is None else truncate
    result = await state.batcher.run(texts, prompt, wanted)
    endpoint = _endpoint(request.url.path)
    state.metrics.texts[endpoint] += len(texts)
    state.metrics.tokens[endpoint] += result.tokens
    return result


async def _embed(request: Request) -> Response:
    body: EmbedRequest = _parse(EmbedRequest, await _read_json(request, _state(request).limits))
    result = await _infer(request, body.inputs, body.prompt_name, body.truncate)
    vectors = l2_normalize(result.outputs) if body.normalize else result.outputs
    return JSONResponse(vectors.tolist())


async def _openai_embeddings(request: Request) -> Response:
    state = _state(request)
    body: OpenAIEmbeddingRequest = _parse(OpenAIEmbeddingRequest, await _read_json(request, state.limits))
    dimension = state.batcher.loaded.encoder.dimension if state.batcher.loaded else None
    if body.dimensions is not None and body.dimensions != dimension:
        raise _ApiError(
            422,
            "invalid request",
            f"dimensions is {body.dimensions}, but this model's embeddings have {dimension}: omit dimensions",
        )
    result = await _infer(request, body.input, None, None)
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
        model=body.model or state.manifest.source.name,
        usage=OpenAIUsage(prompt_tokens=result.tokens, total_tokens=result.tokens),
    )
    return Response(response.model_dump_json(), media_type="application/json")


async def _classify(request: Request) -> Response:
    state = _state(request)
    body: ClassifyRequest = _parse(ClassifyRequest, await _read_json(request, state.limits))
    result = await _infer(request, body.inputs, body.prompt_name, body.truncate)
    labels = state.manifest.labels
    ranked = [
        [{"label": labels[c], "score": float(row[c])} for c in np.argsort(-row, kind="stable")]
        for row in result.outputs
    ]
    return JSONResponse(ranked[0] if isinstance(body.inputs, str) else ranked)


async def _health(request: Request) -> Response:
    state = _state(request)
    if state.batcher.loaded is not None:
        return JSONResponse(Health().model_dump())
    if state.load_error is not None:
        raise _ApiError(503, "failed", f"the bundle could not be loaded: {state.load_error}")
    raise _ApiError(
        503,
        "not ready",
        "the bundle is still loading",
        {"Retry-After": str(state.limits.retry_after_seconds)},
    )


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


async def _metrics(request: Request) -> Response:
    state = _state(request)
    return PlainTextResponse(
        state.metrics.render(state.batcher), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


async def _openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


def _wrong_task(route: str) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        task = _state(request).manifest.task
        other = "POST /classify" if task == "text-classification" else "POST /embed or /v1/embeddings"
        raise _ApiError(
            404,
            "not found",
            f"this server's bundle is a {task} model, so {route} does not apply: use {other}",
        )

    return handler


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _ApiError)
    _state(request).metrics.errors[_endpoint(request.url.path), exc.error] += 1
    return JSONResponse(ErrorBody(error=exc.error, detail=exc.detail).model_dump(), exc.status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown path, wrong method) in the same JSON shape."""
    assert isinstance(exc, HTTPException)
    detail = f"{request.method} {request.url.path}: {exc.detail}; see GET /openapi.json for the endpoints"
    error = _ApiError(exc.status_code, str(exc.detail).lower(), detail, dict(exc.headers or {}))
    return await _api_error(request, error)


async def _internal_error(request: Request, exc: Exception) -> Response:
    _state(request).metrics.errors[_endpoint(request.url.path), "internal error"] += 1
    body = ErrorBody(
        error="internal error", detail=f"{type(exc).__name__}: a bug in langtrim; see the server log"
    )
    return JSONResponse(body.model_dump(), 500)


# --- the application ---------------------------------------------------------------------------------------

_EMBED_ROUTES = ("/embed", "/v1/embeddings")
_CLASSIFY_ROUTES = ("/classify",)
_ROUTES = (*_EMBED_ROUTES, *_CLASSIFY_ROUTES, "/health", "/info", "/metrics", "/openapi.json")


def create_app(
    bundle_dir: str | Path,
    *,
    threads: int | None = None,
    limits: ServerLimits = ServerLimits(),
    batching: bool = True,
) -> Starlette:
    """The ASGI app serving `bundle_dir`. Raises BundleError now if it is not a readable bundle.

    The model loads (with full sha256 verification) in the background once the app starts (its lifespan),
    then runs one warm-up inference; until then /health and the inference routes answer 503. `threads` is
    onnxruntime's intra-op thread count (None: one per core). `batching=False` runs each request alone.
    """
    directory = Path(bundle_dir)
    manifest = read_manifest(directory, verify="size")
    state = _State(directory, manifest, limits, _Batcher(limits, batching), _Metrics())
    classifier = manifest.task == "text-classification"

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def load() -> None:
            try:
                state.batcher.loaded = await asyncio.to_thread(_load, directory, threads)
                logger.info("serving %s: loaded and warmed up", directory)
            except Exception as error:
                state.load_error = error
                logger.error("cannot serve %s: %s", directory, error)
                on_failure = getattr(app.state, "on_load_failure", None)
                if on_failure is not None:
                    on_failure(error)

        tasks = [asyncio.create_task(load()), asyncio.create_task(state.batcher.serve_forever())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    served = _CLASSIFY_ROUTES if classifier else _EMBED_ROUTES
    handlers = {"/embed": _embed, "/v1/embeddings": _openai_embeddings, "/classify": _classify}
    routes = [
        *(
            Route(path, handlers[path] if path in served else _wrong_task(path), methods=["POST"])
            for path in handlers
        ),
        Route("/health", _health, methods=["GET"]),
        Route("/info", _info, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={_ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error},
    )
    app.add_middleware(_MetricsMiddleware, metrics=state.metrics)
    app.state.langtrim = state
    app.state.openapi = _openapi_schema(manifest, limits, served)
    return app


def _openapi_schema(manifest: Manifest, limits: ServerLimits, served: tuple[str, ...]) -> dict[str, Any]:
    """OpenAPI 3.1 for the routes served, request limits included as maxItems / maxLength."""
    models: list[type[BaseModel]] = [
        EmbedRequest,
        OpenAIEmbeddingRequest,
        ClassifyRequest,
        OpenAIEmbeddingResponse,
        LabelScore,
        ErrorBody,
        Health,
        Info,
    ]
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top["$defs"]
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
    prompts = list(manifest.prompts)
    for name in ("EmbedRequest", "ClassifyRequest"):
        schemas[name]["properties"]["prompt_name"] = (
            {"anyOf": [{"enum": prompts}, {"type": "null"}]} if prompts else {"type": "null"}
        )

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def json_content(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": schema}}}

    errors = {
        str(code): {"description": text, **json_content(ref("ErrorBody"))}
        for code, text in (
            (400, "the body is not JSON"),
            (413, "over a limit: body size, texts per request, characters or tokens per text"),
            (422, "the JSON does not match the request schema"),
            (503, "loading or overloaded: retry after the Retry-After header's seconds"),
        )
    }

    def post(summary: str, request: str, response: dict[str, Any]) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "requestBody": {"required": True, **json_content(ref(request))},
                "responses": {"200": {"description": "OK", **json_content(response)}, **errors},
            }
        }

    vector = {"type": "array", "items": {"type": "number"}}
    ranked = {"type": "array", "items": ref("LabelScore")}
    paths: dict[str, Any] = {
        "/embed": post(
            "Embed texts (text-embeddings-inference)", "EmbedRequest", {"type": "array", "items": vector}
        ),
        "/v1/embeddings": post(
            "Embed texts (OpenAI)", "OpenAIEmbeddingRequest", ref("OpenAIEmbeddingResponse")
        ),
        "/classify": post(
            "Labels of texts, best first (a list per text when inputs is a list)",
            "ClassifyRequest",
            {"anyOf": [ranked, {"type": "array", "items": ranked}]},
        ),
    }
    paths = {path: operation for path, operation in paths.items() if path in served}

    def get(summary: str, response: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "responses": {"200": {"description": "OK", "content": {media: {"schema": response}}}},
            }
        }

    paths["/health"] = get("200 once the bundle is loaded and warmed up", ref("Health"))
    paths["/health"]["get"]["responses"]["503"] = errors["503"]
    paths["/info"] = get("What the bundle is: languages, vocabulary, quantization, parity", ref("Info"))
    paths["/metrics"] = get("Prometheus metrics", {"type": "string"}, "text/plain")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"langtrim: {manifest.source.name} ({', '.join(manifest.languages)})",
            "version": __version__,
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def serve(
    bundle_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int | None = None,
    *,
    limits: ServerLimits = ServerLimits(),
    batching: bool = True,
    log_level: str = "info",
) -> None:
    """Serve `bundle_dir` with uvicorn until interrupted; raise BundleError if the bundle cannot load."""
    import uvicorn

    app = create_app(bundle_dir, threads=threads, limits=limits, batching=batching)
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False, server_header=False
    )
    server = uvicorn.Server(config)

    def stop(error: BaseException) -> None:
        server.should_exit = True

    app.state.on_load_failure = stop
    server.run()
    error = app.state.langtrim.load_error
    if error is not None:
        raise error


def main(argv: list[str] | None = None) -> None:
    """`python -m langtrim.runtime.server BUNDLE`: the server without the langtrim CLI's dependencies."""
    parser = argparse.ArgumentParser(prog="python -m langtrim.runtime.server", description=serve.__doc__)
    parser.add_argument("bundle", type=Path, help="a bundle directory written by langtrim pack")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)"
    )
    parser.add_argument("--no-batching", action="store_true", help="run each request alone")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    try:
        serve(
            args.bundle,
            args.host,
            args.port,
            args.threads,
            batching=not args.no_batching,
            log_level=args.log_level,
        )
    except LangtrimError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
