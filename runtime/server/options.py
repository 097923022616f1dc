"""The server's options, each a command-line flag and an environment variable: the one definition behind
`python -m langtrim.runtime.server`, `langtrim serve` and the container's health check.

Option `--max-texts` is also `$LANGTRIM_MAX_TEXTS` (`LANGTRIM_` + the option's name): the command line wins
over the environment, the environment over the default. A container is configured by environment
(`docker run -e`) while `docker run IMAGE --threads 2` appends to the image's command, so both must reach the
same options. A variable's text is read as the flag's argument would be; an empty variable counts as unset
(compose files write `VAR=` for "no value"). Switches take 1/0, true/false, yes/no or on/off; a repeatable
option's variable is a comma-separated list.

Only light modules are imported here (argparse, `limits`): the health check runs this every few seconds.
"""

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from langtrim.runtime.errors import UsageError
from langtrim.runtime.server.limits import DEFAULT_LIMITS

PROG = "python -m langtrim.runtime.server"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone takes "²", which int() refuses


def _port(text: str) -> int:
    if not _digits(text) or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port: give a number from 1 to 65535")
    return int(text)


def _positive_int(text: str) -> int:
    if not _digits(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number: give e.g. 4")
    return int(text)


def _switch(text: str) -> bool:
    if text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
    raise argparse.ArgumentTypeError(
        f"{text!r} is not on or off: give 1 or 0 (or true/false, yes/no, on/off)"
    )


@dataclass(frozen=True)
class Option:
    """One server option. `name` is the parsed attribute; the flag is `--name-with-dashes` (or the
    positional argument NAME), the variable `LANGTRIM_NAME`."""

    name: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] = str  # an argument's or a variable's text -> value; ArgumentTypeError if bad
    kind: Literal["value", "switch", "list", "positional"] = "value"
    choices: tuple[str, ...] | None = None
    required: bool = False

    @property
    def variable(self) -> str:
        return "LANGTRIM_" + self.name.upper()

    def from_variable(self, text: str) -> Any:
        """The value of the variable's text; ArgumentTypeError if the flag would refuse it."""
        if self.kind == "switch":
            return _switch(text)
        if self.kind == "list":
            return [self.parse(item.strip()) for item in text.split(",") if item.strip()] or self.default
        if self.choices is not None and text not in self.choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(self.choices)}")
        return self.parse(text)

    def help_text(self) -> str:
        """The help line: what the option does, its variable and its default (never a variable's value,
        which may be a secret such as the API key)."""
        shown = (
            {True: "on", False: "off"}.get(self.default, self.default)
            if self.kind == "switch"
            else self.default
        )
        default = f", default {shown}" if shown not in (None, ()) else ""
        return f"{self.help} [${self.variable}{default}]".replace("%", "%%")


# What one request may ask, as options: (ServerLimits field, help). Their defaults are ServerLimits'.
_LIMITS = (
    ("max_texts", "texts per request; more is 422"),
    ("max_text_chars", "characters per text; more is 422"),
    ("max_body_bytes", "request body bytes; more is 413"),
    ("max_inflight", "requests admitted at once; more get 429 with Retry-After"),
    ("max_batch_tokens", "tokens one request may have the model run; more is 422"),
    ("header_timeout_seconds", "seconds to receive a request's headers; slower connections are closed"),
    ("body_timeout_seconds", "seconds to receive a request body; slower is 408"),
    ("max_connections", "open connections; more get 503"),
)
LIMIT_NAMES = tuple(name for name, _ in _LIMITS)

