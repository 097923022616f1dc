"""The HTTP server: text-embeddings-inference and OpenAI compatible routes over one bundle.

    python -m langtrim.runtime.server BUNDLE [--host 127.0.0.1] [--port 8080] [--threads N]

Modules, from the edge inward: `process` (options, bind the port, run uvicorn), `app` (the route table,
state routes, errors), `tei` and `openai_api` (each API's handlers), `context` (what handlers share),
`requests` and `schemas` (what a client may send), `batching` (inference off the event loop), `limits`,
`guards`, `connections`, `metrics`, `openapi`. Needs the `serve` extra (Starlette, uvicorn, pydantic); no torch. The names below are imported on
first use, so `limits` and `batching` load without the web stack.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langtrim.runtime.server.app import create_app
    from langtrim.runtime.server.limits import ServerLimits
    from langtrim.runtime.server.process import main, serve

_LAZY = {
    "create_app": "langtrim.runtime.server.app",
    "ServerLimits": "langtrim.runtime.server.limits",
    "main": "langtrim.runtime.server.process",
    "serve": "langtrim.runtime.server.process",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServerLimits", "create_app", "main", "serve"]
