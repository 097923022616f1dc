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


def assert_fits_80_columns(output: str) -> None:
    """Each line within 80 characters, each table header whole and on one line, each row on one line."""
    lines = output.splitlines()
    assert any(line.startswith("┏") for line in lines), f"no table in:\n{output}"
    for i, line in enumerate(lines):
        if line.startswith("error: "):
            continue  # an error is one line, however long, so that it reads whole in a log
        assert len(line) <= 80, f"{len(line)} characters: {line}"
        if line.startswith("┏"):
            assert lines[i + 1].startswith("┃") and lines[i + 2].startswith("┡"), (
                f"header on 2+ lines: {line}"
            )
            assert "…" not in lines[i + 1], f"header cut: {lines[i + 1]}"
        if line.startswith("│"):
            assert line[1:].split("│")[0].strip(), f"a cell wrapped onto a second line:\n{output}"
            assert "…" not in line, f"cell cut: {line}"
