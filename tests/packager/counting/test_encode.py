"""Joined encoding (`counting.encode`) gives exactly the ids of encoding each line alone, or is not used."""

import json

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.packager.counting.encode import LINES_PER_TEXT, _encode_joined, encode_lines, line_separators
from tests.support.texts import AWKWARD, LANGUAGES


def _reference(tokenizer: Tokenizer, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    ids = [tokenizer.encode(line, add_special_tokens=False).ids for line in lines]
    return np.array([len(i) for i in ids]), np.array([t for i in ids for t in i])


def _lines(sentences, paragraphs: bool) -> list[str]:
    mixed = [s for language in LANGUAGES for s in sentences(language)[:40]]
    if paragraphs:  # ~10 sentences a line: joined texts end on TEXT_CHARS, not on LINES_PER_TEXT
        mixed = [" ".join(mixed[i : i + 10]) for i in range(0, len(mixed), 10)]
    return mixed[: 3 * LINES_PER_TEXT] + AWKWARD + mixed[3 * LINES_PER_TEXT :]


@pytest.mark.parametrize("paragraphs", [False, True], ids=["sentences", "paragraphs"])
@pytest.mark.parametrize("name", ["e5_tokenizer", "mbert_tokenizer"])
def test_joined_lines_give_the_ids_of_each_line_alone(name, paragraphs, sentences, request):
    tokenizer = request.getfixturevalue(name)
    lines = _lines(sentences, paragraphs)
    separators = line_separators(tokenizer)
    assert separators
    lengths, ids = encode_lines(tokenizer, lines, np.int32, separators)
    expected_lengths, expected_ids = _reference(tokenizer, lines)
    assert lengths.tolist() == expected_lengths.tolist()
    assert ids.tolist() == expected_ids.tolist()
    # and the joined path itself (not the line-by-line fallback) gave them, with a separator absent from text
    separator = next(s for s in separators if not any(s[0] in line for line in lines))
    joined = _encode_joined(tokenizer, lines, np.int32, separator)
    assert joined is not None and joined[1].tolist() == expected_ids.tolist()


@pytest.mark.parametrize("held", [1, 2, "all"])
def test_lines_holding_separator_texts_still_count_as_their_own_lines(e5_tokenizer, sentences, held):
    separators = line_separators(e5_tokenizer)
    assert len(separators) >= 3
    texts = [text for text, _ in separators][: len(separators) if held == "all" else held]
    lines = [*sentences("en")[:10], *(f"a line with {text} inside" for text in texts), *sentences("fr")[:10]]
    lengths, ids = encode_lines(e5_tokenizer, lines, np.int32, separators)
    expected_lengths, expected_ids = _reference(e5_tokenizer, lines)
    assert lengths.tolist() == expected_lengths.tolist() and ids.tolist() == expected_ids.tolist()


def _metaspace_first(e5_tokenizer: Tokenizer) -> Tokenizer:
    config = json.loads(e5_tokenizer.to_str())
    assert config["pre_tokenizer"]["type"] == "Metaspace"
    config["pre_tokenizer"]["prepend_scheme"] = "first"
    return Tokenizer.from_str(json.dumps(config))


def test_tokenizers_where_joining_would_change_ids_encode_line_by_line(e5_tokenizer, sentences):
    first = _metaspace_first(e5_tokenizer)
    lines = sentences("de")[:20]
    # The guard matters: with "▁" only at the start of the text, a joined line loses its leading "▁".
    joined = first.encode("</s>".join(lines), add_special_tokens=False).ids
    assert [i for i in joined if i != first.token_to_id("</s>")] != _reference(first, lines)[1].tolist()
    assert line_separators(first) == []
    lengths, ids = encode_lines(first, lines, np.int32, line_separators(first))
    assert ids.tolist() == _reference(first, lines)[1].tolist()


def test_truncation_or_padding_turn_joining_off(e5_tokenizer):
    truncating = Tokenizer.from_str(e5_tokenizer.to_str())
    truncating.enable_truncation(16)
    padding = Tokenizer.from_str(e5_tokenizer.to_str())
    padding.enable_padding()
    assert line_separators(truncating) == [] and line_separators(padding) == []
