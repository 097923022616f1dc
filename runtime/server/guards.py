"""What every request passes before a route sees it: a request id, the API key, and a JSON Content-Type.

A pure ASGI middleware, so a refused request costs no body read and no route. Its refusals are JSON in the
server's error shape (`limits.ApiError`'s): 401 without the API key, 415 for a body that says it is not
JSON (a browser's cross-origin form or text/plain POST). Every response carries `x-request-id`: the
client's, when it sent a sane one, else a new one; the access log and error logs name it.
"""

import hmac
import json
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from langtrim.runtime.server.limits import ApiError, error_response

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Liveness probes carry no credentials: text-embeddings-inference's health routes (GET / is one; POST / is
# the task's main route and needs the key).
_OPEN_ROUTES = frozenset({("GET", "/health"), ("GET", "/"), ("GET", "/ping"), ("HEAD", "/health")})
_JSON_TYPE = re.compile(r"application/(?:[\w.+-]+\+)?json\s*(?:;.*)?", re.IGNORECASE)


class Guards:
    """Request id in and out; `api_key` (when set) required as `Authorization: Bearer KEY`; JSON bodies only."""

    def __init__(self, app: ASGIApp, api_key: str | None = None) -> None:
        self.app, self._key = app, None if api_key is None else api_key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        given = headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id  # for the access log and error logs

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        refusal = self._refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send_with_id)
        else:
            await _send_error(send_with_id, scope["path"], *refusal)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str, dict[str, str]] | None:
        if self._key is not None and (scope["method"], scope["path"]) not in _OPEN_ROUTES:
            scheme, _, credentials = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                credentials.strip().encode("utf-8"), self._key
            ):
                return (
                    401,
                    "unauthorized",
                    "this server needs its API key: send the header Authorization: Bearer <key>",
                    {"www-authenticate": "Bearer"},
                )
        content_type = headers.get("content-type")
        if (
            scope["method"] == "POST"
            and content_type is not None
            and not _JSON_TYPE.fullmatch(content_type.strip())
        ):
            return (
                415,
                "unsupported media type",
                f"the body is {content_type.split(';')[0]!r}: send JSON with Content-Type: application/json",
                {},
            )
        return None


async def _send_error(
    send: Send, path: str, status: int, error: str, detail: str, headers: dict[str, str]
) -> None:
    status, content = error_response(path, ApiError(status, error, detail))
    body = json.dumps(content).encode("utf-8")
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(name.encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
