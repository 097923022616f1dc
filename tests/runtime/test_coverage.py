"""`Encoder.coverage`: the serve-time coverage check, on bundles with and without calibrated thresholds."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.runtime import BundleError, Encoder, InputError
from langtrim.runtime.bundle import MANIFEST_FILE, TOKENIZER_FILE
from langtrim.runtime.coverage import (
    DEFAULT_MAX_UNKNOWN_SHARE,
    CoverageCheck,
    CoverageThresholds,
    plain_ids,
    word_hash,
    words_of,
)
from tests.support.bundles import tiny_bundle

RUSSIAN = "Я не знаю, что ты хочешь от меня."


@pytest.fixture(scope="module")
def uncalibrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle written without a coverage field, as bundles packed before the check: a BERT trimmed to the
    tokens of 250 English sentences, with the real all-MiniLM-L6-v2 WordPiece tokenizer."""
    return tiny_bundle(tmp_path_factory, "bert-trimmed").path


def test_words_are_runs_of_two_or_more_letters_in_any_script() -> None:
    assert words_of("L'homme a 3 chats_noirs, 日本語 und Straße!") == [
        "homme",
        "chats",
        "noirs",
        "日本語",
        "und",
        "Straße",
    ]
    assert word_hash("Straße") == word_hash("straße")


def test_a_bundle_packed_before_calibration_checks_the_unknown_share_alone(
    uncalibrated: Path, sentences
) -> None:
    english, russian = Encoder(uncalibrated).coverage([sentences("en")[0], RUSSIAN])
    assert english.covered and english.unknown_share == 0.0 and english.dropped_word_share is None
    assert not russian.covered and russian.unknown_share > DEFAULT_MAX_UNKNOWN_SHARE
    assert russian.dropped_word_share is None and russian.words == 7


def test_one_record_per_text_in_order(uncalibrated: Path, sentences) -> None:
    texts = [RUSSIAN, *sentences("en")[:3], RUSSIAN]
    records = Encoder(uncalibrated).coverage(texts)
    assert [record.covered for record in records] == [False, True, True, True, False]


def test_coverage_refuses_what_embed_refuses(uncalibrated: Path) -> None:
    with pytest.raises(InputError, match="got a single str: wrap it in a list"):
        Encoder(uncalibrated).coverage("Hello")  # type: ignore[arg-type]


def test_the_dropped_word_share_counts_words_the_trim_dropped(uncalibrated: Path) -> None:
    tokenizer = Tokenizer.from_file(str(uncalibrated / TOKENIZER_FILE))
    unknown = tokenizer.token_to_id("[UNK]")
    dropped = np.unique(np.array([word_hash("violin"), word_hash("orchestra")], dtype=np.uint32))
    check = CoverageCheck(CoverageThresholds(1.0, 0.3, unknown, "words.npy"), unknown, dropped)
    texts = ["the cat sat", "Violin and orchestra: the rest", "12 34"]
    kept, half, none = check.measure(plain_ids(tokenizer, texts), texts)
    assert kept.dropped_word_share == 0.0 and kept.covered
    assert half.dropped_word_share == pytest.approx(2 / 5) and not half.covered
    assert none.words == 0 and none.dropped_word_share == 0.0 and none.covered


def test_a_bad_coverage_field_names_the_field(uncalibrated: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(uncalibrated, bundle)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["coverage"] = {"format": 1, "max_unknown_share": 2, "max_dropped_word_share": None}
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(
        BundleError, match="field 'coverage' 'max_unknown_share' must be a share from 0 to 1, got 2"
    ):
        Encoder(bundle).coverage(["Hello"])


def test_a_coverage_field_that_is_not_an_object_is_refused_on_load(
    uncalibrated: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(uncalibrated, bundle)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["coverage"] = [0.1]
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="field 'coverage' must be an object or null, got a list"):
        Encoder(bundle)


def test_pieces_of_a_script_outside_the_bundles_count_with_the_unknown_ones() -> None:
    """A bundle that keeps every script's characters (--fallback-all-scripts) has no unknown token for
    Russian: its pieces are Cyrillic, a script none of a Latin bundle's languages is written in."""
    from tests.conftest import MINILM_DIR

    tokenizer = Tokenizer.from_file(str(MINILM_DIR / TOKENIZER_FILE))  # has Cyrillic pieces
    tokenizer.no_padding()  # as the Encoder's
    unknown = tokenizer.token_to_id("[UNK]")
    thresholds = CoverageThresholds(0.05, None, unknown, None, scripts=("LATIN",))
    check = CoverageCheck(thresholds, unknown, None).with_vocab(
        lambda: tokenizer.get_vocab(with_added_tokens=False)
    )
    texts = ["I do not know what you want from me.", RUSSIAN]
    english, russian = check.measure(plain_ids(tokenizer, texts), texts)
    assert english.covered and english.foreign_share == 0.0
    assert russian.unknown_share == 0.0 and russian.foreign_share > 0.5 and not russian.covered
    unchecked = CoverageCheck(thresholds, unknown, None).measure(plain_ids(tokenizer, [RUSSIAN]), [RUSSIAN])
    assert unchecked[0].foreign_share is None
