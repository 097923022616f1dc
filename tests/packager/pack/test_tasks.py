"""Rerankers, NLI classifiers and NER models of each family: packed with their heads, exact where the trim
keeps every token, and answering as the untrimmed model and the transformers pipeline do."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from langtrim.packager.errors import UnsupportedModelError
from langtrim.packager.pack.heads import head_task, pair_truncation_of
from langtrim.packager.pack.score_parity import MAX_QUERIES, PASSAGES_PER_QUERY, translation_sets
from langtrim.runtime import Encoder
from langtrim.runtime.bundle import PARITY_FILE, read_manifest
from langtrim.runtime.errors import BundleError
from tests.support.cli import run_cli
from tests.support.task_models import pack_task_bundle

EXACT = 1e-5  # fp32: the trim changes nothing, the export only float rounding


def _covered(bundle: Path, original_dir: Path, texts: list[str]) -> list[str]:
    """Texts whose original tokens the bundle all kept (the trim is exact on them)."""
    kept = set(json.loads((bundle / "id_map.json").read_text())["kept_original_ids"])
    tokenizer = Tokenizer.from_file(str(original_dir / "tokenizer.json"))
    return [t for t in texts if set(tokenizer.encode(t).ids) <= kept]


def test_a_head_langtrim_cannot_keep_is_refused_in_one_line(task_model) -> None:
    config = json.loads((task_model("xlmr-qa") / "config.json").read_text())
    with pytest.raises(
        UnsupportedModelError, match=r"XLMRobertaForQuestionAnswering, whose QuestionAnswering head"
    ) as error:
        head_task(config, "qa-model")
    assert "\n" not in str(error.value)
    assert head_task({"architectures": ["XLMRobertaForMaskedLM"]}) == "feature-extraction"
    assert head_task({"architectures": ["BertForTokenClassification"]}) == "token-classification"


def test_rerankers_keep_the_query_whole_and_nli_cuts_the_longest() -> None:
    one = {"id2label": {"0": "LABEL_0"}}
    nli = {"id2label": {"0": "entailment", "1": "neutral", "2": "contradiction"}}
    sentiment = {"id2label": {"0": "negative", "1": "positive"}}
    assert pair_truncation_of(one, "text-classification") == "only_second"
    assert pair_truncation_of(nli, "text-classification") == "longest_first"
    assert pair_truncation_of(sentiment, "text-classification") is None
    assert pair_truncation_of(sentiment, "text-classification", pairs=True) == "longest_first"


@pytest.mark.parametrize("name", ["xlmr-reranker", "mbert-nli", "distilmbert-nli"])
def test_pair_classifiers_score_pairs_as_the_untrimmed_model(
    name, task_model, sentences, tmp_path_factory
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    original_dir = task_model(name)
    bundle = pack_task_bundle(original_dir, sentences, tmp_path_factory)
    manifest = read_manifest(bundle)
    assert manifest.pair_truncation == ("only_second" if name == "xlmr-reranker" else "longest_first")
    texts = _covered(bundle, original_dir, sentences("fr")[:60])
    pairs = list(zip(texts[::2], texts[1::2], strict=False))
    tokenizer = AutoTokenizer.from_pretrained(original_dir)
    model = AutoModelForSequenceClassification.from_pretrained(original_dir).eval()
    with torch.no_grad():
        batch = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
        expected = model(**batch).logits.numpy()
    encoder = Encoder(bundle)
    logits = encoder.probabilities(pairs, raw_scores=True)
    assert np.abs(logits - expected).max() <= EXACT
    if name == "xlmr-reranker":
        query, passages = texts[0], texts[1:8]
        scores = encoder.rerank(query, passages)
        with torch.no_grad():
            batch = tokenizer([query] * len(passages), passages, padding=True, return_tensors="pt")
            reference = torch.sigmoid(model(**batch).logits[:, 0]).numpy()
        assert np.abs(scores - reference).max() <= EXACT
    else:
        with pytest.raises(BundleError, match="not a reranker"):
            encoder.rerank("a", ["b"])
    report = json.loads((bundle / PARITY_FILE).read_text())["languages"][0]
    assert report["trim_max_abs_diff"] <= EXACT
    assert report["scores"]["max_logit_diff_identical"] <= EXACT
    assert report["scores"]["queries"] > 0 and 0.9 <= report["scores"]["top1_agreement"] <= 1.0


def test_translation_sets_hide_each_translation_among_others() -> None:
    queries, translations = [f"q{i}" for i in range(12)], [f"t{i}" for i in range(12)]
    sets = translation_sets(queries, translations)
    assert [s.query for s in sets] == queries
    for i, found in enumerate(sets):
        assert found.relevant is not None and found.passages[found.relevant] == f"t{i}"
        assert len(set(found.passages)) == PASSAGES_PER_QUERY and all(p[0] == "t" for p in found.passages)
    assert {s.relevant for s in sets} == set(range(PASSAGES_PER_QUERY))  # no position favoured
    assert translation_sets(queries[:4], translations[:4]) == []  # too few for one set


def test_pair_sets_take_the_users_text_first_then_translations_then_sentences() -> None:
    from langtrim.packager.pack.bitext import BitextPairs
    from langtrim.packager.pack.parity import pair_sets

    words = [f"w{i}" for i in range(10)]
    texts = {language: (f"{language} text", words) for language in ("de", "fr", "sv")}
    pairs = [
        BitextPairs(language, f"{language} pairs", words, [w.upper() for w in words], gated=gated)
        for language, gated in (("de", True), ("fr", True), ("it", True), ("sv", False))
    ]
    found = pair_sets(texts, pairs, user_texts={"de", "fr"}, user_pairs={"fr"})
    assert (
        found["de"][0] == "de text" and found["de"][1][0].relevant is None
    )  # --eval-text over shipped pairs
    assert found["fr"][0].startswith("fr pairs") and found["fr"][1][0].relevant == 0  # --eval-pairs first
    assert found["it"][0].startswith("it pairs")  # pairs but no sentences
    assert found["sv"][0] == "sv text"  # pairs the bundle does not cover both sides of


def test_a_reranker_that_keeps_english_is_measured_on_translations(
    task_model, sentences, tmp_path_factory, monkeypatch, capsys
) -> None:
    original_dir = task_model("xlmr-reranker")
    bundle = pack_task_bundle(original_dir, sentences, tmp_path_factory, languages="en,fr")
    rows = {row["language"]: row for row in json.loads((bundle / PARITY_FILE).read_text())["languages"]}
    assert set(rows) == {"en", "fr"}
    for row in rows.values():
        assert "each sentence against its translation and 4 others" in row["text_source"]
        scores = row["scores"]
        assert scores["queries"] == MAX_QUERIES and scores["items"] == MAX_QUERIES * PASSAGES_PER_QUERY
        assert scores["max_logit_diff_identical"] <= EXACT
        # fp32: both models find the translation first for the same queries, ties aside
        assert abs(scores["relevant_top1_original"] - scores["relevant_top1_bundle"]) <= 0.02
    code, shown, _ = run_cli(["parity", str(bundle), "--against", str(original_dir)], monkeypatch, capsys)
    assert code == 0 and "found" in shown and "rank corr. >= 0.8" in shown and "F1 drop" not in shown


def test_a_score_gate_fails_parity_on_text_the_bundle_drops(
    task_model, sentences, tmp_path_factory, tmp_path, monkeypatch, capsys
) -> None:
    original_dir = task_model("xlmr-reranker")
    bundle = pack_task_bundle(original_dir, sentences, tmp_path_factory)  # French only
    chinese = tmp_path / "zh.txt"
    chinese.write_text("\n".join(sentences("zh")[:120]), encoding="utf-8")
    args = ["parity", str(bundle), "--against", str(original_dir), "--eval-text", f"fr={chinese}"]
    open_gates = ["--min-cosine", "0", "--min-p1-cosine", "0", "--max-unk-rate", "1"]
    code, _, stderr = run_cli([*args, *open_gates, "--min-rank-correlation", "0.999"], monkeypatch, capsys)
    assert code == 1
    assert "parity gate missed (fr: rank correlation" in " ".join(stderr.split())


@pytest.mark.parametrize("name", ["mbert-ner", "distilmbert-ner", "xlmr-ner"])
def test_entities_are_the_pipelines_on_the_untrimmed_model(
    name, task_model, sentences, tmp_path_factory
) -> None:
    from transformers import pipeline

    original_dir = task_model(name)
    bundle = pack_task_bundle(original_dir, sentences, tmp_path_factory)
    manifest = read_manifest(bundle)
    assert manifest.task == "token-classification" and manifest.labels[:2] == ("O", "B-PER")
    texts = _covered(bundle, original_dir, sentences("fr")[:40])
    assert len(texts) >= 20
    ner = pipeline(
        "token-classification", model=str(original_dir), aggregation_strategy="simple", device="cpu"
    )
    found = Encoder(bundle).entities(texts)
    for text, expected, spans in zip(texts, ner(texts), found, strict=True):
        assert [(e["entity_group"], e["start"], e["end"]) for e in expected] == [
            (s.label, s.start, s.end) for s in spans
        ]
        assert np.allclose([e["score"] for e in expected], [s.score for s in spans], atol=EXACT)
        assert all(text[s.start : s.end] == s.text for s in spans)
    report = json.loads((bundle / PARITY_FILE).read_text())["languages"][0]
    assert report["trim_max_abs_diff"] <= EXACT
    assert report["scores"]["max_logit_diff_identical"] <= EXACT


def test_entity_offsets_refer_to_the_callers_text_when_truncated(
    task_model, sentences, tmp_path_factory
) -> None:
    bundle = pack_task_bundle(task_model("xlmr-ner"), sentences, tmp_path_factory)
    encoder = Encoder(bundle)
    text = " ".join(sentences("fr")[:200])
    for side in ("right", "left"):
        spans = encoder.entities([text], truncation=side)[0]  # type: ignore[arg-type]
        assert spans and all(text[s.start : s.end] == s.text for s in spans)
        if side == "left":
            assert spans[-1].end > len(text) - 20
        else:
            assert spans[0].start < 20


def test_pack_refuses_a_question_answering_model_in_one_line(
    task_model, tmp_path, monkeypatch, capsys
) -> None:
    args = ["pack", str(task_model("xlmr-qa")), "--languages", "fr", "--out", str(tmp_path / "out")]
    code, _, stderr = run_cli(args, monkeypatch, capsys)
    assert code == 1 and stderr.count("\n") == 1
    assert "QuestionAnswering head langtrim cannot keep" in stderr and not (tmp_path / "out").exists()


def test_only_a_classifier_bundle_may_take_pairs(tmp_path_factory, tmp_path) -> None:
    from langtrim.runtime.bundle import write_manifest
    from tests.support.bundles import copy_bundle, manifest_fields, tiny_bundle

    bundle = copy_bundle(tiny_bundle(tmp_path_factory, "bert"), tmp_path)
    with pytest.raises(BundleError, match="only a text-classification bundle takes text pairs"):
        write_manifest(bundle, **manifest_fields("bert"), pair_truncation="only_second")
