"""A Unigram bundle's token ids without tokenizers' Unigram model: the same ids in a fraction of the memory.

tokenizers keeps a Unigram vocabulary (multilingual-e5, XLM-R) in a byte trie with a hash map in every node,
which makes it the largest item of a served bundle's memory after its weights. sentencepiece runs the same
Viterbi search over the same pieces and scores from a double-array trie, several times smaller
(benchmarks/tokenizer_memory.py measures both).

`PieceTokenizer` reproduces tokenizers' pipeline for a text without special tokens, step for step:
1. the added tokens (<s>, <mask>, ...) are cut out of the raw text, leftmost and longest first, each
   taking the whitespace next to it that its lstrip/rstrip flags say;
2. each piece of text between them goes through the bundle's own normaliser, built by tokenizers from
   tokenizer.json's definition (the same code as tokenizers' own pipeline);
3. Metaspace: spaces become "▁", and "▁" is put in front (of every piece of text, or of the first only);
4. sentencepiece, with identity normalisation, finds the best pieces. tokenizers splits at every "▁" and
   searches each word alone; no piece holds "▁" past its start (`langtrim pack` checks), so every path
   already breaks before each "▁" and one search over the whole string finds the same pieces.
`langtrim pack` writes the two files only for tokenizers of that shape, and only once this class has given
tokenizers' own ids for every sentence langtrim ships and for thousands of random strings of the bundle's
pieces, added tokens, whitespace and other scripts (`packager/pack/piece_tokenizer.py`); otherwise the
Encoder runs tokenizers alone. The Encoder uses this for every text it runs and checks for coverage;
offsets, text pairs and decoding still load tokenizers (on first use).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from tokenizers.normalizers import Normalizer

from langtrim.runtime.errors import BundleError

PIECES_MODEL_FILE = "tokenizer.pieces.model"
PIECES_CONFIG_FILE = "tokenizer.pieces.json"
PIECES_FORMAT = 1
PREPEND_SCHEMES = ("always", "first", "never")
# Rust's char::is_whitespace (the Unicode White_Space property), which tokenizers' lstrip/rstrip use;
# Python's \s also matches U+001C-U+001F, which are not White_Space.
_WHITESPACE = "[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"


@dataclass(frozen=True)
class AddedToken:
    content: str
    id: int
    lstrip: bool = False  # the match takes the whitespace before it
    rstrip: bool = False  # ... and after it


@dataclass(frozen=True)
class PiecesConfig:
    """tokenizer.pieces.json: what tokenizers does around the Unigram model, taken from tokenizer.json."""

    normalizer: Mapping[str, Any] | None  # tokenizer.json's "normalizer", as it is
    replacement: str  # Metaspace's "▁"
    prepend_scheme: str  # "▁" in front of every piece of text ("always"), of the text's first ("first"), none
    added_tokens: Sequence[AddedToken]
    prefix: Sequence[int]  # the special ids the post-processor puts before a single text (<s>) ...
    suffix: Sequence[int]  # ... and after it (</s>)
    pad_id: int
    vocab_size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PIECES_FORMAT,
            "normalizer": self.normalizer,
            "replacement": self.replacement,
            "prepend_scheme": self.prepend_scheme,
            "added_tokens": [vars(token) for token in self.added_tokens],
            "prefix": list(self.prefix),
            "suffix": list(self.suffix),
            "pad_id": self.pad_id,
            "vocab_size": self.vocab_size,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PiecesConfig:
        if raw.get("format") != PIECES_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, this langtrim reads {PIECES_FORMAT}")
        if raw["prepend_scheme"] not in PREPEND_SCHEMES:
            raise ValueError(f"prepend_scheme {raw['prepend_scheme']!r}")
        return cls(
            normalizer=raw["normalizer"],
            replacement=str(raw["replacement"]),
            prepend_scheme=str(raw["prepend_scheme"]),
            added_tokens=tuple(AddedToken(**token) for token in raw["added_tokens"]),
            prefix=tuple(int(i) for i in raw["prefix"]),
            suffix=tuple(int(i) for i in raw["suffix"]),
            pad_id=int(raw["pad_id"]),
            vocab_size=int(raw["vocab_size"]),
        )


class PieceTokenizer:
    """Ids of texts without special tokens, as the bundle's tokenizer.json makes them (see the module)."""

    def __init__(self, processor: Any, config: PiecesConfig) -> None:
        self.config = config
        self._processor = processor  # a sentencepiece.SentencePieceProcessor
        self._normalizer = _normalizer(config.normalizer)
        tokens = sorted(config.added_tokens, key=lambda token: -len(token.content))
        self._added = {token.content: token.id for token in tokens}
        # One group around every match, so re.split returns text, token, text, ...; the longest token first
        # among those that match at one place, as tokenizers' leftmost-longest search.
        patterns = [
            (_WHITESPACE if t.lstrip else "")
            + f"({re.escape(t.content)})"
            + (_WHITESPACE if t.rstrip else "")
            for t in tokens
        ]
        self._splitter = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None

    @classmethod
    def load(cls, directory: Path, label: str) -> PieceTokenizer:
        import sentencepiece

        try:
            config = PiecesConfig.from_json(
                json.loads((directory / PIECES_CONFIG_FILE).read_text(encoding="utf-8"))
            )
            processor = sentencepiece.SentencePieceProcessor(model_file=str(directory / PIECES_MODEL_FILE))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
            raise BundleError(
                f"bundle {label!r}: {PIECES_CONFIG_FILE} or {PIECES_MODEL_FILE} cannot be read ({error}); "
                "re-run langtrim pack"
            ) from None
        if processor.get_piece_size() != config.vocab_size:
            raise BundleError(
                f"bundle {label!r}: {PIECES_MODEL_FILE} has {processor.get_piece_size()} pieces but "
                f"{PIECES_CONFIG_FILE} says {config.vocab_size}; re-run langtrim pack"
            )
        return cls(processor, config)

    @property
    def special_per_text(self) -> int:
        return len(self.config.prefix) + len(self.config.suffix)

    def ids(self, text: str) -> list[int]:
        """The text's ids without special tokens: tokenizers' `encode(text, add_special_tokens=False).ids`."""
        if self._splitter is None:
            return self._text_ids(text, 0)
        ids: list[int] = []
        at = 0
        for match in self._splitter.finditer(text):
            ids += self._text_ids(text[at : match.start()], at)
            ids.append(self._added[next(group for group in match.groups() if group is not None)])
            at = match.end()
        return ids + self._text_ids(text[at:], at)

    def with_special_tokens(self, ids: list[int]) -> list[int]:
        return [*self.config.prefix, *ids, *self.config.suffix]

    def vocab(self) -> dict[str, int]:
        """Piece -> id for every piece (the added tokens are pieces too)."""
        return {self._processor.id_to_piece(i): i for i in range(self.config.vocab_size)}

    def _text_ids(self, text: str, start: int) -> list[int]:
        if not text:
            return []
        normalized = self._normalizer.normalize_str(text) if self._normalizer is not None else text
        if not normalized:
            return []
        mark = self.config.replacement
        normalized = normalized.replace(" ", mark)
        scheme = self.config.prepend_scheme
        if not normalized.startswith(mark) and (scheme == "always" or (scheme == "first" and start == 0)):
            normalized = mark + normalized
        return list(self._processor.encode(normalized))


def _normalizer(definition: Mapping[str, Any] | None) -> Normalizer | None:
    """tokenizers' own normaliser from its tokenizer.json definition (built through a tokenizer around it:
    tokenizers has no public way to read a normaliser alone)."""
    if definition is None:
        return None
    shell: dict[str, Any] = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": definition,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"},
    }
    return Tokenizer.from_str(json.dumps(shell)).normalizer
