"""Text pairs: the trimmed tokenizer's pair template and truncation give the original tokenizer's ids."""

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.packager.models.tokenizer import special_token_ids, truncating
from langtrim.packager.trim.tokenizer_remap import remap_tokenizer
from langtrim.runtime.errors import InputError
from langtrim.runtime.pairs import cut_lengths, encode_pairs


def _pairs(sentences, language: str) -> list[tuple[str, str]]:
    texts = sentences(language)[:120]
    return list(zip(texts[::2], texts[1::2], strict=False))


def _trimmed(tokenizer: Tokenizer, texts: list[str]):
    kept = {i for e in tokenizer.encode_batch(texts) for i in e.ids} | set(special_token_ids(tokenizer))
    return remap_tokenizer(tokenizer, np.asarray(sorted(kept), dtype=np.int64))


@pytest.mark.parametrize("family", ["mbert", "xlmr"])
def test_pairs_get_the_original_template_and_truncation_remapped(
    family, sentences, mbert_tokenizer, e5_tokenizer
) -> None:
    original = mbert_tokenizer if family == "mbert" else e5_tokenizer
    pairs = [pair for language in ("fr", "de", "ru") for pair in _pairs(sentences, language)]
    trimmed, id_map = _trimmed(original, [text for pair in pairs for text in pair])
    for strategy in ("only_second", "longest_first"):
        for max_length in (512, 24, 9):
            _check(original, trimmed, id_map, pairs, strategy, max_length, family)


def _check(original, trimmed, id_map, pairs, strategy, max_length, family) -> None:
    reference = truncating(original, max_length, strategy)
    if strategy == "only_second":  # the original tokenizer refuses these too
        pairs = [
            (a, b) for a, b in pairs if len(original.encode(a, add_special_tokens=False).ids) < max_length - 4
        ]
    expected = reference.encode_batch(pairs)
    ids, types, lengths = encode_pairs(trimmed, pairs, max_length, strategy)
    for want, got, got_types in zip(expected, ids, types, strict=True):
        assert got.tolist() == id_map.to_new(want.ids).tolist()
        assert got_types.tolist() == want.type_ids
    assert any(length > max_length for length in lengths) == (max_length < 512)
    if family == "mbert":  # BERT's second segment has token type 1: [CLS] a [SEP] b [SEP]
        assert any(1 in t.tolist() for t in types)


def test_longest_first_follows_the_tokenizers_rules() -> None:
    assert cut_lengths(3, 10, 8, "longest_first") == (3, 5)
    assert cut_lengths(10, 3, 8, "longest_first") == (5, 3)
    assert cut_lengths(10, 10, 7, "longest_first") == (3, 4)
    assert cut_lengths(2, 2, 8, "only_second") == (2, 2)


def test_a_query_that_leaves_no_room_is_refused_with_the_fix() -> None:
    with pytest.raises(InputError, match=r"first text of a pair has 8 tokens.*shorten the query"):
        cut_lengths(8, 5, 8, "only_second")
