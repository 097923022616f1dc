"""Offline token selection: line frequencies estimated from wordfreq's word lists, no corpus needed.

The paper counts, for each token, the lines of a language's corpus it occurs in. Without a corpus we
estimate those counts from wordfreq, which gives f(w), the share of word occurrences in running text that
are the word w (casefolded). The approximation, with L = `words_per_line`:

1. A line holds L words drawn independently, so w occurs somewhere in a line with probability
   p = 1 - (1 - f)^L. A form with one slot per line (a sentence's first or last word) has p = f.
2. A word appears in text in several *forms* that tokenize differently (`_word_forms`): after a space
   ("▁aime"), capitalised ("▁Aime"; with the full p, as wordfreq cannot tell names and German nouns from
   other words), in capitals if short ("▁TV"), glued after an apostrophe or hyphen ("j'aime" -> "aime",
   no "▁"), glued after an opening mark ("¿Cuál", "„Ich"), merged with a sentence-final mark (Urdu
   "▁ہے۔"), and with what wordfreq folds restored (German ß, Greek final ς, Traditional Chinese). In
   scripts without spaces neighbouring words merge into pieces ("我的"), so pairs of frequent words are
   forms too, with p = 1 - (1 - f1 f2)^(L-1). A form counts the pieces the tokenizer gives it *inside its
   context*, found by character offsets.
3. A token occurs in a line unless no form containing it does, taking forms as independent:
   p(token) = 1 - prod over forms F containing the token of (1 - p(F)).
4. Punctuation is not in wordfreq: each mark's pieces, glued to or spaced from words, get a fixed line share
   `PUNCTUATION_LINE_SHARE`. Numbers use wordfreq's own estimate (`wordfreq.numbers.digit_freq`).
5. line_count(token) = round(p(token) * NOMINAL_LINES), so a threshold given as a share of lines applies to
   these counts as it does to a real corpus.

L is a calibration constant more than a line length. Fitted to the paper's real Wikipedia line counts,
frequent words behave as if L were about 20. For rare words p ~ L f, so L = 200 at the default threshold
(0.05% of lines) keeps about what L = 20 keeps at the paper notebook's 0.005%, which is what covers real
text: measured with multilingual-e5 on Tatoeba, 98.6% of English, 98.0% of French and 97.0% of German
sentences use only kept tokens, keeping 20k, 18k and 20k of 250k pieces
(benchmarks/offline_coverage.py --sweep shows the trade-off).
"""

import gzip
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import islice, product

import numpy as np
import tokenizers

from langtrim.packager.errors import SelectionError
from langtrim.packager.selection.languages import get_language
from langtrim.packager.selection.stats import TokenStats, tokenizer_sha256

DEFAULT_TOP_N_WORDS = 50_000
DEFAULT_WORDS_PER_LINE = 200.0
NOMINAL_LINES = 10_000_000
# Share of lines assumed to hold each punctuation piece. wordfreq has no punctuation; 1% is far above any
# useful threshold (the default keeps tokens in 0.05% of lines) and below what "." or "," really reach.
PUNCTUATION_LINE_SHARE = 0.01
# Only this many most frequent words get sentence-final forms: with one slot per line (p = f) a form
# needs f near the threshold to matter.
_SENTENCE_FINAL_WORDS = 5_000
# Words this short are also tried in capitals: acronyms ("TV", "USA") are listed casefolded.
_MAX_ACRONYM_LETTERS = 3
# Spellings of one Chinese word tried: as listed (Simplified), Traditional, and mixes (回來).
_MAX_CHINESE_SPELLINGS = 8
# Pairs of words in unspaced scripts become forms when f1 * f2 reaches this (p ~ 2e-4 per line at L=200).
_MIN_PAIR_FREQUENCY = 1e-6

_CLOSING_MARKS = [".", ",", "?", "!", ":", ";", ")", "]", '"', "'", "»", "“", "”", "‘", "’"]
_CLOSING_MARKS += ["...", "…", "%", "€"]
_OPENING_MARKS = ["(", "[", '"', "'", "«", "„", "“", "‘", "¿", "¡", "-", "–", "—", "/", "*", "#"]
_OPENING_MARKS += ["$", "€", "£"]
_INNER_MARKS = ["-", "'", "’", "/", ".", ",", ":", "&", "+"]  # between words or digits: "peut-être", "3:30"
_CJK_MARKS = list("。，、？！：；「」『』（）・〜《》")
_SCRIPT_MARKS = {
    "CJK": _CJK_MARKS,
    "HIRAGANA": _CJK_MARKS,
    "KATAKANA": _CJK_MARKS,
    "ARABIC": ["،", "؛", "؟", "۔"],
    "DEVANAGARI": ["।", "॥", "|"],  # "|" stands in for the danda in much typed Hindi
    "BENGALI": ["।"],
    "GREEK": [";", "·"],  # the Greek question mark and ano teleia, as NFKC writes them
}
# Sentence-final marks besides "." and "?", which some tokenizers merge with the last word.
_SENTENCE_ENDS = {
    "ar": ("؟",),
    "fa": ("؟",),
    "ur": ("۔", "؟"),
    "hi": ("।", "|"),
    "bn": ("।",),
    "zh": ("。", "？"),
    "ja": ("。",),
}
# The mark a quoted or asked sentence opens with, glued to its first word; '"' elsewhere.
_SENTENCE_OPENINGS = {"es": "¿", "de": "„", "ja": "「", "zh": "“"}
_ELIDING = {"fr", "it", "ca"}  # vowel-initial words glued after an apostrophe: "l'école", "dell'anno"
_UNSPACED_SCRIPTS = {"CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN"}
_VOWELS = "aeiouyhàâäéèêëîïôöùûüœæ"


