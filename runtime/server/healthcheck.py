"""The container's HEALTHCHECK: GET /health of the server the container runs, on the address it listens on.

    python -m langtrim.runtime.server.healthcheck    # exit 0 healthy; 1 not, with one line saying why

It reads the server's options as the server read them: the same environment, and the server's own command
line when PID 1 runs the server (docker starts the image's ENTRYPOINT as PID 1, and under `docker run --init`
the server's command follows the init's). So `docker run IMAGE --port 9000` is probed on 9000, as is
`docker run -e LANGTRIM_PORT=9000 IMAGE`. When PID 1 is something else (a shell wrapping the server, or no
container), only the environment and the defaults count: set LANGTRIM_PORT rather than --port there.
/health needs no API key. No web stack is imported: this runs every few seconds.
"""

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from langtrim.runtime.errors import UsageError
from langtrim.runtime.server.options import read_options

PID1_COMMAND_LINE = Path("/proc/1/cmdline")
TIMEOUT_SECONDS = 4  # under the Dockerfile's HEALTHCHECK --timeout=5s
_ANY_ADDRESS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def server_arguments(command_line: Sequence[str]) -> list[str] | None:
    """The server's options in a process's command line, or None if the process is not a langtrim server:
    what follows `-m langtrim.runtime.server` or `langtrim serve`."""
    for index, word in enumerate(command_line):
        if word == "langtrim.runtime.server" or (
            word == "serve" and index > 0 and Path(command_line[index - 1]).name == "langtrim"
        ):
            return list(command_line[index + 1 :])
    return None


def health_url(command_line_file: Path, environ: Mapping[str, str]) -> str:
    """The /health URL of the server: its host (a wildcard address becomes loopback) and port; UsageError if
    its options are bad (then the server is not running either)."""
    try:
        command_line = command_line_file.read_bytes().decode(errors="replace").split("\0")
    except OSError:  # no /proc, or another user's process
        command_line = []
    options = read_options(server_arguments(command_line) or [], environ, check_required=False)
    host = _ANY_ADDRESS.get(options.host, options.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{options.port}/health"


def check(url: str) -> str | None:
    """None if `url` answers 200, else why not, in a few words."""
    # No proxy: a container's HTTP_PROXY must not route a loopback probe elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT_SECONDS) as response:
            return None if response.status == 200 else f"status {response.status}"
    except urllib.error.HTTPError as error:  # 503 while the bundle loads
        return f"status {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def main() -> None:
    """Exit 0 if healthy, else 1 with one line on stderr (docker reserves exit status 2)."""
    try:
        url = health_url(PID1_COMMAND_LINE, os.environ)
    except UsageError as error:
        sys.exit(f"unhealthy: the server's options are bad: {error}")
    problem = check(url)
    if problem is not None:
        sys.exit(f"unhealthy: GET {url}: {problem}")


if __name__ == "__main__":
    main()
