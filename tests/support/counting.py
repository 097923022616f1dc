"""Counting a French corpus the way the counting tests all do, and comparing two counts to the last number."""

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.counting.plan import CountSettings, ProgressCallback, ShardExecutor, count_corpus
from langtrim.packager.selection.stats import TokenStats


def count_french(
    tokenizer: Tokenizer,
    inputs: Path | str | list,
    out: Path,
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    executor: ShardExecutor | None = None,
    **settings,
) -> TokenStats:
    """`count_corpus` of French inputs into `out`; other keyword arguments are `CountSettings` fields."""
    return count_corpus(
        tokenizer,
        inputs if isinstance(inputs, list) else [inputs],
        language="fr",
        out=out,
        settings=CountSettings(**settings),
        progress=progress,
        overwrite=overwrite,
        executor=executor,
    )


def assert_same_counts(actual: TokenStats, expected: TokenStats) -> None:
    assert actual.tokenizer_sha256 == expected.tokenizer_sha256
    assert actual.language == expected.language
    assert (actual.n_lines, actual.n_skipped_lines, actual.n_bytes) == (
        expected.n_lines,
        expected.n_skipped_lines,
        expected.n_bytes,
    )
    assert np.array_equal(actual.line_counts, expected.line_counts)
    assert np.array_equal(actual.occurrences, expected.occurrences)
