"""The trimmed tokenizer's contract, on real text in 15 languages, for WordPiece and Unigram vocabularies.

For every text whose original tokenization uses only kept tokens, the trimmed tokenizer gives exactly the
remapped original ids (special tokens included).
"""

import json

import numpy as np
import pytest
from tokenizers import Tokenizer, models

from langtrim.packager.errors import UnsupportedModelError
from langtrim.packager.models.tokenizer import special_token_ids, unigram_keep_ids
from langtrim.packager.selection.threshold import frequent_token_ids
from langtrim.packager.trim.tokenizer_remap import IdMap, remap_tokenizer
from tests.conftest import MINILM_DIR, XNLI_LANGUAGES
from tests.support.stats import line_statistics


def _selection_from_first_halves(tokenizer: Tokenizer, sentences) -> np.ndarray:
    """Tokens seen in the first half of every language's sentences: the second halves are partly covered."""
    selected = [special_token_ids(tokenizer), unigram_keep_ids(tokenizer)]
    for language in XNLI_LANGUAGES:
        lines = sentences(language)
        stats = line_statistics(tokenizer, language, lines[: len(lines) // 2])
        selected.append(frequent_token_ids(stats, threshold=0.0).tolist())
    return np.unique(np.concatenate([np.asarray(ids, dtype=np.int64) for ids in selected]))


@pytest.mark.parametrize("which", ["e5_tokenizer", "mbert_tokenizer"])
def test_covered_texts_get_exactly_the_remapped_ids(which, request, sentences):
    original: Tokenizer = request.getfixturevalue(which)
    trimmed, id_map = remap_tokenizer(original, _selection_from_first_halves(original, sentences))
    covered = uncovered = 0
    for language in XNLI_LANGUAGES:
        texts = sentences(language)
        for before, after in zip(original.encode_batch(texts), trimmed.encode_batch(texts), strict=True):
            if id_map.is_kept(before.ids).all():
                assert after.ids == id_map.to_new(before.ids).tolist()
                covered += 1
            else:
                uncovered += 1
    assert covered > 3000 and uncovered > 300, (covered, uncovered)


def test_uncovered_texts_use_kept_pieces_or_unknown(e5_tokenizer, sentences):
    trimmed, id_map = remap_tokenizer(e5_tokenizer, _selection_from_first_halves(e5_tokenizer, sentences))
    for encoding in trimmed.encode_batch(sentences("th")):
        assert max(encoding.ids) < len(id_map.kept_ids)


def test_unigram_keeps_the_lowest_scoring_piece(e5_tokenizer):
    scores = [score for _, score in json.loads(e5_tokenizer.to_str())["model"]["vocab"]]
    assert unigram_keep_ids(e5_tokenizer) == [int(np.argmin(scores))]


def test_special_tokens_and_post_processor_are_remapped(mbert_tokenizer):
    kept = np.asarray(
        sorted(set(special_token_ids(mbert_tokenizer)) | {mbert_tokenizer.token_to_id("Paris")})
    )
    trimmed, id_map = remap_tokenizer(mbert_tokenizer, kept)
    encoding = trimmed.encode("Paris")
    assert encoding.tokens == ["[CLS]", "Paris", "[SEP]"]
    assert encoding.ids == id_map.to_new(mbert_tokenizer.encode("Paris").ids).tolist()
    assert trimmed.token_to_id("[UNK]") == id_map.unk_id


def test_padding_id_is_remapped():
    original = Tokenizer.from_file(str(MINILM_DIR / "tokenizer.json"))
    assert original.padding is not None
    kept = np.asarray(special_token_ids(original) + [original.token_to_id("hello")])
    trimmed, id_map = remap_tokenizer(original, np.unique(kept))
    assert trimmed.padding["pad_id"] == id_map.to_new([original.padding["pad_id"]])[0]
    assert trimmed.id_to_token(trimmed.padding["pad_id"]) == "[PAD]"


def test_id_map_round_trips_through_json(e5_tokenizer):
    _, id_map = remap_tokenizer(e5_tokenizer, np.asarray([0, 1, 2, 3, 10, 250001]))
    again = IdMap.from_json(id_map.to_json())
    assert again.kept_ids.tolist() == [0, 1, 2, 3, 10, 250001]
    assert again.to_new([10, 11, 250001]).tolist() == [4, again.unk_id, 5]


def test_bpe_tokenizers_are_refused_with_a_reason():
    bpe = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "ab": 2}, merges=[("a", "b")]))
    with pytest.raises(UnsupportedModelError, match="BPE tokenizer.*WordPiece.*Unigram"):
        remap_tokenizer(bpe, np.asarray([0, 1]))
