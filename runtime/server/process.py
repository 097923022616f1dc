"""`langtrim serve` as a process: bind the port, run the app on uvicorn, report a bad bundle in one line.

    python -m langtrim.runtime.server BUNDLE [--host 127.0.0.1] [--port 8080] [--threads N]

`main` needs only the runtime and the `serve` extra (no typer, no torch), so the container runs it directly;
`langtrim serve` hands its arguments to `main`, so both take the same options, defined in `options` (each
also an environment variable). The application itself is `app.create_app`.
"""

import errno
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from langtrim.runtime.errors import LangtrimError, UsageError
from langtrim.runtime.server.app import create_app
from langtrim.runtime.server.limits import DEFAULT_LIMITS, ServerLimits
from langtrim.runtime.server.options import DEFAULT_HOST, DEFAULT_PORT, LIMIT_NAMES, PROG, parse_options
from langtrim.runtime.server.uncovered import OnUncovered

logger = logging.getLogger(__name__)


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
    on_uncovered: OnUncovered = "allow",
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
        on_uncovered=on_uncovered,
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


def main(argv: list[str] | None = None, prog: str = PROG) -> None:
    """Read the options (command line, then environment), serve, and report a problem the user can fix as
    one line: exit status 2 for a bad option or variable, 1 for anything else (a bad bundle, a port in use)."""
    args = parse_options(argv, prog)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    try:
        limits = ServerLimits(
            **{name: getattr(args, name) for name in LIMIT_NAMES}, auto_truncate=args.truncate
        )
        serve(
            args.bundle,
            args.host,
            args.port,
            args.threads,
            limits=limits,
            batching=args.batching,
            log_level=args.log_level,
            bundle_digest=args.bundle_digest or None,
            api_key=args.api_key or None,
            cors_origins=args.cors_allow_origin,
            access_log=args.access_log,
            on_uncovered=args.on_uncovered,
        )
    except LangtrimError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
