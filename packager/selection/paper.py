"""The paper's own selection: the per-language mBERT token lists published by Abdaoui et al. (2020).

The authors counted the lines of each language's Wikipedia dump every mBERT token occurs in and kept tokens
seen in at least 0.005% of lines longer than 5 characters (their code; the paper's text says 0.05%). Their
lists ship with langtrim (Apache-2.0, github.com/Geotrend-research/smaller-transformers) so the selection
reproduces the paper's Table 1 offline. They only make sense for the mBERT / DistilmBERT vocabulary.
"""

import gzip
from importlib.resources import files

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.errors import SelectionError

PAPER_LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
MBERT_VOCAB_SIZE = 119_547
# The special tokens the authors' notebook keeps beside the languages' tokens.
PAPER_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"[unused{i}]" for i in range(1, 10)))
SOURCE_DESCRIPTION = "the paper's published list (Wikipedia lines, 0.005% threshold)"


def has_mbert_vocabulary(tokenizer: Tokenizer) -> bool:
    """True when the tokenizer is mBERT's cased WordPiece vocabulary (ids as in the paper's lists)."""
    return (
        tokenizer.get_vocab_size(with_added_tokens=True) == MBERT_VOCAB_SIZE
        and tokenizer.token_to_id("[UNK]") == 100
        and tokenizer.token_to_id("##ism") is not None
    )


def paper_tokens(language: str) -> list[str]:
    """The authors' token list for one of their 15 XNLI languages."""
    if language not in PAPER_LANGUAGES:
        raise SelectionError(
            f"the paper published no token list for {language!r}: it has {', '.join(PAPER_LANGUAGES)}; "
            f"pass --corpus {language}=PATH or --source wordfreq"
        )
    data = files("langtrim.packager") / "data" / "paper" / f"{language}.txt.gz"
    with gzip.open(data.open("rb"), "rt", encoding="utf-8") as stream:
        return [line.rstrip("\n") for line in stream if line.rstrip("\n")]


def _ids(tokenizer: Tokenizer, tokens: list[str]) -> np.ndarray:
    ids = [tokenizer.token_to_id(token) for token in tokens]
    missing = [token for token, token_id in zip(tokens, ids, strict=True) if token_id is None]
    if missing:
        raise SelectionError(
            f"{len(missing)} tokens of the paper's lists are not in this tokenizer (e.g. {missing[0]!r}): "
            "the paper's lists fit only the mBERT vocabulary; use --source wordfreq or --corpus"
        )
    return np.unique(np.asarray(ids, dtype=np.int64))


def paper_token_ids(tokenizer: Tokenizer, language: str) -> np.ndarray:
    """Original ids (ascending) of the paper's tokens for `language`."""
    if not has_mbert_vocabulary(tokenizer):
        raise SelectionError(
            "the paper's token lists fit only the mBERT / DistilmBERT vocabulary, and this model has another: "
            "use --source wordfreq or --corpus LANG=PATH"
        )
    return _ids(tokenizer, paper_tokens(language))


def paper_special_ids(tokenizer: Tokenizer) -> np.ndarray:
    return _ids(tokenizer, list(PAPER_SPECIAL_TOKENS))
