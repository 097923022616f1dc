"""The server's options: each a flag and a `LANGTRIM_` variable, the command line over the environment over
the default, a bad variable one line naming it; and real server processes configured both ways."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from langtrim.runtime import UsageError
from langtrim.runtime.server.limits import DEFAULT_LIMITS
from langtrim.runtime.server.options import OPTIONS, argument_parser, read_options
from tests.support.server import SERVER_MODULE, free_port, packed_bundle, running_server

# For each option: a variable's text and the value it must give (never the default, so the test can fail).
SAMPLES = {
    "bundle": ("/srv/en.bundle", Path("/srv/en.bundle")),
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("9001", 9001),
    "threads": ("2", 2),
    "batching": ("off", False),
    "max_texts": ("7", 7),
    "max_text_chars": ("100", 100),
    "max_body_bytes": ("2048", 2048),
    "max_inflight": ("3", 3),
    "max_batch_tokens": ("512", 512),
    "header_timeout_seconds": ("4", 4),
    "body_timeout_seconds": ("5", 5),
    "max_connections": ("16", 16),
    "truncate": ("true", True),
    "bundle_digest": ("blake2b-256:" + "a" * 64, "blake2b-256:" + "a" * 64),
    "api_key": ("s3cret", "s3cret"),
    "cors_allow_origin": ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
    "access_log": ("1", True),
    "on_uncovered": ("reject", "reject"),
    "log_level": ("debug", "debug"),
}


@pytest.fixture(scope="module")
def embedding_bundle(tiny_models, sentences, tmp_path_factory) -> Path:
    return packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)


def test_every_option_has_its_variable_named_after_it() -> None:
    assert [option.variable for option in OPTIONS] == [
        "LANGTRIM_BUNDLE",
        "LANGTRIM_HOST",
        "LANGTRIM_PORT",
        "LANGTRIM_THREADS",
        "LANGTRIM_BATCHING",
        "LANGTRIM_MAX_TEXTS",
        "LANGTRIM_MAX_TEXT_CHARS",
        "LANGTRIM_MAX_BODY_BYTES",
        "LANGTRIM_MAX_INFLIGHT",
        "LANGTRIM_MAX_BATCH_TOKENS",
        "LANGTRIM_HEADER_TIMEOUT_SECONDS",
        "LANGTRIM_BODY_TIMEOUT_SECONDS",
        "LANGTRIM_MAX_CONNECTIONS",
        "LANGTRIM_TRUNCATE",
        "LANGTRIM_BUNDLE_DIGEST",
        "LANGTRIM_API_KEY",
        "LANGTRIM_CORS_ALLOW_ORIGIN",
        "LANGTRIM_ACCESS_LOG",
        "LANGTRIM_ON_UNCOVERED",
        "LANGTRIM_LOG_LEVEL",
    ]
    assert set(SAMPLES) == {option.name for option in OPTIONS}, "every option needs a sample below"


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.variable)
def test_each_variable_sets_its_option(option) -> None:
    text, expected = SAMPLES[option.name]
    default = read_options(["b.bundle"], {})
    assert getattr(default, option.name) != expected
    assert getattr(read_options([], {"LANGTRIM_BUNDLE": "b", option.variable: text}), option.name) == expected


def test_the_defaults_are_the_servers() -> None:
    options = read_options(["b.bundle"], {})
    assert (options.bundle, options.host, options.port, options.threads) == (
        Path("b.bundle"),
        "127.0.0.1",
        8080,
        None,
    )
    assert options.batching and not options.truncate and not options.access_log
    assert options.max_texts == DEFAULT_LIMITS.max_texts and options.cors_allow_origin == ()
    assert options.api_key is None and options.log_level == "info"


def test_the_command_line_wins_over_the_environment() -> None:
    environ = {
        "LANGTRIM_BUNDLE": "env.bundle",
        "LANGTRIM_PORT": "9001",
        "LANGTRIM_BATCHING": "0",
        "LANGTRIM_CORS_ALLOW_ORIGIN": "https://env.example",
        "LANGTRIM_LOG_LEVEL": "debug",
    }
    argv = ["cli.bundle", "--port", "9002", "--batching", "--cors-allow-origin", "https://cli.example"]
    options = read_options(argv, environ)
    assert (options.bundle, options.port, options.batching) == (Path("cli.bundle"), 9002, True)
    assert options.cors_allow_origin == ["https://cli.example"] and options.log_level == "debug"
    assert (
        read_options(["--no-access-log"], {"LANGTRIM_ACCESS_LOG": "yes", "LANGTRIM_BUNDLE": "b"}).access_log
        is False
    )


def test_an_empty_variable_counts_as_unset() -> None:
    options = read_options(["b"], {"LANGTRIM_PORT": "", "LANGTRIM_API_KEY": " ", "LANGTRIM_THREADS": ""})
    assert (options.port, options.api_key, options.threads) == (8080, None, None)


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("LANGTRIM_PORT", "80a", "LANGTRIM_PORT='80a' is not a TCP port: give a number from 1 to 65535"),
        ("LANGTRIM_PORT", "70000", "LANGTRIM_PORT='70000' is not a TCP port"),
        ("LANGTRIM_THREADS", "two", "LANGTRIM_THREADS='two' is not a positive whole number: give e.g. 4"),
        ("LANGTRIM_MAX_TEXTS", "0", "LANGTRIM_MAX_TEXTS='0' is not a positive whole number"),
        ("LANGTRIM_MAX_TEXTS", "²", "LANGTRIM_MAX_TEXTS='²' is not a positive whole number"),
        ("LANGTRIM_PORT", "-1", "LANGTRIM_PORT='-1' is not a TCP port"),
        ("LANGTRIM_BATCHING", "maybe", "LANGTRIM_BATCHING='maybe' is not on or off: give 1 or 0"),
        ("LANGTRIM_LOG_LEVEL", "loud", "LANGTRIM_LOG_LEVEL='loud' is not one of critical, error, warning"),
    ],
)
def test_a_bad_variable_is_an_error_naming_it_and_the_fix(variable: str, text: str, message: str) -> None:
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(")):
        read_options(["b"], {variable: text})


def test_a_bundle_from_neither_is_an_error_naming_both_ways() -> None:
    with pytest.raises(
        UsageError, match="no BUNDLE given: pass a bundle directory .*, or set LANGTRIM_BUNDLE"
    ):
        read_options(["--port", "9000"], {})


def test_help_names_each_variable_and_no_value(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    shown = argument_parser().format_help()
    for option in OPTIONS:
        assert f"[${option.variable}" in shown, option.variable
    assert "[$LANGTRIM_PORT, default 8080]" in shown and "[$LANGTRIM_BATCHING, default on]" in shown


def test_a_bad_variable_exits_2_with_one_line_and_no_traceback() -> None:
    env = {**os.environ, "LANGTRIM_THREADS": "lots", "LANGTRIM_API_KEY": "never-printed"}
    result = subprocess.run(
        [*SERVER_MODULE, "some.bundle"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: LANGTRIM_THREADS='lots' is not a positive whole number: give e.g. 4 "
        "(see python -m langtrim.runtime.server --help)"
    ]


def test_the_help_of_langtrim_serve_shows_the_variables_not_a_secret() -> None:
    env = {**os.environ, "LANGTRIM_API_KEY": "from-env-key", "COLUMNS": "200"}
    langtrim = str(Path(sys.executable).parent / "langtrim")
    shown = subprocess.run([langtrim, "serve", "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "usage: langtrim serve" in shown.stdout
    assert "[$LANGTRIM_API_KEY]" in shown.stdout and "from-env-key" not in shown.stdout


# --- real server processes -----------------------------------------------------------------------------------


def test_a_server_configured_by_the_environment_alone(embedding_bundle: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LANGTRIM_BUNDLE": str(embedding_bundle),
        "LANGTRIM_PORT": str(port),
        "LANGTRIM_THREADS": "1",
        "LANGTRIM_MAX_TEXTS": "2",
    }
    with running_server(SERVER_MODULE, port, env=env) as server:
        too_many = httpx.post(f"{server.url}/embed", json={"inputs": ["a", "b", "c"]}, timeout=30)
        assert too_many.status_code == 422 and "maximum allowed batch size 2" in too_many.text


def test_options_appended_to_langtrim_serve_win_over_its_environment(embedding_bundle: Path) -> None:
    """As `docker run IMAGE --port N` does: the variables give the bundle, the arguments the port."""
    env_port, port = free_port(), free_port()
    while port == env_port:
        port = free_port()
    env = {**os.environ, "LANGTRIM_BUNDLE": str(embedding_bundle), "LANGTRIM_PORT": str(env_port)}
    command = [str(Path(sys.executable).parent / "langtrim"), "serve", "--port", str(port), "--threads", "1"]
    with running_server(command, port, env=env) as server:
        assert httpx.post(f"{server.url}/embed", json={"inputs": "x"}, timeout=30).status_code == 200
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{env_port}/health", timeout=2)
