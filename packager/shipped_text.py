"""Real text shipped with langtrim, for coverage, parity and benchmarks without a user's corpus.

Tatoeba sentences (CC-BY 2.0 FR) in the 15 XNLI languages, under `data/text/tatoeba/`, and aligned
translation pairs with English for 31 languages under `data/text/tatoeba-pairs/` (MTEB's Tatoeba
bitext-mining test sets, first halves); see `data/SOURCES.md` for where each file comes from. A pair's side
that equals a file of `data/text/tatoeba/` (the XNLI languages' sides, and English of the French pair) is
not shipped twice: it is read from there.
"""

from importlib.resources import files
from importlib.resources.abc import Traversable

TATOEBA_CREDIT = "Tatoeba, tatoeba.org (CC-BY 2.0 FR)"
PIVOT = "en"  # the other side of every shipped pair


def _text() -> Traversable:
    return files("langtrim.packager") / "data" / "text"


def shipped_sentences(language: str) -> list[str] | None:
    """Real sentences shipped with langtrim for `language` (Tatoeba), or None when there are none."""
    resource = _text() / "tatoeba" / f"{language}.txt"
    if not resource.is_file():
        return None
    return [line for line in resource.read_text(encoding="utf-8").splitlines() if line.strip()]


def shipped_pairs(language: str) -> tuple[list[str], list[str]] | None:
    """Aligned Tatoeba pairs for `language`: (its sentences, their English translations), line i of one the
    translation of line i of the other; None when langtrim ships none (or for English itself)."""
    if language == PIVOT:
        return None
    sides = [_pair_side(language, language), _pair_side(language, PIVOT)]
    if not all(side.is_file() for side in sides):
        return None
    lines = [side.read_text(encoding="utf-8").splitlines() for side in sides]
    kept = [(a, b) for a, b in zip(*lines, strict=True) if a.strip() and b.strip()]
    return [a for a, _ in kept], [b for _, b in kept]


def _pair_side(language: str, side: str) -> Traversable:
    """One side's file: its own, or the shipped sentences it equals (see the module docstring)."""
    own = _text() / "tatoeba-pairs" / f"{language}-{PIVOT}.{side}"
    if own.is_file():
        return own
    same = side if side == language else PIVOT if language == "fr" else None
    return _text() / "tatoeba" / f"{same}.txt" if same else own


def pair_languages() -> list[str]:
    """The languages langtrim ships pairs with English for, sorted."""
    names = [resource.name for resource in (_text() / "tatoeba-pairs").iterdir()]
    return sorted({name.split("-")[0] for name in names if name.endswith(f"-{PIVOT}.{PIVOT}")} | {"fr"})
