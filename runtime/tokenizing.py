"""The runtime's calls into `tokenizers`: loading a bundle's tokenizer, and a request's few texts on the
caller's thread.

`Tokenizer.encode_batch` hands the texts to a thread pool whose workers sleep between calls. For a request's
few texts, waking them costs more than it saves, and while onnxruntime's threads still spin after a run (as in
a server) it took ~15x longer for 32 sentences on 2 cores (benchmarks/coverage_detection.py). Many texts (an
`embed` call indexing documents) go to the pool, which tokenizes them on every core while the caller waits.
docs/results.md ("Tokenizing") has the figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from tokenizers import Encoding, Tokenizer

from langtrim.runtime.bundle import HF_SPECIAL_TOKENS_FILE, HF_TOKENIZER_CONFIG_FILE, TOKENIZER_FILE
from langtrim.runtime.errors import BundleError, InputError

# Up to this many texts are encoded on the caller's thread: as fast as the pool at 32 on 2 cores, and a
# 64-text window's tokenization is small next to its run even when more cores would share it.
CALLER_THREAD_TEXTS = 64


def check_unicode(text: str, name: str) -> str:
    """`text`, if it is Unicode a tokenizer can read: a lone surrogate (U+D800-U+DFFF, which JSON escapes
    and Python's surrogateescape decoding let into a str) is no character and has no UTF-8 encoding."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InputError(
                f"{name} holds a lone surrogate (U+{ord(text[error.start]):04X} at character {error.start}), "
                "which is not text: send valid Unicode (decode bytes with errors='replace')"
            ) from None
    return text


def load_tokenizer(directory: Path, kept_size: int, label: str) -> tuple[Tokenizer, int]:
    """The bundle's tokenizer, neither truncating nor padding (the Encoder does both), and its pad id."""
    try:
        tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
    except Exception as error:  # tokenizers raises a plain Exception for unreadable files
        raise BundleError(
            f"bundle {label!r}: {TOKENIZER_FILE} cannot be loaded ({error}); re-run langtrim pack"
        ) from None
    # Ids are dense from 0, so the vocabulary has kept_size tokens exactly when the last id exists and the
    # next does not. get_vocab_size(with_added_tokens=True) would build the whole vocabulary map (~6 ms for
    # 33k tokens, 0.4 s for 250k) to count it.
    if tokenizer.id_to_token(kept_size - 1) is None or tokenizer.id_to_token(kept_size) is not None:
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        raise BundleError(
            f"bundle {label!r}: {TOKENIZER_FILE} has {size} tokens but the manifest says {kept_size}; "
            "re-run langtrim pack"
        )
    pad_token = _pad_token(directory, tokenizer)
    pad_id = tokenizer.token_to_id(pad_token) if pad_token is not None else None
    if pad_token is None or pad_id is None:
        raise BundleError(
            f"bundle {label!r}: no pad token found in {HF_TOKENIZER_CONFIG_FILE}, {HF_SPECIAL_TOKENS_FILE} "
            f"or {TOKENIZER_FILE}; re-run langtrim pack"
        )
    tokenizer.no_truncation()  # Encoder cuts texts itself, at either end (_tokenize)
    tokenizer.no_padding()  # Encoder pads each run of similar-length texts itself (length_runs)
    return tokenizer, pad_id


def _pad_token(directory: Path, tokenizer: Tokenizer) -> str | None:
    """tokenizer_config.json's pad_token (the Hugging Face contract), else the other places it may be."""
    for name in (HF_TOKENIZER_CONFIG_FILE, HF_SPECIAL_TOKENS_FILE):
        path = directory / name
        if path.is_file():
            pad = json.loads(path.read_text(encoding="utf-8")).get("pad_token")
            if isinstance(pad, Mapping):  # an AddedToken: {"content": "[PAD]", ...}
                pad = pad.get("content")
            if isinstance(pad, str) and pad:
                return pad
    padding = tokenizer.padding
    return None if padding is None else str(padding["pad_token"])


def encode_each(tokenizer: Tokenizer, texts: Sequence[str], *, add_special_tokens: bool) -> list[Encoding]:
    """`tokenizer.encode_batch(texts)`'s encodings; on this thread for up to `CALLER_THREAD_TEXTS` texts."""
    if len(texts) > CALLER_THREAD_TEXTS:
        return tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)
    return [tokenizer.encode(text, add_special_tokens=add_special_tokens) for text in texts]


def special_tokens_added(tokenizer: Tokenizer, pair: bool = False) -> int:
    """How many special tokens the post-processor adds to a text (or a pair): [CLS] and [SEP] make 2."""
    processor = tokenizer.post_processor
    return processor.num_special_tokens_to_add(pair) if processor is not None else 0
