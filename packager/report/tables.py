"""The layout every report table shares, and how figures are written in them."""

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

DASH = "-"


def new_table(title: str | None, *headers: str, text_columns: int = 1) -> Table:
    """A table whose first `text_columns` columns are text and the others figures, right-aligned.

    No cell wraps: each table is laid out to fit 80 columns (the CLI's consoles are never wider), so a row
    is one line. Text of any length
    (paths, descriptions) goes to `key_list` instead.
    """
    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i < text_columns else "right", no_wrap=True)
    return table


def key_list(console: Console, rows: Sequence[tuple[str, str]]) -> None:
    """`key  value` lines, indented; a long value wraps under itself, within the console's width."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, escape(value))
    console.print(Padding(grid, (0, 0, 0, 2), expand=False))


def fmt_mb(value: float) -> str:
    return f"{value:,.1f} MB"


def fmt_bytes(value: int) -> str:
    return f"{value:,} B" if value < 1000 else f"{value / 1e3:.1f} kB" if value < 1e6 else fmt_mb(value / 1e6)


def fmt_share(value: object, digits: int = 1) -> str:
    return f"{value:.{digits}%}" if isinstance(value, int | float) else DASH


def fmt_cosine(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else DASH


def fmt_gate(passed: object) -> str:
    return "passed" if passed is True else "[bold red]FAILED[/]" if passed is False else DASH
