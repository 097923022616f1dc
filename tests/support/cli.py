"""Run the `langtrim` command in this process, as a user would, and read what it printed."""

import io
import sys

from langtrim.packager import cli


def run_cli(
    args: list[str], monkeypatch, capsys, *, columns: int | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `langtrim ARGS`.

    `columns`: the terminal's width, as COLUMNS tells a fresh process (its consoles are made again, as at
    start-up); `stdin`: the bytes piped into the command.
    """
    monkeypatch.setattr(sys, "argv", ["langtrim", *args])
    if columns is not None:
        monkeypatch.setenv("COLUMNS", str(columns))
        monkeypatch.setattr(cli, "stdout", cli.report_console())
        monkeypatch.setattr(cli, "stderr", cli.report_console(stderr=True))
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    code = 0
    try:
        cli.main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
