"""The container's health check: it probes the address the server listens on, read from the server's own
command line (PID 1's, in a container) and the environment, and says in one line why it is unhealthy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from langtrim.runtime import UsageError
from langtrim.runtime.server.healthcheck import health_url, server_arguments
from tests.support.server import SERVER_MODULE, free_port, packed_bundle, running_server

HEALTHCHECK = [sys.executable, "-m", "langtrim.runtime.server.healthcheck"]


@pytest.fixture(scope="module")
def embedding_bundle(tiny_models, sentences, tmp_path_factory) -> Path:
    return packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)


@pytest.mark.parametrize(
    ("command_line", "arguments"),
    [
        (["python", "-m", "langtrim.runtime.server", "--threads", "2"], ["--threads", "2"]),
        (
            ["/sbin/docker-init", "--", "python", "-m", "langtrim.runtime.server", "b"],
            ["b"],
        ),  # docker run --init
        (
            ["/opt/langtrim/bin/python", "/opt/langtrim/bin/langtrim", "serve", "--port", "9000"],
            ["--port", "9000"],
        ),
        (
            ["sh", "-c", "python -m langtrim.runtime.server --port 9000"],
            None,
        ),  # a shell: only the environment counts
        (["/usr/sbin/init", "serve"], None),
    ],
)
def test_the_server_arguments_are_found_in_a_command_line(command_line, arguments) -> None:
    assert server_arguments(command_line) == arguments


def _command_line_file(tmp_path: Path, *words: str) -> Path:
    path = tmp_path / "cmdline"
    path.write_bytes(b"".join(word.encode() + b"\0" for word in words))  # /proc/PID/cmdline's format
    return path


def test_the_servers_own_port_option_wins_over_the_environment(tmp_path: Path) -> None:
    """`docker run -e LANGTRIM_PORT=9001 IMAGE --port 9000` listens on 9000, so that is what is probed."""
    pid1 = _command_line_file(tmp_path, "python", "-m", "langtrim.runtime.server", "--port", "9000")
    assert (
        health_url(pid1, {"LANGTRIM_PORT": "9001", "LANGTRIM_HOST": "0.0.0.0"})
        == "http://127.0.0.1:9000/health"
    )


def test_without_a_server_command_line_the_environment_decides(tmp_path: Path) -> None:
    assert health_url(tmp_path / "no-such-file", {"LANGTRIM_PORT": "9001"}) == "http://127.0.0.1:9001/health"
    assert health_url(tmp_path / "no-such-file", {}) == "http://127.0.0.1:8080/health"
    pid1 = _command_line_file(tmp_path, "/usr/sbin/init")
    assert health_url(pid1, {"LANGTRIM_HOST": "::", "LANGTRIM_PORT": "9002"}) == "http://[::1]:9002/health"
    assert health_url(pid1, {"LANGTRIM_HOST": "10.1.2.3"}) == "http://10.1.2.3:8080/health"


def test_options_the_server_would_refuse_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="LANGTRIM_PORT='http' is not a TCP port"):
        health_url(tmp_path / "no-such-file", {"LANGTRIM_PORT": "http"})


def test_the_health_check_passes_on_the_configured_port_and_fails_on_another(embedding_bundle: Path) -> None:
    port, other = free_port(), free_port()
    while other == port:
        other = free_port()
    env = {**os.environ, "LANGTRIM_BUNDLE": str(embedding_bundle), "LANGTRIM_PORT": str(port)}
    with running_server([*SERVER_MODULE, "--threads", "1"], port, env=env):
        # a proxy in the container's environment must not take the loopback probe elsewhere
        proxied = {**env, "http_proxy": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
        healthy = subprocess.run(
            HEALTHCHECK, env=proxied, capture_output=True, text=True, timeout=60, check=False
        )
        assert (healthy.returncode, healthy.stderr) == (0, "")
        elsewhere = subprocess.run(
            HEALTHCHECK,
            env={**env, "LANGTRIM_PORT": str(other)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert elsewhere.returncode == 1  # docker reserves 2
    assert elsewhere.stderr.splitlines() == [
        f"unhealthy: GET http://127.0.0.1:{other}/health: [Errno 111] Connection refused"
    ]


def test_bad_options_are_unhealthy_with_status_1_not_2() -> None:
    result = subprocess.run(
        HEALTHCHECK,
        env={**os.environ, "LANGTRIM_THREADS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "unhealthy: the server's options are bad: LANGTRIM_THREADS='0' is not a positive whole number: give e.g. 4"
    ]


def test_the_health_check_imports_no_web_stack_and_no_onnxruntime() -> None:
    code = (
        "import sys, langtrim.runtime.server.healthcheck\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'uvicorn', 'pydantic', 'onnxruntime'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