@dataclass(frozen=True)
class _Writing:
    """How a language writes words into text, as far as tokenization is concerned."""

    unspaced: bool  # no spaces between words (Chinese, Japanese)
    elides: bool  # vowel-initial words glued after an apostrophe: "l'école", "dell'anno"
    sentence_opening: str  # the mark a quoted or asked sentence starts with, glued to its first word
    sentence_ends: tuple[str, ...]  # marks glued to a sentence's last word


@dataclass(frozen=True)
class _Form:
    """A string to tokenize, the span [start, end) whose pieces count, and its line probability.

    start == end selects the pieces crossing that boundary (two words merged into one piece)."""

    text: str
    start: int
    end: int
    line_probability: float


def wordfreq_statistics(
    tokenizer: tokenizers.Tokenizer,
    language: str,
    *,
    top_n_words: int = DEFAULT_TOP_N_WORDS,
    words_per_line: float = DEFAULT_WORDS_PER_LINE,
) -> TokenStats:
    """Estimate per-token line counts for `language` from wordfreq, over a nominal `NOMINAL_LINES` lines.

    `top_n_words` bounds the words read (most frequent first); `words_per_line` is L in p = 1 - (1 - f)^L.
    Raises SelectionError when wordfreq has no list for the language.
    """
    import wordfreq

    code = get_language(language).code
    if code not in wordfreq.available_languages():
        raise SelectionError(
            f"no offline word list for language {code!r} (wordfreq lacks it): "
            f"pass a corpus with --corpus {code}=PATH (a text file, one sentence or paragraph per line)"
        )
    if top_n_words < 1:
        raise SelectionError(f"top_n_words must be at least 1, got {top_n_words}: give a positive count")
    if not words_per_line >= 1:
        raise SelectionError(f"words_per_line must be at least 1, got {words_per_line}: give a line length")

    writing = _writing(code)
    frequencies = wordfreq.get_frequency_dict(code)
    listed = wordfreq.top_n_list(code, top_n_words)
    spellings = [_spellings(word, code) for word in listed]
    forms: list[_Form] = []
    for rank, (word, word_spellings) in enumerate(zip(listed, spellings, strict=True)):
        for spelling in word_spellings:
            forms += _word_forms(spelling, frequencies[word], code, writing, words_per_line, rank)
    if writing.unspaced:
        for variant in (0, 1):  # pairs within one spelling system: as listed, then fully Traditional
            variant_words = [
                (spelling[min(variant, len(spelling) - 1)], frequencies[word])
                for word, spelling in zip(listed, spellings, strict=True)
            ]
            forms += _pair_forms(variant_words, words_per_line)
    forms += _number_forms(frequencies, words_per_line)
    forms += _punctuation_forms(listed[:10], set(get_language(code).scripts))

    line_probability = _token_line_probabilities(tokenizer, forms)
    source = (
        f"wordfreq {code} word list (top {len(listed):,} words, {words_per_line:g} words per line; "
        f"estimated over a nominal {NOMINAL_LINES:,} lines)"
    )
    line_counts = np.rint(line_probability * NOMINAL_LINES).astype(np.int64)
    return TokenStats(
        tokenizer_sha256=tokenizer_sha256(tokenizer),
        language=code,
        n_lines=NOMINAL_LINES,
        line_counts=line_counts,
        occurrences=line_counts,  # an estimate of lines only: at least one occurrence per line
        min_line_chars=0,
        inputs=(source,),
    )


def _writing(language: str) -> _Writing:
    scripts = set(get_language(language).scripts)
    return _Writing(
        unspaced=bool(scripts & _UNSPACED_SCRIPTS),
        elides=language in _ELIDING,
        sentence_opening=_SENTENCE_OPENINGS.get(language, '"'),
        sentence_ends=(".", "?", *_SENTENCE_ENDS.get(language, ())),
    )


