"""OpenAI's embeddings API: POST /v1/embeddings (and TEI's alias /embeddings), GET /v1/models.

    POST /v1/embeddings  {"input": str | [str], "model", "encoding_format": "float" | "base64", "dimensions"}
                         -> {"object": "list", "data": [...], "model", "usage"}

Vectors are unit length, as OpenAI's are (and TEI's on this route); `dimensions` keeps the first values and
normalizes again. Errors are OpenAI's error object (`limits.error_response`).
"""

import base64
from datetime import datetime

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from langtrim.runtime.encoder import l2_normalize
from langtrim.runtime.server.context import infer, shortened, state_of
from langtrim.runtime.server.requests import encodable
from langtrim.runtime.server.schemas import (
    OpenAIEmbedding,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    OpenAIModel,
    OpenAIModelList,
    OpenAIUsage,
)


async def embeddings(request: Request, body: OpenAIEmbeddingRequest) -> Response:
    state = state_of(request)
    model = encodable(body.model, "model") if body.model else state.manifest.source.name  # echoed back
    result = await infer(request, body.input, field="input")
    vectors = l2_normalize(shortened(np.asarray(result.outputs), body.dimensions))
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


async def models(request: Request) -> Response:
    """OpenAI's model list: the one model this server serves, under the name /v1/embeddings echoes."""
    manifest = state_of(request).manifest
    created = int(datetime.fromisoformat(manifest.created).timestamp())
    model = OpenAIModel(id=manifest.source.name, created=created)
    return Response(OpenAIModelList(data=[model]).model_dump_json(), media_type="application/json")
