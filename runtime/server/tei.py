"""text-embeddings-inference's routes, answered as its router answers them (`router/src/http/server.rs`).

    POST /embed        {"inputs", "normalize", "truncate", "truncation_direction", "prompt_name", "dimensions"}
                       -> [[float]]
    POST /embed_all    {"inputs", "truncate", "truncation_direction", "prompt_name"} -> [[[float]]] per token
    POST /similarity   {"inputs": {"source_sentence", "sentences"}, "parameters"} -> [cosine]
    POST /predict      {"inputs": text | [a, b] | [[text], ...], "raw_scores", ...} -> [{"score", "label"}]
                       (pairs [a, b] for a bundle that takes pairs; /rerank is in `rerank`)
    POST /tokenize     {"inputs", "add_special_tokens", "prompt_name"} -> [[{"id", "text", "special", "start",
                       "stop"}]]
    POST /decode       {"ids", "skip_special_tokens"} -> [str]
    POST /  and  /invocations   the task's main route: /embed (or /similarity for a similarity body), /predict

A route of another task (/predict on an embedding bundle, /rerank, /embed_sparse) is TEI's 424 "model is
not a ... model". Each handler takes its validated body (`Handler`); `app` reads and admits it.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from langtrim.runtime.encoder import l2_normalize
from langtrim.runtime.errors import InputError
from langtrim.runtime.server.context import infer, shortened, state_of
from langtrim.runtime.server.limits import EMPTY, ApiError
from langtrim.runtime.server.requests import check_texts
from langtrim.runtime.server.rerank import infer_items
from langtrim.runtime.server.schemas import (
    DecodeRequest,
    EmbedAllRequest,
    EmbedRequest,
    PredictRequest,
    SimilarityParameters,
    SimilarityRequest,
    SimpleToken,
    TokenizeRequest,
)

# A route's handler: the request and its validated body -> the response.
Handler = Callable[[Request, Any], Awaitable[Response]]


async def embed(request: Request, body: EmbedRequest) -> Response:
    result = await infer(
        request,
        body.inputs,
        prompt=body.prompt_name,
        truncate=body.truncate,
        truncation=body.truncation_direction,
    )
    vectors = shortened(np.asarray(result.outputs), body.dimensions)
    return JSONResponse((l2_normalize(vectors) if body.normalize else vectors).tolist())


async def embed_all(request: Request, body: EmbedAllRequest) -> Response:
    result = await infer(
        request,
        body.inputs,
        prompt=body.prompt_name,
        truncate=body.truncate,
        truncation=body.truncation_direction,
        output="hidden",
    )
    return JSONResponse([states.tolist() for states in result.outputs])


async def similarity(request: Request, body: SimilarityRequest) -> Response:
    """Cosine similarity of the source sentence to each sentence, as TEI's /similarity."""
    parameters = body.parameters or SimilarityParameters()
    if not body.inputs.sentences:
        raise ApiError(400, "empty input", "`inputs.sentences` cannot be empty", kind=EMPTY)
    result = await infer(
        request,
        [body.inputs.source_sentence, *body.inputs.sentences],
        prompt=parameters.prompt_name,
        truncate=parameters.truncate,
        truncation=parameters.truncation_direction,
        field="inputs.sentences",
    )
    vectors = l2_normalize(np.asarray(result.outputs))
    return JSONResponse((vectors[1:] @ vectors[0]).tolist())


