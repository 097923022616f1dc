"""Run the `langtrim` command in this process, as a user would, and read what it printed."""

import sys

from langtrim.packager import cli


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `langtrim ARGS`."""
    monkeypatch.setattr(sys, "argv", ["langtrim", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
