"""langtrim's /entities for token-classification (NER) bundles; text-embeddings-inference has no such route.

    POST /entities  {"inputs": text | [text], "truncate", "truncation_direction", "prompt_name"}
                    -> [[{"label", "score", "start", "end", "text"}]]: one list of entities per text

Entities are grouped as the transformers pipeline's aggregation_strategy="simple" groups them
(`runtime/entities.py`); start and end are character offsets into the text as sent.
"""

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from langtrim.runtime.server.context import infer, state_of
from langtrim.runtime.server.requests import check_texts
from langtrim.runtime.server.schemas import EntitiesRequest, EntitySpan


async def entities(request: Request, body: EntitiesRequest) -> Response:
    state = state_of(request)
    texts = check_texts(body.inputs, state.limits, body.prompt_name, state.manifest.prompts)
    result = await infer(
        request,
        texts,
        prompt=body.prompt_name,
        truncate=body.truncate,
        truncation=body.truncation_direction,
        output="hidden",  # a token classifier's per-token output: its logits
    )
    # The spans need each token's offsets: the texts are tokenized again, off the event loop.
    found = await asyncio.to_thread(
        state.encoder.spans,
        texts,
        list(result.outputs),
        prompt=body.prompt_name,
        truncation=body.truncation_direction,
    )
    return JSONResponse([[EntitySpan(**vars(entity)).model_dump() for entity in spans] for spans in found])
