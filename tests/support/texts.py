"""Text shared by the counting tests: the languages they mix and lines that are hard to tokenize exactly."""

LANGUAGES = ("ar", "de", "el", "en", "fr", "hi", "ru", "th", "zh")
# Lines where joining could go wrong if tokenizers did not cut at special tokens before normalizing:
# repeated and odd whitespace, control characters, characters NFKC maps to a space plus a mark, other
# special tokens, text that touches the separator, and empty-ish content.
AWKWARD = [
    "two  spaces and\ttabs\t\there",
    "  leading and trailing spaces  ",
    "control\x1fcharacters\x1c inside\x0bwords",
    "diaeresis ¨ alone and a¨b inside, ideographic\u3000space",
    "other special tokens <s> <mask> [CLS] [MASK] in text",
    "ends with the start of a token <",
    "/s> starts with the end of one",
    "emoji 🙂🙂 and CJK 漢字かな交じり文",
    "\u200b\u200b\u200b\u200b\u200b",
]
