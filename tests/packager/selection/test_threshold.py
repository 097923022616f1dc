"""The paper's rule on token statistics: keep tokens seen in a share of lines, cap them, take the union."""

import numpy as np
import pytest

from langtrim.packager.errors import SelectionError
from langtrim.packager.selection.stats import TokenStats
from langtrim.packager.selection.threshold import frequent_token_ids, union_selection


def _stats(counts: list[int], n_lines: int) -> TokenStats:
    line_counts = np.asarray(counts, dtype=np.int64)
    return TokenStats("0" * 64, "en", n_lines, line_counts, line_counts, 0, ("test",))


def test_threshold_keeps_tokens_in_at_least_that_fraction_of_lines():
    stats = _stats([0, 5, 10, 20, 1], n_lines=100)
    assert frequent_token_ids(stats, threshold=0.1).tolist() == [2, 3]
    assert frequent_token_ids(stats, threshold=0.0).tolist() == [1, 2, 3, 4]


def test_cap_keeps_the_most_frequent_tokens():
    stats = _stats([0, 5, 10, 20, 1], n_lines=100)
    assert frequent_token_ids(stats, threshold=0.0, max_tokens=2).tolist() == [2, 3]


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_threshold_out_of_range_is_refused(threshold):
    with pytest.raises(SelectionError, match="threshold .* out of range"):
        frequent_token_ids(_stats([1], 1), threshold=threshold)


def test_statistics_without_a_counted_line_are_refused():
    with pytest.raises(SelectionError, match="no line of test is long enough"):
        frequent_token_ids(_stats([0, 0], 0))


def test_union_always_keeps_special_tokens():
    selection = union_selection(
        {"en": np.array([5, 7]), "fr": np.array([7, 9])},
        sources={},
        special_ids=[0, 1],
        fallback_ids=[2],
        original_vocab_size=10,
    )
    assert selection.kept_ids.tolist() == [0, 1, 2, 5, 7, 9]
    assert (selection.n_special, selection.n_fallback) == (2, 1)
