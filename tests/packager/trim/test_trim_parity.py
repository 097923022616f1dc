"""The trimmed model computes exactly what the original did on text whose tokens are all kept.

Small random-weight models of each family (mBERT, DistilmBERT, XLM-R, XLM-R with a classification head),
real vocabularies and real sentences. Tolerance: max abs difference of last hidden states <= 1e-5 (fp32).
"""

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
from langtrim.packager.trim.tokenizer_remap import IdMap

TOLERANCE = 1e-5


def _trim_on_half_of_french(model_dir: Path, out: Path, sentences: list[str], tmp_path: Path, **settings):
    corpus = tmp_path / "fr-corpus.txt"
    corpus.write_text("\n".join(sentences[:400]), encoding="utf-8")
    source = ModelSource(model_dir, model_dir.name, "test model", is_default=False)
    return run_trim(
        source,
        parse_languages("fr"),
        out=out,
        corpora=[CorpusSpec("fr", (str(corpus),))],
        settings=SelectionSettings(threshold=0.0, **settings),
    )


def _load(path: Path):
    config = transformers.AutoConfig.from_pretrained(path)
    model = getattr(transformers, config.architectures[0]).from_pretrained(path)
    return model.eval()


def _outputs(model, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        result = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    return result.hidden_states[-1][0], result.logits[0]


@pytest.mark.parametrize("family", ["mbert", "distilmbert", "xlmr", "xlmr-classifier"])
def test_trimmed_model_matches_original_on_covered_sentences(family, tiny_models, sentences, tmp_path):
    french = sentences("fr")
    out = tmp_path / "trimmed"
    report = _trim_on_half_of_french(tiny_models[family], out, french, tmp_path, fallback=False)
    original, trimmed = _load(tiny_models[family]), _load(out)
    original_tokenizer = Tokenizer.from_file(str(tiny_models[family] / "tokenizer.json"))
    trimmed_tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    id_map = IdMap.from_json((out / ID_MAP_FILE).read_text())
    assert report.tokens_kept == len(id_map.kept_ids) == trimmed.config.vocab_size

    compared = uncovered = 0
    for sentence in french:
        original_ids = original_tokenizer.encode(sentence).ids
        if not id_map.is_kept(original_ids).all():
            uncovered += 1
            continue
        new_ids = trimmed_tokenizer.encode(sentence).ids
        assert new_ids == id_map.to_new(original_ids).tolist()
        hidden_before, logits_before = _outputs(original, original_ids)
        hidden_after, logits_after = _outputs(trimmed, new_ids)
        assert (hidden_after - hidden_before).abs().max().item() <= TOLERANCE
        if family == "xlmr-classifier":  # the head is untouched: same logits over the same labels
            assert (logits_after - logits_before).abs().max().item() <= TOLERANCE
        else:  # the masked-LM decoder keeps the kept tokens' columns
            kept = torch.as_tensor(id_map.kept_ids)
            assert (logits_after - logits_before[:, kept]).abs().max().item() <= TOLERANCE
        compared += 1
    # The corpus is the first 400 sentences: all of those are covered, and some of the last 100 are not.
    assert compared >= 400 and uncovered >= 1


@pytest.mark.parametrize("family", ["mbert", "distilmbert", "xlmr"])
def test_only_vocabulary_weights_change(family, tiny_models, sentences, tmp_path):
    out = tmp_path / "trimmed"
    _trim_on_half_of_french(tiny_models[family], out, sentences("fr"), tmp_path, fallback=False)
    id_map = IdMap.from_json((out / ID_MAP_FILE).read_text())
    before = _load(tiny_models[family]).state_dict()
    after = _load(out).state_dict()
    assert before.keys() == after.keys()
    vocab = before[next(k for k in before if "word_embeddings" in k)].shape[0]
    for name, tensor in before.items():
        if tensor.shape and tensor.shape[0] == vocab:
            assert torch.equal(after[name], tensor[torch.as_tensor(id_map.kept_ids)]), name
        else:
            assert torch.equal(after[name], tensor), name


def test_masked_lm_decoder_stays_tied_to_embeddings(tiny_models, sentences, tmp_path):
    out = tmp_path / "trimmed"
    _trim_on_half_of_french(tiny_models["mbert"], out, sentences("fr"), tmp_path, fallback=False)
    model = _load(out)
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert model.cls.predictions.bias.shape == (model.config.vocab_size,)


def test_config_special_ids_point_at_the_same_tokens(tiny_models, sentences, tmp_path):
    out = tmp_path / "trimmed"
    _trim_on_half_of_french(tiny_models["mbert"], out, sentences("fr"), tmp_path, fallback=False)
    trimmed = Tokenizer.from_file(str(out / "tokenizer.json"))
    config = transformers.AutoConfig.from_pretrained(out)
    assert trimmed.id_to_token(config.pad_token_id) == "[PAD]"
    encoding = trimmed.encode("Bonjour")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    assert trimmed.id_to_token(encoding.ids[0]) == "[CLS]"


def test_trimmed_directory_loads_with_auto_classes(tiny_models, sentences, tmp_path):
    out = tmp_path / "trimmed"
    report = _trim_on_half_of_french(tiny_models["xlmr"], out, sentences("fr"), tmp_path, fallback=False)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    model = transformers.AutoModel.from_pretrained(out)
    batch = tokenizer(["Nous sommes de votre avis."], return_tensors="pt")
    assert int(batch["input_ids"].max()) < report.tokens_kept
    assert model(**batch).last_hidden_state.shape[-1] == 32


def test_unkept_token_maps_to_unknown(tiny_models, sentences, tmp_path):
    out = tmp_path / "trimmed"
    _trim_on_half_of_french(tiny_models["xlmr"], out, sentences("fr"), tmp_path, fallback=False)
    id_map = IdMap.from_json((out / ID_MAP_FILE).read_text())
    dropped = int(np.setdiff1d(np.arange(id_map.original_vocab_size), id_map.kept_ids)[0])
    assert id_map.to_new([0, dropped]).tolist() == [0, id_map.unk_id]