def _word_forms(
    word: str, frequency: float, language: str, writing: _Writing, words_per_line: float, rank: int
) -> list[_Form]:
    """The forms `word` takes in running text, each with the probability that a line holds it."""
    in_line = 1.0 - (1.0 - frequency) ** words_per_line
    once_per_line = frequency
    forms: list[_Form] = []
    if rank < _SENTENCE_FINAL_WORDS:
        # Some tokenizers merge a word with the mark after it: Urdu "▁ہے۔", Greek "▁2013.".
        forms += [
            _Form(word + end, len(word), len(word) + len(end), once_per_line) for end in writing.sentence_ends
        ]
    if writing.unspaced:
        # "我是学生": words follow each other without "▁"; only a line's first word has it.
        return forms + [_glued(word, "。", in_line), _spaced(word, once_per_line)]

    # Glued after a mark, the word has no "▁" and may split differently. The mark's own pieces are not
    # counted, and the word's pieces barely depend on which mark it was, so one context stands for several:
    # after an apostrophe or hyphen ("j'aime", "peut-être"; every time for an elided vowel-initial word)
    # and, capitalised, after a hyphen or a sentence's opening mark ("E-Mail", "¿Cuál", "„Ich").
    twice_per_line = 1.0 - (1.0 - frequency) ** 2
    elided = writing.elides and word[0] in _VOWELS
    capitalised = _capitalise(word, language)
    forms += [
        _spaced(word, in_line),
        _glued(word, "l'" if elided else "a-", in_line if elided else twice_per_line),
        _glued(capitalised, writing.sentence_opening, twice_per_line),
    ]
    if capitalised != word:
        forms.append(_spaced(capitalised, in_line))
    if len(word) <= _MAX_ACRONYM_LETTERS and word.upper() != capitalised:
        forms.append(_spaced(word.upper(), in_line))  # "TV", "OK", "USA": listed as "tv", "ok", "usa"
    return forms


def _pair_forms(words: list[tuple[str, float]], words_per_line: float) -> list[_Form]:
    """Pieces crossing the boundary of two adjacent words in unspaced scripts ("我" + "的" -> "我的")."""
    frequent = [(word, f) for word, f in words if f * words[0][1] >= _MIN_PAIR_FREQUENCY]
    forms = []
    for (first, f1), (second, f2) in product(frequent, frequent):
        if f1 * f2 >= _MIN_PAIR_FREQUENCY:
            in_line = 1.0 - (1.0 - f1 * f2) ** max(words_per_line - 1.0, 1.0)
            forms.append(_Form(first + second, len(first), len(first), in_line))
    return forms


def _spellings(word: str, language: str) -> list[str]:
    """The spellings wordfreq folded into `word` (it casefolds: ß -> ss, final ς -> σ; lists Simplified
    Chinese), first the listed one.

    German "ss" was either "ss" (muss, Wasser) or "ß" (Straße, weiß); the list cannot tell, so both
    spellings get the word's full frequency: a few extra pieces rather than losing "ß". Greek final σ is
    always ς in text, so that fold is undone exactly. Chinese Traditional spellings are rebuilt with
    wordfreq's own Traditional -> Simplified table, inverted.
    """
    if language == "el" and word.endswith("σ"):
        return [word[:-1] + "ς"]
    if language == "de" and "ss" in word:
        return [word, word.replace("ss", "ß")]
    if language == "zh":
        return _chinese_spellings(word)
    return [word]


def _chinese_spellings(word: str) -> list[str]:
    """`word`, then its Traditional spellings: each character either kept (many Simplified characters are
    also the Traditional ones: 回 in 回來) or replaced by a Traditional character that wordfreq's table
    simplifies to it (来 <- 來; 发 <- 發, 髮). At most `_MAX_CHINESE_SPELLINGS`, fully Traditional first."""
    table = _traditional_characters()
    traditional = "".join(table.get(character, [character])[0] for character in word)
    choices = [[character, *table.get(character, [])] for character in word]
    spellings = [word, traditional, *("".join(chosen) for chosen in islice(product(*choices), 1, None))]
    return list(dict.fromkeys(spellings))[:_MAX_CHINESE_SPELLINGS]


@cache
def _traditional_characters() -> dict[str, list[str]]:
    """Simplified character -> its Traditional characters: wordfreq's own table, inverted."""
    import msgpack

    table_path = resources.files("wordfreq") / "data" / "_chinese_mapping.msgpack.gz"
    with table_path.open("rb") as compressed, gzip.open(compressed) as table_file:
        to_simplified = msgpack.load(table_file, raw=False, strict_map_key=False)
    traditional: dict[str, list[str]] = {}
    for codepoint, simplified in to_simplified.items():
        if chr(codepoint) != simplified:
            traditional.setdefault(simplified, []).append(chr(codepoint))
    return traditional


