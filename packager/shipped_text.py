"""Real text shipped with langtrim, for coverage and parity without a user's corpus.

Tatoeba sentences (CC-BY 2.0 FR) in the 15 XNLI languages, under `data/text/tatoeba/`; see
`data/SOURCES.md` for where each file comes from.
"""

from importlib.resources import files

TATOEBA_CREDIT = "Tatoeba, tatoeba.org (CC-BY 2.0 FR)"


def shipped_sentences(language: str) -> list[str] | None:
    """Real sentences shipped with langtrim for `language` (Tatoeba), or None when there are none."""
    resource = files("langtrim.packager") / "data" / "text" / "tatoeba" / f"{language}.txt"
    if not resource.is_file():
        return None
    return [line for line in resource.read_text(encoding="utf-8").splitlines() if line.strip()]
