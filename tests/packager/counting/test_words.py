"""The word cache (`counting.words`) gives exactly the ids of encoding each line alone, or is not used."""

import unicodedata

import numpy as np
import pytest
from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers

from langtrim.packager.counting import words
from langtrim.packager.counting.encode import encode_lines, line_separators
from langtrim.packager.counting.words import WordCache, WordRule, word_rule
from tests.support.texts import AWKWARD as JOINING_AWKWARD
from tests.support.texts import LANGUAGES

# Lines where splitting at spaces could go wrong: marks and spaces of other kinds beside a space, added
# tokens glued to words, runs of spaces at either end, words longer than WordPiece takes, CJK characters
# the normalizer spaces out, characters the normalizer drops or decomposes; and those of joined lines.
AWKWARD = JOINING_AWKWARD + [
    "a combining acute after a space \u0301 and e\u0301 composed, \u0301 \u0301",
    "no-break\u00a0space, ideographic\u3000space, thin\u2009space, en\u2002space",
    "tabs\tinside\twords, a form\x0cfeed and\x1fcontrol\x1ccharacters",
    "[CLS]glued [SEP] and x[MASK]y and [PAD] [UNK]",
    "  leading, trailing and  double  spaces  ",
    "CJK 漢字かな交じり文 mixed中文text and ｆｕｌｌ ｗｉｄｔｈ",
    "a" * 150 + " long word " + "b" * 99 + " " + "c" * 101,
    "digits 12345 3.14 and punctuation!?… «quotes» (brackets)",
    "\u200b zero width \u200d joiners \ufeff",
    "Ünïcödé ÀÉÎÕÜ ﬁ ligature ① ² Å K ǅ",
    " ",
    "",
]


def _reference(tokenizer: Tokenizer, lines: list[str]) -> tuple[list[int], list[int]]:
    ids = [tokenizer.encode(line, add_special_tokens=False).ids for line in lines]
    return [len(i) for i in ids], [t for i in ids for t in i]


def _encode(tokenizer: Tokenizer, lines: list[str], **options) -> tuple[list[int], list[int]]:
    cache = WordCache(tokenizer, np.int32, line_separators(tokenizer), word_rule(tokenizer), **options)
    lengths, ids = cache.encode_lines(lines)
    return lengths.tolist(), ids.tolist()


def _lines(sentences) -> list[str]:
    mixed = [s for language in LANGUAGES for s in sentences(language)[:40]]
    paragraphs = [" ".join(mixed[i : i + 10]) for i in range(0, len(mixed), 10)]
    return mixed[:100] + AWKWARD + paragraphs


def _variant(tokenizer: Tokenizer, normalizer=None, pre_tokenizer=None) -> Tokenizer:
    variant = Tokenizer.from_str(tokenizer.to_str())
    if normalizer is not None:
        variant.normalizer = normalizer
    if pre_tokenizer is not None:
        variant.pre_tokenizer = pre_tokenizer
    return variant


@pytest.fixture(scope="module")
def variants(mbert_tokenizer) -> dict[str, Tokenizer]:
    """mBERT as shipped, uncased with accents stripped, and other normalizers and pre-tokenizers allowed."""
    return {
        "mbert": mbert_tokenizer,
        "uncased": _variant(mbert_tokenizer, normalizers.BertNormalizer(lowercase=True, strip_accents=True)),
        "nfkc-lowercase-whitespace-digits": _variant(
            mbert_tokenizer,
            normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]),
            pre_tokenizers.Sequence(
                [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
            ),
        ),
        "nfd-punctuation-whitespacesplit": _variant(
            mbert_tokenizer,
            normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents()]),
            pre_tokenizers.Sequence([pre_tokenizers.Punctuation(), pre_tokenizers.WhitespaceSplit()]),
        ),
    }


@pytest.mark.parametrize(
    "name", ["mbert", "uncased", "nfkc-lowercase-whitespace-digits", "nfd-punctuation-whitespacesplit"]
)
def test_word_cache_gives_the_ids_of_each_line_alone(variants, sentences, name):
    tokenizer = variants[name]
    assert word_rule(tokenizer) == WordRule(every_word=True)
    lines = _lines(sentences)
    assert _encode(tokenizer, lines) == _reference(tokenizer, lines)


def test_word_cache_stays_exact_across_blocks_and_when_full(mbert_tokenizer, sentences):
    lines = _lines(sentences)
    expected = _reference(mbert_tokenizer, lines)
    cache = WordCache(
        mbert_tokenizer, np.int32, line_separators(mbert_tokenizer), word_rule(mbert_tokenizer), capacity=300
    )
    first = cache.encode_lines(lines[:20])
    assert 0 < len(cache) <= 300
    held = len(cache)
    # The rest meets words cached and words not: the cache is full, so those serve their block only.
    rest = cache.encode_lines(lines[20:])
    again = cache.encode_lines(lines)
    assert len(cache) == held
    assert first[0].tolist() + rest[0].tolist() == expected[0]
    assert first[1].tolist() + rest[1].tolist() == expected[1]
    assert (again[0].tolist(), again[1].tolist()) == expected


