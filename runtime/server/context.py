"""What every route handler shares: the server's state, admission of a request's body, and running texts.

The handlers of each API (`tei`, `openai_api`) only translate between their API's shapes and these.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel
from starlette.requests import Request as HttpRequest

from langtrim.runtime.bundle import Manifest
from langtrim.runtime.encoder import Encoder, TruncationSide
from langtrim.runtime.server.batching import Batcher, Output, Request, Result
from langtrim.runtime.server.limits import ApiError, ServerLimits
from langtrim.runtime.server.metrics import Metrics
from langtrim.runtime.server.requests import check_texts, parse_body, read_json
from langtrim.runtime.server.uncovered import OnUncovered, check_coverage

_Body = TypeVar("_Body", bound=BaseModel)


@dataclass
class ServerState:
    bundle_dir: Path
    manifest: Manifest
    limits: ServerLimits
    batcher: Batcher
    metrics: Metrics
    load_error: BaseException | None = None
    on_uncovered: OnUncovered = "allow"  # a request with text the bundle does not cover: serve or refuse it

    @property
    def encoder(self) -> Encoder:
        """The loaded encoder; only inside `admitted`, which refuses requests until it is loaded."""
        assert self.batcher.loaded is not None
        return self.batcher.loaded.encoder


def state_of(request: HttpRequest) -> ServerState:
    state: ServerState = request.app.state.langtrim
    return state


@asynccontextmanager
async def admitted(request: HttpRequest, model: type[_Body]) -> AsyncIterator[_Body]:
    """The request's body as `model`, holding an in-flight place until the block ends.

    The body is read first (within its timeout), so a slow upload holds no place; then the request is
    admitted (503 while loading, 429 when full), then validated.
    """
    state = state_of(request)
    data = await read_json(request, state.limits)
    async with state.batcher.admit():
        yield parse_body(model, data, state.limits)


async def infer(
    request: HttpRequest,
    inputs: str | list[str],
    *,
    prompt: str | None = None,
    truncate: bool | None = None,
    truncation: TruncationSide = "right",
    output: Output = "main",
    field: str = "inputs",
) -> Result:
    """Run checked texts through the batcher and count them; `truncate` None is the server's default."""
    state = state_of(request)
    texts = check_texts(inputs, state.limits, prompt, state.manifest.prompts, field)
    check_coverage(request, state.encoder, state.metrics, texts, state.on_uncovered, field)
    wanted = state.limits.auto_truncate if truncate is None else truncate
    job = Request(texts, prompt, wanted, truncation, output)
    result = await state.batcher.run(job)
    endpoint = state.metrics.label(request.url.path)
    state.metrics.texts[endpoint] += len(texts)
    state.metrics.tokens[endpoint] += result.tokens
    return result


def shortened(vectors: np.ndarray, dimensions: int | None, field: str = "dimensions") -> np.ndarray:
    """The first `dimensions` values of each vector (Matryoshka shortening, as TEI and OpenAI do); normalize
    afterwards. 422 for 0 or more than the model has."""
    if dimensions is None:
        return vectors
    if not 0 < dimensions <= vectors.shape[1]:
        raise ApiError(
            422,
            "invalid request",
            f"`{field}` must be from 1 to this model's {vectors.shape[1]}, got {dimensions}",
        )
    return vectors[:, :dimensions]
