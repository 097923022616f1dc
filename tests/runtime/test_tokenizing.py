"""`encode_each` gives exactly `encode_batch`'s encodings, on the caller's thread or in the pool."""

import pytest

from langtrim.runtime.tokenizing import CALLER_THREAD_TEXTS, encode_each, special_tokens_added


def _fields(encoding) -> tuple:
    return (encoding.ids, encoding.tokens, encoding.offsets, encoding.special_tokens_mask, encoding.type_ids)


@pytest.mark.parametrize("count", [1, CALLER_THREAD_TEXTS, CALLER_THREAD_TEXTS + 1])
@pytest.mark.parametrize("specials", [True, False])
def test_encode_each_equals_encode_batch(e5_tokenizer, sentences, count: int, specials: bool) -> None:
    texts = (sentences("fr") + sentences("de"))[:count]
    assert len(texts) == count
    each = encode_each(e5_tokenizer, texts, add_special_tokens=specials)
    batch = e5_tokenizer.encode_batch(texts, add_special_tokens=specials)
    assert [_fields(e) for e in each] == [_fields(e) for e in batch]


def test_special_tokens_added_counts_the_post_processors_tokens(e5_tokenizer) -> None:
    plain = e5_tokenizer.encode("Bonjour", add_special_tokens=False)
    full = e5_tokenizer.encode("Bonjour")
    assert special_tokens_added(e5_tokenizer) == len(full.ids) - len(plain.ids) == 2
    assert special_tokens_added(e5_tokenizer, pair=True) == len(e5_tokenizer.encode("a", "b").ids) - len(
        e5_tokenizer.encode("a", add_special_tokens=False).ids
    ) - len(e5_tokenizer.encode("b", add_special_tokens=False).ids)
