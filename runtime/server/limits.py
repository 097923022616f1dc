"""What one request to `langtrim serve` may ask, and the error the server answers with when it asks too much.

No web framework here: the batcher raises `ApiError` from its thread-free queue code, the HTTP edge turns it
into a JSON response `{"error": ..., "detail": ...}` with its status and headers.
"""

from dataclasses import asdict, dataclass
from typing import Any

from langtrim.runtime.errors import UsageError


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask and how much work may wait; over a limit the server answers 413 or 503.

    Together they bound what the server holds: bodies are read before admission, each within
    body_timeout_seconds, on at most max_connections connections (so at most max_connections x
    max_body_bytes of bodies); at most max_inflight requests wait or run, each of at most max_batch_tokens
    tokens, and one onnxruntime round takes at most max_batch_texts texts.
    """

    max_texts: int = 128  # texts per request
    max_text_chars: int = 8192  # characters per text (Unicode code points)
    max_body_bytes: int = 4 * 1024 * 1024  # request body
    max_inflight: int = 64  # requests admitted (waiting or running); more get 503 + Retry-After
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
    """A request the server refuses: answered as JSON {"error", "detail"} with `status` and `headers`.

    `error` is short and stable (clients and the metrics' labels use it), `detail` names the specific
    problem and what to do about it.
    """

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


OPENAI_PREFIX = "/v1/"  # routes that speak OpenAI's API answer errors in OpenAI's shape


def error_body(path: str, status: int, error: str, detail: str) -> dict[str, Any]:
    """An error as the route's API shapes it: OpenAI's error object under /v1/ (its clients show its
    `message`), else `{"error": short, "detail": what to do}`."""
    if not path.startswith(OPENAI_PREFIX):
        return {"error": error, "detail": detail}
    kind = (
        "authentication_error"
        if status == 401
        else "server_error"
        if status >= 500
        else "invalid_request_error"
    )
    return {"error": {"message": detail, "type": kind, "param": None, "code": error.replace(" ", "_")}}


def unavailable(error: str, detail: str, limits: ServerLimits) -> ApiError:
    """503 with Retry-After: the server is loading or full, and a retry soon will likely succeed."""
    return ApiError(503, error, detail, {"Retry-After": str(limits.retry_after_seconds)})
