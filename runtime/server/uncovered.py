"""Text the bundle does not cover, at serve time: counted, reported with each response, refused on request.

Every text a route runs through the model is first checked with `Encoder.coverage` (one more tokenization,
no model run; see `langtrim.runtime.coverage`). Uncovered texts are counted in Prometheus
(`langtrim_uncovered_texts_total`) and the response says which, in headers that TEI and OpenAI clients
ignore (the bodies stay theirs):

    x-langtrim-uncovered: 2                  how many of the request's texts the bundle does not cover
    x-langtrim-uncovered-indices: 0,3        which (positions in the request's inputs), when any

With `--on-uncovered reject` (`$LANGTRIM_ON_UNCOVERED`) such a request is refused, 422 in TEI's shape or
OpenAI's 400 `invalid_request_error`, naming the bundle's languages, before the model runs.
"""

from collections.abc import Sequence
from typing import Literal, get_args

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from langtrim.runtime.encoder import Encoder
from langtrim.runtime.server.limits import ApiError
from langtrim.runtime.server.metrics import Metrics

OnUncovered = Literal["allow", "reject"]
ON_UNCOVERED: tuple[str, ...] = get_args(OnUncovered)
UNCOVERED_HEADER = "x-langtrim-uncovered"
INDICES_HEADER = "x-langtrim-uncovered-indices"
_STATE_KEY = "langtrim_uncovered"  # in the request's scope state: the uncovered indices, for the headers


def check_coverage(
    request: Request,
    encoder: Encoder,
    metrics: Metrics,
    texts: Sequence[str],
    on_uncovered: OnUncovered,
    field: str = "inputs",
) -> None:
    """Count the texts the bundle does not cover, note them for the response headers, and with "reject"
    refuse the request (422) naming the first and the bundle's languages."""
    uncovered = [i for i, record in enumerate(encoder.coverage(texts)) if not record.covered]
    request.state.langtrim_uncovered = uncovered
    if not uncovered:
        return
    metrics.uncovered[metrics.label(request.url.path)] += len(uncovered)
    if on_uncovered == "reject":
        languages = ", ".join(encoder.manifest.languages)
        where = f"`{field}[{uncovered[0]}]`" if len(texts) > 1 else f"`{field}`"
        more = f" (and {len(uncovered) - 1} more)" if len(uncovered) > 1 else ""
        raise ApiError(
            422,
            "uncovered text",
            f"{where}{more} is not in a language this model covers ({languages}): it was trimmed to those "
            "languages, so its vector would not be reliable; send text in one of them",
        )


class CoverageHeaders:
    """Adds the uncovered-text headers to the response of a request whose texts were checked."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_coverage(message: Message) -> None:
            uncovered = scope.get("state", {}).get(_STATE_KEY)
            if message["type"] == "http.response.start" and uncovered is not None:
                headers = [(UNCOVERED_HEADER.encode(), str(len(uncovered)).encode())]
                if uncovered:
                    headers.append((INDICES_HEADER.encode(), ",".join(map(str, uncovered)).encode()))
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_coverage)
