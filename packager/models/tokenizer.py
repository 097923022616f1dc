"""Facts read from a `tokenizers` tokenizer: its model type, its special tokens, its id range, a plain copy.

Selection, counting, trimming and parity all ask these questions of the same tokenizer; one module answers.
"""

import json
from typing import Any

import numpy as np
from tokenizers import Tokenizer


def unpadded(tokenizer: Tokenizer) -> Tokenizer:
    """The tokenizer, or a copy of it that neither pads nor truncates, for counting and comparing tokens.

    A copy of a 250k-token vocabulary costs about half a second: callers that compare many batches make
    their tokenizers plain once, after which this returns them as they are."""
    if tokenizer.padding is None and tokenizer.truncation is None:
        return tokenizer
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.no_truncation()
    return copy


def truncating(tokenizer: Tokenizer, max_length: int, strategy: str = "longest_first") -> Tokenizer:
    """A copy that cuts texts (and pairs, by `strategy`) to `max_length` tokens as the bundle's Encoder
    does, and never pads; the tokenizer itself is left as it was."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.enable_truncation(max_length, strategy=strategy)
    return copy


def tokenizer_model_type(tokenizer: Tokenizer) -> str:
    return str(json.loads(tokenizer.to_str())["model"]["type"])


def special_token_ids(tokenizer: Tokenizer) -> list[int]:
    """Ids of the tokenizer's special tokens (kept by every trim), including the unknown token."""
    spec = json.loads(tokenizer.to_str())
    ids = {token["id"] for token in spec["added_tokens"] if token.get("special")}
    unk = unk_token(spec)
    if unk is not None and tokenizer.token_to_id(unk) is not None:
        ids.add(tokenizer.token_to_id(unk))
    return sorted(ids)


def unk_token(spec: dict[str, Any]) -> str | None:
    """The unknown token of a tokenizer's JSON (`json.loads(tokenizer.to_str())`), or None."""
    model = spec["model"]
    if model["type"] == "Unigram":
        return None if model.get("unk_id") is None else model["vocab"][model["unk_id"]][0]
    return model.get("unk_token")


def unigram_keep_ids(tokenizer: Tokenizer) -> list[int]:
    """Ids a Unigram trim must keep for exact parity: the lowest-scoring piece.

    The `tokenizers` Unigram model scores an unknown character at (lowest piece score - 10); keeping the
    lowest-scoring piece keeps that penalty, and so every segmentation, unchanged (see `trim.tokenizer_remap`).
    """
    spec = json.loads(tokenizer.to_str())
    if spec["model"]["type"] != "Unigram":
        return []
    scores = np.asarray([score for _, score in spec["model"]["vocab"]], dtype=np.float64)
    return [int(np.argmin(scores))]


def id_bound(tokenizer: Tokenizer) -> int:
    """One more than the largest id the tokenizer gives: the length of the count arrays.

    Equal to `get_vocab_size(with_added_tokens=True)` for the vocabularies langtrim trims, without building
    the whole vocabulary as that call does (~0.2 s for 250k pieces, per call).
    """
    added = tokenizer.get_added_tokens_decoder()
    return max(tokenizer.get_vocab_size(with_added_tokens=False), max(added, default=-1) + 1)