def test_a_failed_encoding_leaves_the_cache_consistent(mbert_tokenizer, sentences, monkeypatch):
    lines = _lines(sentences)
    cache = WordCache(mbert_tokenizer, np.int32, line_separators(mbert_tokenizer), word_rule(mbert_tokenizer))
    cache.encode_lines(lines[:20])
    held = len(cache)

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(words, "encode_lines", fail)
        with pytest.raises(KeyboardInterrupt):
            cache.encode_lines(lines)
    assert len(cache) == held
    lengths, ids = cache.encode_lines(lines)
    assert (lengths.tolist(), ids.tolist()) == _reference(mbert_tokenizer, lines)


def test_tokenizers_where_a_word_does_not_encode_alone_keep_lines(e5_tokenizer, mbert_tokenizer):
    byte_level = _variant(mbert_tokenizer, pre_tokenizer=pre_tokenizers.ByteLevel())
    no_pre_tokenizer = Tokenizer.from_str(mbert_tokenizer.to_str())
    no_pre_tokenizer.pre_tokenizer = None
    replacing = _variant(mbert_tokenizer, normalizers.Replace(" a", "A"))
    spaced_token = Tokenizer.from_str(mbert_tokenizer.to_str())
    spaced_token.add_tokens([AddedToken("new york", single_word=True)])
    truncating = Tokenizer.from_str(mbert_tokenizer.to_str())
    truncating.enable_truncation(16)
    metaspace_first = _variant(e5_tokenizer, pre_tokenizer=pre_tokenizers.Metaspace(prepend_scheme="first"))
    e5_replacing = _variant(e5_tokenizer, normalizers.Replace(" a", "A"))
    for tokenizer in (
        byte_level,
        no_pre_tokenizer,
        replacing,
        spaced_token,
        truncating,
        metaspace_first,
        e5_replacing,
    ):
        assert word_rule(tokenizer) is None
    # the spaced added token shows why: it matches across a space, which words alone never see
    assert spaced_token.encode("in new york", add_special_tokens=False).ids[-1] == (
        spaced_token.token_to_id("new york")
    )


# --- SentencePiece Unigram with Metaspace (e5, XLM-R): words alone except where a line says otherwise --------


def test_e5_lines_encode_word_by_word_except_where_the_rule_sends_them_whole(e5_tokenizer, sentences):
    rule = word_rule(e5_tokenizer)
    assert rule == WordRule(every_word=False, added_texts=("<s>", "<pad>", "</s>", "<unk>", "<mask>"))
    # Why lines may go whole: a trailing space is a piece of its own, added tokens take their spaces along.
    assert e5_tokenizer.encode("mot ", add_special_tokens=False).ids != (
        e5_tokenizer.encode("mot", add_special_tokens=False).ids
    )
    whole_lines = [
        "mot ",
        "mot\u00a0",
        "a <s> b",
        "x <mask> y",
        "a \u200b",
        "\u0600 123",
        "ग \u093f",
        "a \u0e33b",
        " ",
    ]
    lines = _lines(sentences) + whole_lines + ["▁a ▁b", "a\u00a0 b"]  # e5 normalizes both to plain spaces
    assert _encode(e5_tokenizer, lines) == _reference(e5_tokenizer, lines)
    cache = WordCache(e5_tokenizer, np.int32, line_separators(e5_tokenizer), rule)
    sent_whole = []
    cache._encode_whole = lambda whole: (
        sent_whole.extend(whole) or encode_lines(e5_tokenizer, whole, np.int32, line_separators(e5_tokenizer))
    )
    cache.encode_lines(lines)
    assert set(whole_lines) <= set(sent_whole)
    assert len(sent_whole) < len(lines) / 4  # most real lines go word by word


@pytest.mark.parametrize("pattern", ["first", "last"], ids=["char-after-space", "char-before-space"])
def test_e5_word_cache_is_exact_beside_a_space_for_every_code_point(e5_tokenizer, pattern):
    """Every assigned code point, right after a space or right before one: the cluster rule holds."""
    chars = [
        chr(code)
        for code in range(0x110000)
        if unicodedata.category(chr(code)) not in {"Cn", "Cs", "Co"} and chr(code) not in "\n\r"
    ]
    lines = [f"x {char}y z" if pattern == "first" else f"x y{char} z" for char in chars]
    expected = encode_lines(e5_tokenizer, lines, np.int32, line_separators(e5_tokenizer))
    cache = WordCache(e5_tokenizer, np.int32, line_separators(e5_tokenizer), word_rule(e5_tokenizer))
    for start in range(0, len(lines), 20_000):  # blocks, as `langtrim count` gives them
        lengths, ids = cache.encode_lines(lines[start : start + 20_000])
        block_lengths = expected[0][start : start + 20_000]
        first_id = int(expected[0][:start].sum())
        assert lengths.tolist() == block_lengths.tolist()
        assert ids.tolist() == expected[1][first_id : first_id + int(block_lengths.sum())].tolist()


def test_shards_of_a_count_share_one_word_cache_per_tokenizer_and_language(mbert_tokenizer, e5_tokenizer):
    from langtrim.packager.counting.counter import line_encoder

    first = line_encoder(mbert_tokenizer, np.int32, "fr")
    assert line_encoder(mbert_tokenizer, np.int32, "fr").__self__ is first.__self__
    assert line_encoder(mbert_tokenizer, np.int32, "de").__self__ is not first.__self__
    assert line_encoder(e5_tokenizer, np.int32, "de").__self__ is not first.__self__
    assert line_encoder(mbert_tokenizer, np.int32, "fr").__self__ is not first.__self__  # one kept: the last
