"""The languages langtrim knows: ISO 639-1 code -> name and writing systems.

The scripts drive the fallback pieces (every single-character piece of a chosen language's script is kept),
so a language is only usable when its scripts are known. Script names are the first word of Unicode
character names (`unicodedata.name("é")` starts with "LATIN"), except "CJK" for Han ideographs.
"""

from dataclasses import dataclass

from langtrim.packager.errors import SelectionError


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    scripts: tuple[str, ...]


_LATIN = ("LATIN",)
_CYRILLIC = ("CYRILLIC",)
_ARABIC = ("ARABIC",)

LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in [
        Language("ar", "Arabic", _ARABIC),
        Language("bg", "Bulgarian", _CYRILLIC),
        Language("bn", "Bengali", ("BENGALI",)),
        Language("ca", "Catalan", _LATIN),
        Language("cs", "Czech", _LATIN),
        Language("da", "Danish", _LATIN),
        Language("de", "German", _LATIN),
        Language("el", "Greek", ("GREEK",)),
        Language("en", "English", _LATIN),
        Language("es", "Spanish", _LATIN),
        Language("fa", "Persian", _ARABIC),
        Language("fi", "Finnish", _LATIN),
        Language("fil", "Filipino", _LATIN),
        Language("fr", "French", _LATIN),
        Language("he", "Hebrew", ("HEBREW",)),
        Language("hi", "Hindi", ("DEVANAGARI",)),
        Language("hu", "Hungarian", _LATIN),
        Language("id", "Indonesian", _LATIN),
        Language("is", "Icelandic", _LATIN),
        Language("it", "Italian", _LATIN),
        Language("ja", "Japanese", ("HIRAGANA", "KATAKANA", "CJK")),
        Language("ko", "Korean", ("HANGUL",)),
        Language("lt", "Lithuanian", _LATIN),
        Language("lv", "Latvian", _LATIN),
        Language("mk", "Macedonian", _CYRILLIC),
        Language("ms", "Malay", _LATIN),
        Language("nb", "Norwegian Bokmål", _LATIN),
        Language("nl", "Dutch", _LATIN),
        Language("pl", "Polish", _LATIN),
        Language("pt", "Portuguese", _LATIN),
        Language("ro", "Romanian", _LATIN),
        Language("ru", "Russian", _CYRILLIC),
        Language("sh", "Serbo-Croatian", _LATIN + _CYRILLIC),
        Language("sk", "Slovak", _LATIN),
        Language("sl", "Slovenian", _LATIN),
        Language("sv", "Swedish", _LATIN),
        Language("sw", "Swahili", _LATIN),
        Language("ta", "Tamil", ("TAMIL",)),
        Language("th", "Thai", ("THAI",)),
        Language("tr", "Turkish", _LATIN),
        Language("uk", "Ukrainian", _CYRILLIC),
        Language("ur", "Urdu", _ARABIC),
        Language("vi", "Vietnamese", _LATIN),
        Language("zh", "Chinese", ("CJK",)),
    ]
}


def get_language(code: str) -> Language:
    """Look a language up by code, or fail with the list of codes langtrim knows."""
    language = LANGUAGES.get(code.strip().lower())
    if language is None:
        known = ", ".join(sorted(LANGUAGES))
        raise SelectionError(f"unknown language code {code!r}: use one of {known}")
    return language


def parse_languages(codes: str) -> list[Language]:
    """Parse a comma-separated list such as "en,fr,de" (order kept, duplicates dropped)."""
    parts = [part.strip() for part in codes.split(",") if part.strip()]
    if not parts:
        raise SelectionError("no language given: pass --languages with codes such as en,fr,de")
    return list({language.code: language for language in map(get_language, parts)}.values())
