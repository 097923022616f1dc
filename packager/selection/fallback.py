"""Fallback pieces: the single characters that let any word of a script split into kept pieces.

A trimmed vocabulary keeps the pieces frequent in the chosen languages; a rare word needs smaller pieces
or it collapses to the unknown token. Keeping every single-character piece of the languages' scripts
guarantees a split exists:

- Unigram (SentencePiece, e.g. XLM-R / multilingual-e5): the character "c", its word-initial form "▁c",
  and the bare "▁". "c" and "▁" alone already give every word a split ("▁" "Z" "y" "x"); "▁c" is kept too
  because the model saw rare words begin with "▁Z", almost never with a lone "▁" before a letter, and it
  costs a few hundred pieces (129 Latin ones in XLM-R).
- WordPiece (BERT): the character "c" (word-initial) and "##c" (inside a word). WordPiece turns a whole
  word into the unknown token if any of its characters has no piece, so both forms are needed.

Kept for any script, as text in every language uses them: ASCII letters and digits (names, brands and
URLs, as in the Hindi 'कूटशब्द "Muriel" है।'), punctuation (every "P*" category), math/currency/modifier symbols
("Sm", "Sc", "Sk"), common Latin-1 and letterlike symbols (° © ® ™) and combining marks. Emoji and
box-drawing symbols are not.

The script of a character is the first word of its Unicode name ("LATIN SMALL LETTER E WITH ACUTE" ->
"LATIN"; "CJK UNIFIED IDEOGRAPH-4E00" -> "CJK"; "KATAKANA-HIRAGANA PROLONGED SOUND MARK" -> "KATAKANA").
"""

import json
import unicodedata
from collections.abc import Iterable

import numpy as np
import tokenizers

from langtrim.packager.errors import SelectionError, UnsupportedModelError
from langtrim.runtime.coverage import character_script  # the runtime's coverage check needs it too

# Script names whose characters also belong to a language written in another script: full-width Latin
# letters and digits in Chinese, Japanese and Korean text.
_COMPANION_SCRIPTS = {
    "CJK": {"FULLWIDTH", "HALFWIDTH", "IDEOGRAPHIC", "BOPOMOFO"},
    "HIRAGANA": {"FULLWIDTH", "HALFWIDTH", "IDEOGRAPHIC"},
    "KATAKANA": {"FULLWIDTH", "HALFWIDTH", "IDEOGRAPHIC"},
    "HANGUL": {"FULLWIDTH", "HALFWIDTH"},
}
_ALWAYS_CATEGORIES = {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk"}
_LETTERLIKE_END = 0x2150  # "So" and "No" characters below this (° © ® ² ½ ™ №) are common in any text


def writing_scripts(scripts: Iterable[str]) -> list[str]:
    """`scripts` and the companion scripts their text uses (full-width Latin in CJK text), sorted."""
    wanted = {script.upper() for script in scripts}
    return sorted(wanted.union(*(_COMPANION_SCRIPTS.get(script, set()) for script in wanted)))


def fallback_ids(tokenizer: tokenizers.Tokenizer, scripts: Iterable[str]) -> np.ndarray:
    """Sorted unique int64 ids of the single-character pieces of `scripts`, plus punctuation, symbols and
    digits of all scripts (see the module docstring for which forms of a character are kept)."""
    description = json.loads(tokenizer.to_str())
    model = description["model"]
    if model["type"] == "Unigram":
        space = _metaspace(description)
        pieces = [(piece, token_id) for token_id, (piece, _score) in enumerate(model["vocab"])]
        marker = space
    elif model["type"] == "WordPiece":
        pieces = list(model["vocab"].items())
        marker = model.get("continuing_subword_prefix") or "##"
    else:
        raise UnsupportedModelError(
            f"tokenizer model {model['type']!r} is not supported for fallback pieces: "
            "langtrim trims Unigram (SentencePiece) and WordPiece tokenizers"
        )
    # Single characters, bare or with the marker: "é" and "▁é" (Unigram), "é" and "##é" (WordPiece).
    characters = [
        (character, token_id)
        for piece, token_id in pieces
        if len(character := piece.removeprefix(marker)) == 1
    ]

    wanted = {script.upper() for script in scripts}
    missing = wanted - {character_script(character) for character, _ in characters}
    if missing:
        raise SelectionError(
            f"the tokenizer has no single-character piece of script(s) {', '.join(sorted(missing))}: "
            "it cannot encode that script; choose a model that covers it, or fix a misspelt script name "
            "(the first word of Unicode character names, such as LATIN or CJK)"
        )
    wanted = set(writing_scripts(wanted))
    ids = [token_id for character, token_id in characters if _is_fallback(character, wanted)]
    if model["type"] == "Unigram":
        ids += [token_id for piece, token_id in pieces if piece == space]  # the bare "▁" before CJK, digits
    return np.unique(np.asarray(ids, dtype=np.int64))


def tokenizer_scripts(tokenizer: tokenizers.Tokenizer) -> list[str]:
    """Every script the tokenizer has a single-character letter piece of, sorted: what
    `--fallback-all-scripts` keeps, so text in any of them becomes characters rather than unknown tokens."""
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    return sorted(
        {
            script
            for piece in vocab
            if len(character := piece.lstrip("▁").removeprefix("##")) == 1
            and character.isalpha()
            and (script := character_script(character))
        }
    )


def _is_fallback(character: str, scripts: set[str]) -> bool:
    category = unicodedata.category(character)
    if category in _ALWAYS_CATEGORIES:
        return True
    if category in {"So", "No"}:
        return ord(character) < _LETTERLIKE_END
    if character.isascii():
        return True  # ASCII letters and digits appear in text of every script: names, brands, URLs
    script = character_script(character)
    # "COMBINING ACUTE ACCENT" and the like attach to letters of any script.
    return script in scripts or script == "COMBINING"


def _metaspace(description: dict) -> str:
    """The character a Unigram tokenizer puts for a space ("▁" unless its pre-tokenizer says otherwise)."""
    pre_tokenizer = description.get("pre_tokenizer") or {}
    for step in pre_tokenizer.get("pretokenizers", [pre_tokenizer]):
        if step.get("type") == "Metaspace":
            return step.get("replacement", "▁")
    return "▁"
