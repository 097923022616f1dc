"""Text pairs (a reranker's query and passage, an NLI premise and hypothesis) as the model sees them.

A pair is encoded as its two texts without special tokens, cut to fit max_length by the bundle's pair
truncation, then given the tokenizer's pair template by its post-processor (`[CLS] a [SEP] b [SEP]` with
token types 0 then 1 for BERT, `<s> a </s></s> b </s>` for XLM-R). That is what the original tokenizer
makes of the pair with the same truncation, so a trimmed bundle sees the remapped original ids; cutting
before post-processing gives each text's full length for free, as `Encoder.tokenize` does for single texts.
"""

from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
from tokenizers import Tokenizer

from langtrim.runtime.bundle import PAIR_TRUNCATIONS, PairTruncation
from langtrim.runtime.errors import InputError
from langtrim.runtime.tokenizing import check_unicode, encode_each, special_tokens_added

TextPair = tuple[str, str]


def is_pair(item: object) -> bool:
    """A pair is a tuple or list of exactly two strings (what TEI's /predict calls a pair)."""
    return isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(text, str) for text in item)


def checked_pairs(items: Sequence[object], at: Sequence[int]) -> list[TextPair]:
    """The items at positions `at` (each one `is_pair` accepted) as (first, second) tuples, each text
    checked to be valid Unicode and named by its place in `items`."""
    pairs = []
    for i in at:
        first, second = cast(Sequence[str], items[i])
        pairs.append((check_unicode(first, f"texts[{i}][0]"), check_unicode(second, f"texts[{i}][1]")))
    return pairs


def check_strategy(strategy: object) -> PairTruncation:
    if strategy not in PAIR_TRUNCATIONS:
        raise InputError(
            f"pair_truncation must be one of {', '.join(map(repr, PAIR_TRUNCATIONS))}, got {strategy!r}"
        )
    return cast(PairTruncation, strategy)


def cut_lengths(first: int, second: int, room: int, strategy: PairTruncation) -> tuple[int, int]:
    """How many tokens of each text a pair keeps when `room` tokens fit (special tokens excluded).

    The tokenizers library's rules (`utils/truncation.rs`), so the ids equal the original tokenizer's:
    "only_second" cuts the second text only, and a first text that leaves it no token is an error;
    "longest_first" keeps the shorter text whole if the longer one still gets as many tokens, else gives
    each half the room (the second the odd token).
    """
    if first + second <= room:
        return first, second
    if strategy == "only_second":
        if first >= room:
            raise InputError(
                f"the first text of a pair has {first} tokens, and this bundle keeps it whole "
                f"(pair_truncation 'only_second'), leaving no room for the second within {room} tokens: "
                "shorten the query"
            )
        return first, room - first
    shorter, longer = min(first, second), max(first, second)
    longer = shorter if shorter > room else max(shorter, room - shorter)
    if shorter + longer > room:
        shorter, longer = room // 2, room // 2 + room % 2
    return (shorter, longer) if first <= second else (longer, shorter)


def encode_pairs(
    tokenizer: Tokenizer,
    pairs: Sequence[TextPair],
    max_length: int,
    strategy: PairTruncation,
    side: str = "right",
) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Per pair: ids and token types (int64, pair template included, cut to max_length) and its full length.

    `side` is the end each text loses when cut ("left": its last tokens stay).
    """
    specials = special_tokens_added(tokenizer, pair=True)
    room = max_length - specials
    firsts = encode_each(tokenizer, [first for first, _ in pairs], add_special_tokens=False)
    seconds = encode_each(tokenizer, [second for _, second in pairs], add_special_tokens=False)
    ids, types, lengths = [], [], []
    for i, (first, second) in enumerate(zip(firsts, seconds, strict=True)):
        lengths.append(len(first.ids) + len(second.ids) + specials)
        try:
            keep_first, keep_second = cut_lengths(len(first.ids), len(second.ids), room, strategy)
        except InputError as error:
            raise InputError(f"pair {i}: {error}") from None
        if keep_first < len(first.ids):
            first.truncate(keep_first, direction=side)
        if keep_second < len(second.ids):
            second.truncate(keep_second, direction=side)
        encoding = tokenizer.post_process(first, second)
        ids.append(np.asarray(encoding.ids, dtype=np.int64))
        types.append(np.asarray(encoding.type_ids, dtype=np.int64))
    return ids, types, lengths


def encode_items(
    tokenizer: Tokenizer,
    items: Sequence[object],
    max_length: int,
    strategy: PairTruncation,
    side: str,
    singles: Callable[[list[object]], tuple[list[np.ndarray], list[int]]],
) -> tuple[list[np.ndarray], list[int], list[np.ndarray]]:
    """Ids, full lengths and token types of a batch of pairs and single texts (TEI's /predict takes both),
    in order: pairs by `encode_pairs`, single texts by `singles` (the Encoder's own tokenization)."""
    at = [i for i, item in enumerate(items) if is_pair(item)]
    single_at = [i for i in range(len(items)) if not is_pair(items[i])]
    ids, types, lengths = encode_pairs(tokenizer, checked_pairs(items, at), max_length, strategy, side)
    if single_at:
        single_ids, single_lengths = singles([items[i] for i in single_at])
        ids, lengths = ids + single_ids, lengths + single_lengths
        types += [np.zeros_like(sequence) for sequence in single_ids]
    order = np.argsort(np.asarray(at + single_at), kind="stable")
    return [ids[i] for i in order], [lengths[i] for i in order], [types[i] for i in order]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """A one-logit classifier's probability (a reranker's relevance), as text-embeddings-inference gives it."""
    return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=logits.dtype)
