"""What the server tests share: tiny bundles to serve, and a real server process on a free loopback port.

The bundles are packed once per test session (under pytest's base temporary directory) from conftest's tiny
random-weight XLM-R models: real e5 tokenizer, trimmed to French Tatoeba sentences, fp32.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from langtrim.packager.pack.quantize import VariantSettings
from langtrim.runtime.server.limits import ServerLimits, speaks_openai
from tests.support.bundles import pack_small

SERVER_MODULE = [sys.executable, "-m", "langtrim.runtime.server"]


def packed_bundle(
    kind: str,
    tiny_models: dict[str, Path],
    sentences: Callable[[str], list[str]],
    tmp_path_factory: pytest.TempPathFactory,
    variant: VariantSettings = VariantSettings("none", "fp32", "none"),
) -> Path:
    """The bundle of conftest's tiny model `kind` ("xlmr", "xlmr-classifier"), packed once per session (fp32
    unless `variant` says otherwise)."""
    out = tmp_path_factory.getbasetemp() / "server-bundles" / f"{kind}-{variant.name.replace('/', '-')}"
    return pack_small(tiny_models[kind], out, sentences, variant)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    url: str
    log: str = ""  # the server's stderr, once it has stopped

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        """Resident memory of the server process (MB), from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"no VmRSS for process {self.pid}")


@contextmanager
def running_server(
    command: list[str], port: int, *, env: dict[str, str] | None = None, timeout: float = 120
) -> Iterator[ServerProcess]:
    """Start `command` (a server listening on 127.0.0.1:`port`), wait for GET /health, stop it at the end.

    The server is stopped with SIGTERM and must exit cleanly: status 0 or the signal uvicorn re-raises
    after shutting down, and no traceback in its log.
    """
    with tempfile.TemporaryFile(mode="w+") as log_file:  # a file, not a pipe: it never fills up
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=log_file, text=True, env=env or dict(os.environ)
        )
        server = ServerProcess(process, f"http://127.0.0.1:{port}")

        def log() -> str:
            log_file.seek(0)
            return log_file.read()

        try:
            deadline = time.monotonic() + timeout
            while True:
                assert process.poll() is None, f"the server exited ({process.returncode}): {log()}"
                try:
                    if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"the server was not ready after {timeout} s: {log()}"
                time.sleep(0.1)
            yield server
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            server.log = log()
    assert process.returncode in (0, -signal.SIGTERM), server.log  # uvicorn re-raises the signal on exit
    assert "Traceback" not in server.log, server.log


# Small limits, so the tests reach them with small requests.
LIMITS = ServerLimits(max_texts=8, max_text_chars=2048, max_body_bytes=32_768, max_inflight=4)


def ready(client: TestClient) -> TestClient:
    """`client` once its app has loaded the bundle (GET /health is 200)."""
    deadline = time.monotonic() + 60
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health").json()
        time.sleep(0.02)
    return client


def error_of(response: httpx.Response, status: int, kind: str | None = None) -> str:
    """The message of an error response, after checking its status and shape: text-embeddings-inference's
    `{"error", "error_type"}` (`kind`, by default the one TEI gives `status`), or OpenAI's error object on
    the OpenAI routes."""
    assert response.status_code == status, response.text
    body = response.json()
    if speaks_openai(response.request.url.path):
        error = body["error"]
        assert set(body) == {"error"} and set(error) == {"message", "type", "param", "code"}, body
        expected = {401: "authentication_error", 429: "rate_limit_error"}.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        assert error["type"] == expected, body
        return str(error["message"])
    default = {424: "Backend", 429: "Overloaded", 503: "Unhealthy"}.get(
        status, "Backend" if status >= 500 else "Validation"
    )
    assert set(body) == {"error", "error_type"} and body["error"], body
    assert body["error_type"] == (kind or default), body
    return str(body["error"])