async def predict(request: Request, body: PredictRequest) -> Response:
    """Every label's score, best first: one list for a text, a list of lists for a batch [[text], ...]."""
    single = isinstance(body.inputs, str) or all(isinstance(item, str) for item in body.inputs)
    sequences: list[list[str]] = (
        [[body.inputs] if isinstance(body.inputs, str) else body.inputs]  # type: ignore[list-item]
        if single
        else body.inputs  # type: ignore[assignment]
    )
    pairs = state_of(request).manifest.pair_truncation is not None
    for i, sequence in enumerate(sequences):
        where = "inputs" if single else f"inputs[{i}]"
        if len(sequence) == 2 and not pairs:
            raise ApiError(
                422,
                "invalid request",
                f"{where} is a pair of texts, and this bundle classifies single texts: send one text "
                '(a batch is [["text"], ["text"]])',
            )
        if len(sequence) not in (1, 2):
            raise ApiError(
                422,
                "invalid request",
                f"{where} has {len(sequence)} items: send a text, a pair [a, b] or a batch [[text], ...]",
            )
    output = "logits" if body.raw_scores else "main"
    if any(len(sequence) == 2 for sequence in sequences):
        result = await infer_items(
            request,
            [sequence[0] if len(sequence) == 1 else (sequence[0], sequence[1]) for sequence in sequences],
            truncate=body.truncate,
            truncation=body.truncation_direction,
            output=output,
        )
    else:
        result = await infer(
            request,
            [sequence[0] for sequence in sequences],
            prompt=body.prompt_name,
            truncate=body.truncate,
            truncation=body.truncation_direction,
            output=output,
        )
    labels = state_of(request).manifest.labels
    ranked = [
        [{"score": float(row[c]), "label": labels[c]} for c in np.argsort(-row, kind="stable")]
        for row in np.asarray(result.outputs)
    ]
    return JSONResponse(ranked[0] if single else ranked)


async def tokenize(request: Request, body: TokenizeRequest) -> Response:
    """The bundle tokenizer's tokens of each text, prompt included, not truncated (as TEI)."""
    state = state_of(request)
    texts = check_texts(body.inputs, state.limits, body.prompt_name, state.manifest.prompts)
    prefix = state.manifest.prompts[body.prompt_name] if body.prompt_name is not None else ""
    encodings = await asyncio.to_thread(
        state.encoder.encodings, texts, prompt=body.prompt_name, add_special_tokens=body.add_special_tokens
    )
    return JSONResponse(
        [
            [token.model_dump() for token in _tokens(encoding, prefix + text)]
            for encoding, text in zip(encodings, texts, strict=True)
        ]
    )


async def decode(request: Request, body: DecodeRequest) -> Response:
    state = state_of(request)
    single = all(isinstance(item, int) for item in body.ids)
    sequences = [body.ids] if single else body.ids  # a batch was counted before validation (parse_body)
    try:
        texts = await asyncio.to_thread(
            state.encoder.decode, sequences, skip_special_tokens=body.skip_special_tokens
        )
    except InputError as error:
        raise ApiError(422, "invalid request", str(error)) from None
    return JSONResponse(texts)


def _tokens(encoding: Any, text: str) -> list[SimpleToken]:
    """TEI's `into_tokens`: special tokens by name without offsets, others as the UTF-8 bytes they cover."""
    data = text.encode("utf-8")
    byte_at = np.cumsum([0, *(len(char.encode("utf-8")) for char in text)])
    tokens = []
    for token_id, token, (start, stop), special in zip(
        encoding.ids, encoding.tokens, encoding.offsets, encoding.special_tokens_mask, strict=True
    ):
        if special:
            tokens.append(SimpleToken(id=token_id, text=token, special=True, start=None, stop=None))
        else:
            first, last = int(byte_at[start]), int(byte_at[stop])
            piece = data[first:last].decode("utf-8", errors="replace")
            tokens.append(SimpleToken(id=token_id, text=piece, special=False, start=first, stop=last))
    return tokens


def main_route(task_model: type[BaseModel], task_handler: Handler) -> Callable[[Any], tuple[type, Handler]]:
    """POST / (and /invocations): the task's main route; an embedding bundle also answers a similarity
    body there (`{"inputs": {"source_sentence", ...}}`, what InferenceClient.sentence_similarity sends)."""

    def choose(data: Any) -> tuple[type, Handler]:
        if task_model is EmbedRequest and isinstance(data, dict) and isinstance(data.get("inputs"), dict):
            return SimilarityRequest, similarity
        return task_model, task_handler

    return choose


def wrong_task(route: str, needs: str, instead: str) -> Callable[[Request], Awaitable[Response]]:
    """TEI's 424 for a route the bundle's model cannot answer, saying which routes it can (no body read)."""

    async def handler(request: Request) -> Response:
        raise ApiError(
            424,
            "wrong model type",
            f"model is not {needs} model, so {route} does not apply to this "
            f"{state_of(request).manifest.task} bundle: use {instead}",
        )

    return handler
