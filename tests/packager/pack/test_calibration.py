"""The sentences `--quantize int8` measures its activation ranges on."""

import pytest

from langtrim.packager.errors import SelectionError
from langtrim.packager.pack.calibration import CALIBRATION_SENTENCES, calibration_texts
from langtrim.packager.shipped_text import shipped_sentences


def test_calibration_uses_the_first_shipped_sentences_of_each_language() -> None:
    texts = calibration_texts(["fr", "de"])
    assert (
        texts
        == shipped_sentences("fr")[:CALIBRATION_SENTENCES] + shipped_sentences("de")[:CALIBRATION_SENTENCES]
    )


def test_a_language_langtrim_ships_no_sentences_for_is_calibrated_on_its_eval_text(tmp_path) -> None:
    text = tmp_path / "pt.txt"
    text.write_text("Olá mundo.\n\nObrigado pela ajuda.\n", encoding="utf-8")
    assert calibration_texts(["pt"], {"pt": [str(text)]}) == ["Olá mundo.", "Obrigado pela ajuda."]


def test_no_sentences_at_all_names_the_fixes() -> None:
    with pytest.raises(SelectionError, match="ships none for pt: give some with --eval-text.*int8-dynamic"):
        calibration_texts(["pt"])
