"""Plain and truncating copies of a tokenizer: parity compares many batches with them, so each is made once
and the tokenizer it came from is never changed."""

from tokenizers import Tokenizer

from langtrim.packager.models.tokenizer import truncating, unpadded

LONG = "Der schnelle braune Fuchs springt über den faulen Hund, und die Katze schläft weiter. " * 4


def test_truncating_cuts_as_asked_and_leaves_the_tokenizer_alone(e5_tokenizer: Tokenizer) -> None:
    before = (e5_tokenizer.padding, e5_tokenizer.truncation)
    cut = truncating(e5_tokenizer, 16)
    assert len(cut.encode(LONG).ids) == 16
    assert cut.encode(LONG).ids[-1] == e5_tokenizer.encode(LONG).ids[-1]  # the closing special survives
    assert cut.padding is None
    assert (e5_tokenizer.padding, e5_tokenizer.truncation) == before
    pair = cut.encode("eine kurze Frage", LONG)
    assert len(pair.ids) == 16 and pair.ids[:4] == e5_tokenizer.encode("eine kurze Frage", LONG).ids[:4]


def test_unpadded_copies_only_what_pads_or_truncates(e5_tokenizer: Tokenizer) -> None:
    cut = truncating(e5_tokenizer, 16)
    plain = unpadded(cut)
    assert plain is not cut and cut.truncation is not None
    assert plain.padding is None and plain.truncation is None
    assert len(plain.encode(LONG).ids) > 16
    assert unpadded(plain) is plain
