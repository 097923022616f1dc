"""`langtrim serve` as a process: bind the port, run the app on uvicorn, report a bad bundle in one line.

    python -m langtrim.runtime.server BUNDLE [--host 127.0.0.1] [--port 8080] [--threads N]

`main` needs only the runtime and the `serve` extra (no typer, no torch), so the container runs it directly;
`langtrim serve` calls `serve` the same way. The application itself is server_app.create_app.
"""

import argparse
import logging
import socket
import sys
from pathlib import Path

from langtrim.runtime.errors import LangtrimError, UsageError
from langtrim.runtime.server.app import create_app
from langtrim.runtime.server.limits import DEFAULT_LIMITS, ServerLimits

__all__ = ["ServerLimits", "create_app", "main", "serve"]

logger = logging.getLogger(__name__)


def serve(
    bundle_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int | None = None,
    *,
    limits: ServerLimits = DEFAULT_LIMITS,
    batching: bool = True,
    log_level: str = "info",
) -> None:
    """Serve `bundle_dir` with uvicorn until interrupted; raise BundleError if the bundle cannot load.

    The listening socket is bound here, before uvicorn starts, so a port in use is a one-line UsageError
    rather than uvicorn's log line and exit.
    """
    import uvicorn

    app = create_app(bundle_dir, threads=threads, limits=limits, batching=batching)
    listener = _listen(host, port)
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False, server_header=False
    )
    server = uvicorn.Server(config)

    def stop(error: BaseException) -> None:
        server.should_exit = True

    app.state.on_load_failure = stop
    with listener:
        logger.info(
            "listening on http://%s:%d (the bundle loads in the background: see GET /health)", host, port
        )
        server.run(sockets=[listener])
    error = app.state.langtrim.load_error
    if error is not None:
        raise error


def _listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (IPv6 if host is an IPv6 address) and ready for uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({error.strerror}): stop what uses that port or pass another --port"
        ) from None
    listener.set_inheritable(True)
    return listener


def main(argv: list[str] | None = None) -> None:
    """`python -m langtrim.runtime.server BUNDLE`: the server without the langtrim CLI's dependencies."""
    parser = argparse.ArgumentParser(prog="python -m langtrim.runtime.server", description=serve.__doc__)
    parser.add_argument("bundle", type=Path, help="a bundle directory written by langtrim pack")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)"
    )
    parser.add_argument("--no-batching", action="store_true", help="run each request alone")
    defaults = DEFAULT_LIMITS
    for name in ("max_texts", "max_text_chars", "max_body_bytes", "max_inflight"):
        flag = "--" + name.replace("_", "-")
        parser.add_argument(
            flag, type=int, default=getattr(defaults, name), help=f"default {getattr(defaults, name)}"
        )
    parser.add_argument(
        "--truncate", action="store_true", help="truncate over-long texts unless a request says otherwise"
    )
    parser.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    try:
        limits = ServerLimits(
            max_texts=args.max_texts,
            max_text_chars=args.max_text_chars,
            max_body_bytes=args.max_body_bytes,
            max_inflight=args.max_inflight,
            auto_truncate=args.truncate,
        )
        serve(
            args.bundle,
            args.host,
            args.port,
            args.threads,
            limits=limits,
            batching=not args.no_batching,
            log_level=args.log_level,
        )
    except LangtrimError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
