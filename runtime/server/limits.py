"""What one request to `langtrim serve` may ask, and the error the server answers with when it asks too much.

No web framework here: the batcher raises `ApiError` from its thread-free queue code, the HTTP edge turns it
into a JSON response in the route's API shape (`error_response`) with its status and headers.
"""

from dataclasses import asdict, dataclass
from typing import Any

from langtrim.runtime.errors import UsageError


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask and how much work may wait; over a limit the server answers 422 (413 for the
    body's bytes), and 429 when full.

    Together they bound what the server holds: bodies are read before admission, each within
    body_timeout_seconds, on at most max_connections connections (so at most max_connections x
    max_body_bytes of bodies); at most max_inflight requests wait or run, each of at most max_batch_tokens
    tokens, and one onnxruntime round takes at most max_batch_texts texts.
    """

    max_texts: int = 128  # texts per request
    max_text_chars: int = 8192  # characters per text (Unicode code points)
    max_body_bytes: int = 4 * 1024 * 1024  # request body
    max_inflight: int = 64  # requests admitted (waiting or running); more get 429 + Retry-After
    max_batch_texts: int = 256  # texts one round of the batcher may take from several requests
    max_batch_tokens: int = 16_384  # tokens one request may have the model run (text-embeddings-inference's)
    header_timeout_seconds: int = 10  # to receive a request's headers; slower connections are closed
    body_timeout_seconds: int = 10  # to receive a whole request body; a stalled upload gets 408
    max_connections: int = 256  # open connections (uvicorn's limit_concurrency); more get 503
    retry_after_seconds: int = 1
    auto_truncate: bool = False  # truncate texts over max_length tokens when the request does not say

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, bool) and (not isinstance(value, int) or value < 1):
                raise UsageError(f"ServerLimits.{name} must be a positive integer, got {value!r}")


DEFAULT_LIMITS = ServerLimits()


class ApiError(Exception):
    """A request the server refuses, answered with `status`, `headers` and a JSON body in the route's shape.

    `error` is short and stable (the metrics' label), `detail` names the specific problem and what to do
    about it (what clients show). `kind` is text-embeddings-inference's `error_type`, by default the one
    its router gives `status`.
    """

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        headers: dict[str, str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}
        self.kind = kind or _TEI_ERROR_TYPES.get(status, "Backend" if status >= 500 else "Validation")


# text-embeddings-inference's ErrorType by status (its router's `From<&ErrorType> for StatusCode`, reversed);
# 400 is also its "Empty", which the empty-input checks give explicitly.
_TEI_ERROR_TYPES = {424: "Backend", 429: "Overloaded", 503: "Unhealthy"}
EMPTY = "Empty"
# Routes that speak OpenAI's API answer errors in OpenAI's shape, and a request OpenAI would call invalid
# with 400 where text-embeddings-inference says 422.
OPENAI_ROUTES = frozenset({"/v1/embeddings", "/embeddings", "/v1/models"})
OPENAI_PREFIX = "/v1/"


def speaks_openai(path: str) -> bool:
    return path in OPENAI_ROUTES or path.startswith(OPENAI_PREFIX)


def error_response(path: str, error: ApiError) -> tuple[int, dict[str, Any]]:
    """An error's status and body as the route's API shapes them: OpenAI's error object (its clients show
    its `message`) with 400 for an invalid request, else text-embeddings-inference's
    `{"error": message, "error_type": kind}`."""
    if not speaks_openai(path):
        return error.status, {"error": error.detail, "error_type": error.kind}
    status = 400 if error.status == 422 else error.status
    kind = (
        "authentication_error"
        if status == 401
        else "rate_limit_error"
        if status == 429
        else "server_error"
        if status >= 500
        else "invalid_request_error"
    )
    code = error.error.replace(" ", "_")
    return status, {"error": {"message": error.detail, "type": kind, "param": None, "code": code}}


def unavailable(error: str, detail: str, limits: ServerLimits, status: int = 503) -> ApiError:
    """503 (loading) or 429 (full) with Retry-After: a retry soon will likely succeed."""
    return ApiError(status, error, detail, {"Retry-After": str(limits.retry_after_seconds)})
