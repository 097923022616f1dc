"""The paper's own system at full size: mBERT's real shape (its published configuration and the real
vocabulary, RANDOM weights from a fixed seed) cut to English with the paper's list keeps Table 1's rows and
computes exactly what the original computes on identically tokenized sentences."""

import pytest
from safetensors import safe_open
from tokenizers import Tokenizer

from langtrim.packager.models.sources import ModelSource
from langtrim.packager.selection.choose import SelectionSettings
from langtrim.packager.selection.languages import parse_languages
from langtrim.packager.selection.paper import PAPER_SPECIAL_TOKENS, paper_token_ids
from langtrim.packager.trim.job import run_trim
from tests.support.hidden_states import max_hidden_difference
from tests.support.paper_models import build_paper_model, describe

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5
ENGLISH_TOKENS = 28_458  # the paper's Table 1


def test_full_size_mbert_cut_to_english_keeps_the_papers_rows_and_is_exact(tmp_path, sentences):
    original = build_paper_model("mbert", tmp_path / "mbert")
    source = ModelSource(original, str(original), describe("mbert"), is_default=False)
    out = tmp_path / "mbert-en"
    report = run_trim(
        source, parse_languages("en"), out=out, settings=SelectionSettings(source="paper", fallback=False)
    )

    tokenizer = Tokenizer.from_file(str(original / "tokenizer.json"))
    english = set(paper_token_ids(tokenizer, "en").tolist())
    specials = {tokenizer.token_to_id(token) for token in PAPER_SPECIAL_TOKENS}
    assert report.tokens_per_language["en"] == len(english) == ENGLISH_TOKENS
    assert report.tokens_kept == len(english | specials)
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        rows = weights.get_slice("bert.embeddings.word_embeddings.weight").get_shape()
    assert rows == [len(english | specials), 768]

    worst, compared = max_hidden_difference(original, out, sentences("en")[:200])
    assert compared >= 150, f"only {compared} of 200 sentences tokenized identically"
    assert worst <= TOLERANCE
