"""`langtrim serve` as a process: bind the port, run the app on uvicorn, report a bad bundle in one line.

    python -m langtrim.runtime.server BUNDLE [--host 127.0.0.1] [--port 8080] [--threads N]

`main` needs only the runtime and the `serve` extra (no typer, no torch), so the container runs it directly;
`langtrim serve` hands its arguments to `main`, so both take the same options. The application itself is
`app.create_app`.
"""

import argparse
import errno
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from langtrim.runtime.errors import LangtrimError, UsageError
from langtrim.runtime.server.app import create_app
from langtrim.runtime.server.limits import DEFAULT_LIMITS, ServerLimits

logger = logging.getLogger(__name__)


DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def serve(
    bundle_dir: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    threads: int | None = None,
    *,
    limits: ServerLimits = DEFAULT_LIMITS,
    batching: bool = True,
    log_level: str = "info",
    bundle_digest: str | None = None,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
    access_log: bool = False,
) -> None:
    """Serve `bundle_dir` with uvicorn until interrupted; raise BundleError if the bundle cannot load.

    The listening socket is bound here, before uvicorn starts, so a port in use is a one-line UsageError
    rather than uvicorn's log line and exit.
    """
    import uvicorn

    from langtrim.runtime.server.connections import header_deadline_protocol

    app = create_app(
        bundle_dir,
        threads=threads,
        limits=limits,
        batching=batching,
        bundle_digest=bundle_digest,
        api_key=api_key,
        cors_origins=cors_origins,
        access_log=access_log,
    )
    listener = _listen(host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # the app's own (`access_log`) names each request's id
        server_header=False,
        limit_concurrency=limits.max_connections,
        http=header_deadline_protocol(limits.header_timeout_seconds),
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
    except socket.gaierror as error:
        listener.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: the host does not resolve ({error.strerror}); give an address of "
            "this machine, e.g. --host 127.0.0.1 or --host 0.0.0.0"
        ) from None
    except OSError as error:
        listener.close()
        fixes = {
            errno.EADDRINUSE: "stop what uses that port or pass another --port",
            errno.EADDRNOTAVAIL: "the address is not one of this machine's: pass --host 127.0.0.1 or 0.0.0.0",
            errno.EACCES: "ports below 1024 need privileges: pass a --port of 1024 or more",
        }
        fix = fixes.get(error.errno or 0, "check --host and --port")
        raise UsageError(f"cannot listen on {host}:{port} ({error.strerror}): {fix}") from None
    listener.set_inheritable(True)
    return listener


# What one request may ask, as options: (ServerLimits field, help). Their defaults are ServerLimits'.
_LIMIT_OPTIONS = (
    ("max_texts", "texts per request; more is 413"),
    ("max_text_chars", "characters per text; more is 413"),
    ("max_body_bytes", "request body bytes; more is 413"),
    ("max_inflight", "requests admitted at once; more get 503 with Retry-After"),
    ("max_batch_tokens", "tokens one request may have the model run; more is 413"),
    ("header_timeout_seconds", "seconds to receive a request's headers; slower connections are closed"),
    ("body_timeout_seconds", "seconds to receive a request body; slower is 408"),
    ("max_connections", "open connections; more get 503"),
)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class _OneLineErrors(argparse.ArgumentParser):
    """An option error is one line on stderr (exit 2), like every other error of langtrim, not the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port: give a number from 1 to 65535")
    return int(value)


def argument_parser(prog: str = "python -m langtrim.runtime.server") -> argparse.ArgumentParser:
    """The server's options: the one definition behind both `python -m langtrim.runtime.server` and
    `langtrim serve`, which hands its arguments here."""
    parser = _OneLineErrors(
        prog=prog,
        description="Serve a bundle over HTTP (text-embeddings-inference and OpenAI compatible), without torch.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("bundle", type=Path, help="a bundle directory written by langtrim pack")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (0.0.0.0 accepts other machines)"
    )
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="TCP port")
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime intra-op threads (None: one per core)"
    )
    parser.add_argument(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the texts of requests that wait together in one inference",
    )
    for name, description in _LIMIT_OPTIONS:
        variable = f"LANGTRIM_{name.upper()}"
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=os.environ.get(variable, str(getattr(DEFAULT_LIMITS, name))),  # argparse applies `type`
            help=f"{description}; default: ${variable} or %(default)s",
        )
    parser.add_argument(
        "--truncate",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_LIMITS.auto_truncate,
        help="truncate texts over the model's max_length unless a request says otherwise",
    )
    parser.add_argument(
        "--bundle-digest",
        default=os.environ.get("LANGTRIM_BUNDLE_DIGEST") or None,
        help="serve only the bundle with this digest (sha256:..., as `langtrim inspect` prints); "
        "default: $LANGTRIM_BUNDLE_DIGEST",
    )
    # These two read their variables after parsing (`main`): a key in a default would be printed by --help,
    # and an appending option would add to a default list instead of replacing it.
    parser.add_argument(
        "--api-key",
        help="require Authorization: Bearer KEY on every route but /health; default: $LANGTRIM_API_KEY",
    )
    parser.add_argument(
        "--cors-allow-origin",
        action="append",
        help='a browser origin allowed to call the server ("*" for any), repeatable; none by default; '
        "default: $LANGTRIM_CORS_ALLOW_ORIGIN (comma-separated)",
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("LANGTRIM_ACCESS_LOG", "") == "1",
        help="log one line per request, with its x-request-id; default: $LANGTRIM_ACCESS_LOG=1",
    )
    parser.add_argument(
        "--log-level", default="info", choices=LOG_LEVELS, help="uvicorn's and langtrim's log level"
    )
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m langtrim.runtime.server") -> None:
    """Parse the options, serve, and report a problem the user can fix as one line with exit status 1."""
    args = argument_parser(prog).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    try:
        limits = ServerLimits(
            **{name: getattr(args, name) for name, _ in _LIMIT_OPTIONS}, auto_truncate=args.truncate
        )
        serve(
            args.bundle,
            args.host,
            args.port,
            args.threads,
            limits=limits,
            batching=args.batching,
            log_level=args.log_level,
            bundle_digest=args.bundle_digest,
            api_key=args.api_key or os.environ.get("LANGTRIM_API_KEY") or None,
            cors_origins=args.cors_allow_origin
            or [origin for origin in os.environ.get("LANGTRIM_CORS_ALLOW_ORIGIN", "").split(",") if origin],
            access_log=args.access_log,
        )
    except LangtrimError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