def _capitalise(word: str, language: str) -> str:
    if language in {"tr", "az"} and word[:1] in {"i", "ı"}:
        return ("İ" if word[0] == "i" else "I") + word[1:]
    if language == "nl" and word.startswith("ij"):
        return "IJ" + word[2:]
    return word[:1].upper() + word[1:]


def _spaced(text: str, line_probability: float) -> _Form:
    return _Form(text, 0, len(text), line_probability)


def _glued(text: str, prefix: str, line_probability: float) -> _Form:
    """The pieces of `text` right after `prefix` (no space between); only pieces overlapping `text` count."""
    return _Form(prefix + text, len(prefix), len(prefix) + len(text), line_probability)


def _number_forms(frequencies: dict[str, float], words_per_line: float) -> list[_Form]:
    """Numbers of 2 to 4 digits, each with wordfreq's estimate of its frequency.

    wordfreq lists multi-digit numbers only by shape ("00", "0000") and spreads a shape's frequency over
    its numbers with `digit_freq` (Benford's law, and a peak around recent years for 4 digits).
    """
    from wordfreq.numbers import digit_freq

    forms: list[_Form] = []
    for digits in (2, 3, 4):
        shape_frequency = frequencies.get("0" * digits, 0.0)
        for number in range(10 ** (digits - 1), 10**digits):
            text = str(number)
            frequency = shape_frequency * digit_freq(text)
            in_line = 1.0 - (1.0 - frequency) ** words_per_line
            if in_line * NOMINAL_LINES >= 1:
                # "2013." ends a sentence; "18." is a German ordinal ("am 18. Mai").
                forms += [_spaced(text, in_line), _glued(text, "(", in_line), _spaced(text + ".", in_line)]
    return forms


def _punctuation_forms(words: list[str], scripts: set[str]) -> list[_Form]:
    """Punctuation pieces as they appear in text: after a word ("word," "word ?"), before one ("(word"
    "« word"), between two ("peut-être", "3:30") and two closing marks in a row ('word?"').

    `words` are a few frequent words of the language used as neighbours; only the marks' pieces count.
    """
    extra = [mark for script in sorted(scripts) for mark in _SCRIPT_MARKS.get(script, [])]
    closing, opening = _CLOSING_MARKS + extra, _OPENING_MARKS + extra
    share = PUNCTUATION_LINE_SHARE
    forms: list[_Form] = []
    for word, mark in product(words, closing):
        forms += [_glued(mark, word, share), _glued(mark, word + " ", share)]
    for word, mark in product(words, opening):
        forms += [_Form(mark + word, 0, len(mark), share), _Form(mark + " " + word, 0, len(mark), share)]
    for word, mark in product(words + ["3"], _INNER_MARKS):
        forms.append(_Form(word + mark + word, len(word), len(word) + len(mark), share))
    for first, second in product(closing, closing):
        forms.append(_glued(first + second, words[0], share))
    return forms


def _token_line_probabilities(tokenizer: tokenizers.Tokenizer, forms: list[_Form]) -> np.ndarray:
    """[vocab_size] float64: p(token) = 1 - prod over forms F holding the token of (1 - p(F))."""
    # Identical forms (a word listed twice, two spellings that coincide) merge: their absences multiply.
    log_absent_by_form: dict[tuple[str, int, int], float] = {}
    for form in forms:
        key = (form.text, form.start, form.end)
        log_absent = math.log1p(-min(form.line_probability, 1.0 - 1e-12))
        log_absent_by_form[key] = log_absent_by_form.get(key, 0.0) + log_absent

    if tokenizer.padding is not None or tokenizer.truncation is not None:
        tokenizer = tokenizers.Tokenizer.from_str(tokenizer.to_str())
        tokenizer.no_padding()
        tokenizer.no_truncation()
    items = list(log_absent_by_form.items())
    encodings = tokenizer.encode_batch([text for (text, _, _), _ in items], add_special_tokens=False)
    token_ids: list[int] = []
    form_log_absent: list[float] = []
    for ((_, start, end), log_absent), encoding in zip(items, encodings, strict=True):
        pieces = {
            token_id
            for token_id, (piece_start, piece_end) in zip(encoding.ids, encoding.offsets, strict=True)
            if (piece_start < end and piece_end > start) or (start == end and piece_start < start < piece_end)
        }
        token_ids.extend(pieces)
        form_log_absent.extend([log_absent] * len(pieces))
    log_absent_by_token = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.float64)
    np.add.at(log_absent_by_token, np.asarray(token_ids, dtype=np.int64), np.asarray(form_log_absent))
    return -np.expm1(log_absent_by_token)
