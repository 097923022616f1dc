"""text-embeddings-inference's /rerank, and /predict's text pairs, for bundles that take pairs.

    POST /rerank   {"query", "texts", "truncate", "truncation_direction", "raw_scores", "return_text"}
                   -> [{"index", "score", "text"?}] best first (TEI's router, `router/src/http/server.rs`)

A reranker is a pair classifier with one label (TEI's rule); its score is the sigmoid of its logit, or the
logit with raw_scores. A pair over max_length is cut as the bundle's pair_truncation says ("only_second"
keeps the query whole), only when truncation is asked for; else it is a 422 like any long text.
"""

from collections.abc import Sequence

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from langtrim.runtime.encoder import TruncationSide
from langtrim.runtime.pairs import TextPair
from langtrim.runtime.server.batching import Output, Result
from langtrim.runtime.server.batching import Request as Job
from langtrim.runtime.server.context import state_of
from langtrim.runtime.server.limits import EMPTY, ApiError
from langtrim.runtime.server.requests import check_count, check_texts
from langtrim.runtime.server.schemas import Rank, RerankRequest


def is_reranker(labels: Sequence[str], pair_truncation: str | None) -> bool:
    return pair_truncation is not None and len(labels) == 1


async def infer_items(
    request: Request,
    items: Sequence[str | TextPair],
    *,
    truncate: bool | None,
    truncation: TruncationSide,
    output: Output = "main",
    field: str = "inputs",
) -> Result:
    """Run texts and pairs through the batcher (as `context.infer` runs texts), each text checked against
    the limits; a pair counts as one item of the batch."""
    state = state_of(request)
    check_count(field, len(items), state.limits)
    for i, item in enumerate(items):
        texts = [item] if isinstance(item, str) else list(item)
        check_texts(texts, state.limits, None, state.manifest.prompts, f"{field}[{i}]")
    wanted = state.limits.auto_truncate if truncate is None else truncate
    result = await state.batcher.run(Job(list(items), None, wanted, truncation, output))  # type: ignore[arg-type]
    endpoint = state.metrics.label(request.url.path)
    state.metrics.texts[endpoint] += len(items)
    state.metrics.tokens[endpoint] += result.tokens
    return result


async def rerank(request: Request, body: RerankRequest) -> Response:
    """Each text's relevance to the query, best first, as TEI's /rerank answers."""
    if not body.texts:
        raise ApiError(400, "empty input", "`texts` cannot be empty", kind=EMPTY)
    check_texts([body.query], state_of(request).limits, None, {}, "query")
    result = await infer_items(
        request,
        [(body.query, text) for text in body.texts],
        truncate=body.truncate,
        truncation=body.truncation_direction,
        output="logits" if body.raw_scores else "main",
        field="texts",
    )
    scores = np.asarray(result.outputs)[:, 0]
    order = np.argsort(-scores, kind="stable")  # TEI sorts by score, best first
    ranks = [
        Rank(index=int(i), score=float(scores[i]), text=body.texts[i] if body.return_text else None)
        for i in order
    ]
    return JSONResponse([rank.model_dump(exclude_none=True) for rank in ranks])
