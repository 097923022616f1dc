"""Encode a block of lines into flat token ids and per-line lengths, with as few Python objects as possible.

`encode_batch` returns one `Encoding` per input, and reading its ids builds a Python list: on corpora of
short lines that costs as much as a third of the tokenizer's own work. So lines are joined into texts of up
to 64 lines or ~4,000 characters, each line followed by one of the tokenizer's special tokens (e.g. "<s>" or
"[PAD]"), and the special token's positions in the ids give back the lines. This is exact, not an
approximation: `tokenizers` cuts a text at special tokens before it normalizes and pre-tokenizes, and runs
every later step on each piece alone, so the ids between two separators are the ids of that line encoded by
itself. Where that does not hold the lines are encoded one by one: a tokenizer with truncation or padding
set, a Metaspace pre-tokenizer that prepends "▁" only at the start of the text (`prepend_scheme: "first"`),
no special token that matches raw text without stripping spaces beside it, a block whose lines hold the
text of every such token, or a block where the separators found are not one per line.

Joining pays most on short lines (one sentence a line) and a little on paragraphs; benchmarks/count_speed.py
measures the whole count, and docs/results.md, "The figures behind the code's choices", has the A/B runs behind it.
"""

import json
from collections.abc import Iterator
from itertools import chain
from typing import Any

import numpy as np
from tokenizers import Tokenizer

# A joined text ends after this many lines or characters: enough to make per-Encoding costs small, short
# enough to keep both cores busy on a ~1 MB block and the tokenizer's per-text work on short strings.
LINES_PER_TEXT = 64
TEXT_CHARS = 4096


def pipeline_parts(component: Any, sequence_key: str) -> list[dict[str, Any]] | None:
    """The JSON of a normalizer's or pre-tokenizer's parts, `Sequence`s flattened; None for a missing one.

    Only the component's own JSON: the whole tokenizer's (`tokenizer.to_str()`) holds e5's whole vocabulary,
    tens of MB serialised on every call.
    """
    if component is None:
        return None
    return list(_flattened(json.loads(component.__getstate__()), sequence_key))


def _flattened(node: dict[str, Any], sequence_key: str) -> Iterator[dict[str, Any]]:
    if node.get("type") != "Sequence":
        yield node
        return
    for child in node[sequence_key]:
        yield from _flattened(child, sequence_key)


Separator = tuple[str, int]  # a special token's text and id


def line_separators(tokenizer: Tokenizer) -> list[Separator]:
    """The special tokens that can join lines without changing their ids; none if joining is unsafe (see
    the module docstring). A block uses the first whose text none of its lines holds: "<s>" is also HTML."""
    if tokenizer.truncation is not None or tokenizer.padding is not None:
        return []
    if getattr(tokenizer, "encode_special_tokens", False):  # special tokens in text would not be cut out
        return []
    if any(
        node.get("type") == "Metaspace" and node.get("prepend_scheme") == "first"
        for node in pipeline_parts(tokenizer.pre_tokenizer, "pretokenizers") or []
    ):
        return []
    return [
        (token.content, token_id)
        for token_id, token in sorted(tokenizer.get_added_tokens_decoder().items())
        if token.special
        and token.content
        and token.content.strip() == token.content
        and not (token.normalized or token.lstrip or token.rstrip or token.single_word)
    ]


def encode_lines(
    tokenizer: Tokenizer, lines: list[str], id_type: type, separators: list[Separator]
) -> tuple[np.ndarray, np.ndarray]:
    """(lengths [n_lines] int64, ids [sum(lengths)] id_type): each line's ids, no special tokens added."""
    if not lines:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=id_type)
    if separators:
        block = "\n".join(lines)
        separator = next((s for s in separators if s[0] not in block), None)
        joined = None if separator is None else _encode_joined(tokenizer, lines, id_type, separator)
        if joined is not None:
            return joined
    return _encode_each(tokenizer, lines, id_type)


def _encode(tokenizer: Tokenizer) -> Any:
    return getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # same ids, no offsets


def _encode_each(tokenizer: Tokenizer, lines: list[str], id_type: type) -> tuple[np.ndarray, np.ndarray]:
    id_lists = [encoding.ids for encoding in _encode(tokenizer)(lines, add_special_tokens=False)]
    lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
    ids: np.ndarray = np.fromiter(chain.from_iterable(id_lists), dtype=id_type, count=int(lengths.sum()))
    return lengths, ids


def _encode_joined(
    tokenizer: Tokenizer, lines: list[str], id_type: type, separator: Separator
) -> tuple[np.ndarray, np.ndarray] | None:
    text, separator_id = separator
    texts, start, size = [], 0, 0
    for end, line in enumerate(lines, 1):
        size += len(line)
        if size >= TEXT_CHARS or end - start == LINES_PER_TEXT or end == len(lines):
            texts.append(text.join(lines[start:end]) + text)
            start, size = end, 0
    encodings = _encode(tokenizer)(texts, add_special_tokens=False)
    flat: np.ndarray = np.fromiter(chain.from_iterable(encoding.ids for encoding in encodings), dtype=id_type)
    ends = np.flatnonzero(flat == separator_id)  # one after each line's last id
    if len(ends) != len(lines):
        return None
    lengths = np.diff(ends, prepend=-1) - 1
    return lengths.astype(np.int64), np.delete(flat, ends)
