"""The `langtrim` command: a thin typer layer over the library functions."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print langtrim's version."""
    from langtrim.runtime import __version__

    typer.echo(__version__)


def main() -> None:
    app()
