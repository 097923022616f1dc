"""Give a Unigram bundle sentencepiece's copy of its pieces, once it is shown to give tokenizers' own ids.

The runtime side, and why, is `langtrim.runtime.pieces`. This writes tokenizer.pieces.model (the bundle's
pieces and scores as a sentencepiece model with identity normalisation) and tokenizer.pieces.json (what
tokenizers does around the model: normaliser, Metaspace, added tokens, the special ids of a single text),
then encodes, with both, every sentence langtrim ships (Tatoeba, 31 languages), the pack's --eval-text, edge
cases, and random strings built from the bundle's own pieces, added tokens, whitespace of every kind and
characters of other scripts. One id that differs and both files are removed: the bundle runs on
tokenizers alone, as bundles packed before did.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from langtrim.packager.shipped_text import pair_languages, shipped_pairs, shipped_sentences
from langtrim.runtime import bundle
from langtrim.runtime.pieces import (
    PIECES_CONFIG_FILE,
    PIECES_MODEL_FILE,
    PREPEND_SCHEMES,
    AddedToken,
    PiecesConfig,
    PieceTokenizer,
)
from langtrim.runtime.tokenizing import load_tokenizer

RANDOM_TEXTS = 5000
# Characters tokenizers and sentencepiece might treat apart: whitespace that is and is not Unicode
# White_Space, zero-width and control characters, compatibility forms the normaliser rewrites, combining
# marks, emoji with modifiers, and letters of scripts a trimmed vocabulary lacks.
_TRICKY = [
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\x0b",
    "\x1c",
    "\x85",
    "\u00a0",
    "\u2002",
    "\u3000",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\x00",
    "\u2581",
    "ﬁ",
    "Ａ",
    "①",
    "e\u0301",
    "😀",
    "👍🏽",
    "☃",
    "日本",
    "Привет",
    "مرحبا",
    "नमस्ते",
    "ß",
    "İ",
    "'",
    "-",
    ".",
    "<",
    ">",
    "/",
]


def write_piece_tokenizer(
    staging: Path, kept_size: int, eval_texts: Mapping[str, Sequence[str]] | None
) -> str:
    """Write the two files into `staging` when they reproduce its tokenizer.json; what happened, one line."""
    raw = json.loads((staging / bundle.TOKENIZER_FILE).read_text(encoding="utf-8"))
    tokenizer, pad_id = load_tokenizer(staging, kept_size, str(staging))
    config = _config(raw, tokenizer, pad_id)
    if isinstance(config, str):
        return f"tokenizers alone: {config}"
    (staging / PIECES_MODEL_FILE).write_bytes(sentencepiece_model(raw))
    (staging / PIECES_CONFIG_FILE).write_text(
        json.dumps(config.to_json(), ensure_ascii=False) + "\n", encoding="utf-8"
    )
    pieces = PieceTokenizer.load(staging, str(staging))
    texts = list(_texts(raw, eval_texts))
    differ = [text for text in texts if _differs(pieces, tokenizer, text)]
    if differ or pieces.vocab() != tokenizer.get_vocab(with_added_tokens=False):
        (staging / PIECES_MODEL_FILE).unlink()
        (staging / PIECES_CONFIG_FILE).unlink()
        first = f" (first: {differ[0][:60]!r})" if differ else " (the vocabularies differ)"
        return (
            f"tokenizers alone: sentencepiece's ids differ for {len(differ)} of {len(texts):,} texts{first}"
        )
    return f"sentencepiece's copy of the pieces: tokenizers' ids for all {len(texts):,} texts checked"


def sentencepiece_model(raw: Mapping[str, Any]) -> bytes:
    """tokenizer.json's Unigram pieces and scores as a serialized sentencepiece ModelProto, identity
    normalisation (tokenizers' normaliser runs before it); added tokens are control pieces, which
    sentencepiece never matches in text (tokenizers cuts them out of the text before its model runs)."""
    from sentencepiece import sentencepiece_model_pb2

    model_pb2: Any = sentencepiece_model_pb2  # generated protobuf classes, untyped

    model = raw["model"]
    added = {token["content"] for token in raw["added_tokens"]}
    proto = model_pb2.ModelProto()
    proto.trainer_spec.model_type = model_pb2.TrainerSpec.UNIGRAM
    proto.trainer_spec.unk_id = model["unk_id"]
    proto.trainer_spec.bos_id = proto.trainer_spec.eos_id = proto.trainer_spec.pad_id = -1
    spec = proto.normalizer_spec
    spec.name = "identity"
    spec.add_dummy_prefix = spec.remove_extra_whitespaces = spec.escape_whitespaces = False
    kinds = model_pb2.ModelProto.SentencePiece
    for index, (piece, score) in enumerate(model["vocab"]):
        kind = (
            kinds.UNKNOWN if index == model["unk_id"] else kinds.CONTROL if piece in added else kinds.NORMAL
        )
        proto.pieces.add(piece=piece, score=score, type=kind)
    return bytes(proto.SerializeToString())


def _config(raw: Mapping[str, Any], tokenizer: Tokenizer, pad_id: int) -> PiecesConfig | str:
    """The pieces config for `raw` (tokenizer.json), or why this tokenizer is not one it can reproduce."""
    model, pre = raw.get("model") or {}, raw.get("pre_tokenizer") or {}
    if model.get("type") != "Unigram":
        return f"a {model.get('type')} model, not Unigram"
    if model.get("byte_fallback") or not isinstance(model.get("unk_id"), int):
        return "a Unigram model with byte fallback or without an unknown token"
    if pre.get("type") != "Metaspace" or not pre.get("split", True):
        return f"pre-tokenizer {pre.get('type')}, not a splitting Metaspace"
    scheme = pre.get("prepend_scheme") or ("always" if pre.get("add_prefix_space", True) else "never")
    replacement = pre.get("replacement", "\u2581")
    if scheme not in PREPEND_SCHEMES or len(replacement) != 1:
        return f"Metaspace prepend scheme {scheme!r}, replacement {replacement!r}"
    vocab = [piece for piece, _ in model["vocab"]]
    if any(replacement in piece[1:] for piece in vocab):
        return f"a piece holds {replacement!r} past its start"
    tokens = []
    for token in raw.get("added_tokens", []):
        if token.get("normalized") or token.get("single_word"):
            return f"added token {token['content']!r} is normalized or single-word"
        if not 0 <= token["id"] < len(vocab) or vocab[token["id"]] != token["content"]:
            return f"added token {token['content']!r} is no piece of the vocabulary"
        tokens.append(
            AddedToken(token["content"], token["id"], bool(token.get("lstrip")), bool(token.get("rstrip")))
        )
    plain, full = tokenizer.encode("a", add_special_tokens=False).ids, tokenizer.encode("a").ids
    starts = [i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain]
    if not plain or len(starts) != 1:
        return "the post-processor's special tokens around a text could not be told apart"
    return PiecesConfig(
        normalizer=raw.get("normalizer"),
        replacement=replacement,
        prepend_scheme=scheme,
        added_tokens=tuple(tokens),
        prefix=tuple(full[: starts[0]]),
        suffix=tuple(full[starts[0] + len(plain) :]),
        pad_id=pad_id,
        vocab_size=len(vocab),
    )


def _differs(pieces: PieceTokenizer, tokenizer: Tokenizer, text: str) -> bool:
    ids = pieces.ids(text)
    return ids != tokenizer.encode(text, add_special_tokens=False).ids or (
        pieces.with_special_tokens(ids) != tokenizer.encode(text).ids
    )


def _texts(raw: Mapping[str, Any], eval_texts: Mapping[str, Sequence[str]] | None) -> Iterator[str]:
    for language in sorted({*pair_languages(), "en"}):
        yield from shipped_sentences(language) or []
        pairs = shipped_pairs(language)
        yield from pairs[0] if pairs else []
    for texts in (eval_texts or {}).values():
        yield from texts
    yield from ["", " ", "  ", "a ", " a", "a  b", "\t", "\n"]
    rng = random.Random(0)
    words = [piece.replace("\u2581", " ") for piece, _ in raw["model"]["vocab"]]
    added = [token["content"] for token in raw.get("added_tokens", [])]
    for _ in range(RANDOM_TEXTS):
        parts = []
        for _ in range(rng.randint(1, 12)):
            roll = rng.random()
            part = (
                rng.choice(words)
                if roll < 0.5
                else rng.choice(added or _TRICKY)
                if roll < 0.6
                else rng.choice(_TRICKY)
            )
            if rng.random() < 0.1:
                part += "".join(
                    chr(rng.choice([rng.randint(0x20, 0xD7FF), rng.randint(0xE000, 0x2FFFF)]))
                    for _ in range(2)
                )
            parts.append(part + (" " if rng.random() < 0.4 else ""))
        yield "".join(parts)