OPTIONS = (
    Option(
        "bundle", "a bundle directory written by langtrim pack", parse=Path, kind="positional", required=True
    ),
    Option("host", "address to listen on (0.0.0.0 accepts other machines)", DEFAULT_HOST),
    Option("port", "TCP port", DEFAULT_PORT, _port),
    Option("threads", "onnxruntime intra-op threads; by default one per core", parse=_positive_int),
    Option("batching", "run the texts of requests that wait together in one inference", True, kind="switch"),
    *(Option(name, text, getattr(DEFAULT_LIMITS, name), _positive_int) for name, text in _LIMITS),
    Option(
        "truncate",
        "truncate texts over the model's max_length unless a request says otherwise",
        DEFAULT_LIMITS.auto_truncate,
        kind="switch",
    ),
    Option(
        "bundle_digest",
        "serve only the bundle with this digest (blake2b-256:..., as `langtrim inspect` prints)",
    ),
    Option("api_key", "require Authorization: Bearer KEY on every route but /health"),
    Option(
        "cors_allow_origin",
        'a browser origin allowed to call the server ("*" for any); repeatable, the variable comma-separated',
        (),
        kind="list",
    ),
    Option("access_log", "log one line per request, with its x-request-id", False, kind="switch"),
    Option(
        "on_uncovered",
        "text not in the bundle's languages: allow (serve it, count it, name it in the x-langtrim-uncovered "
        "header) or reject (422 naming the languages)",
        "allow",
        choices=("allow", "reject"),
    ),
    Option("log_level", "uvicorn's and langtrim's log level", "info", choices=LOG_LEVELS),
)


class _OneLineErrors(argparse.ArgumentParser):
    """An option error is a UsageError, which `parse_options` prints as one line (exit 2), like every other
    error of langtrim, rather than argparse's usage text."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def argument_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The command line of the options. Every default is None, so `resolve` can tell an option the command
    line gave from one it did not."""
    parser = _OneLineErrors(
        prog=prog,
        description="Serve a bundle over HTTP (text-embeddings-inference and OpenAI compatible), without torch. "
        "Each option can also be set by the environment variable in brackets; the command line wins.",
    )
    for option in OPTIONS:
        if option.kind == "positional":
            parser.add_argument(option.name, nargs="?", type=option.parse, help=option.help_text())
            continue
        flag = "--" + option.name.replace("_", "-")
        if option.kind == "switch":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=option.help_text())
        elif option.kind == "list":
            parser.add_argument(flag, action="append", type=option.parse, help=option.help_text())
        else:
            parser.add_argument(flag, type=option.parse, choices=option.choices, help=option.help_text())
    return parser


def resolve(
    parsed: argparse.Namespace, environ: Mapping[str, str], check_required: bool = True
) -> argparse.Namespace:
    """Each option's value: the command line's, else its variable's, else its default.

    UsageError naming the variable if its text is not a value the flag would take, or, with `check_required`,
    naming both ways to give a required option that neither gave.
    """
    values = {}
    for option in OPTIONS:
        value = getattr(parsed, option.name)
        text = environ.get(option.variable, "").strip()
        if value is None and text:
            try:
                value = option.from_variable(text)
            except argparse.ArgumentTypeError as error:
                raise UsageError(f"{option.variable}={error}") from None
        if value is None and option.required and check_required:
            raise UsageError(f"no {option.name.upper()} given: pass {option.help}, or set {option.variable}")
        values[option.name] = option.default if value is None else value
    return argparse.Namespace(**values)


def read_options(
    argv: Sequence[str], environ: Mapping[str, str], prog: str = PROG, check_required: bool = True
) -> argparse.Namespace:
    """The options of a command line and an environment; UsageError, in one line, for a bad one."""
    return resolve(argument_parser(prog).parse_args(argv), environ, check_required)


def parse_options(argv: Sequence[str] | None = None, prog: str = PROG) -> argparse.Namespace:
    """The options of this process (`argv` or sys.argv, and os.environ); a bad one is one line on stderr and
    exit status 2, as argparse's own errors are."""
    try:
        return read_options(sys.argv[1:] if argv is None else argv, os.environ, prog)
    except UsageError as error:
        sys.stderr.write(f"error: {error} (see {prog} --help)\n")
        sys.exit(2)
