"""Retrieval parity's metric: MTEB's bitext mining, by hand, against scikit-learn and against mteb itself."""

from pathlib import Path

import numpy as np
import pytest

from langtrim.packager.errors import SelectionError
from langtrim.packager.pack.bitext import (
    BitextScore,
    bitext_score,
    gate_failure,
    load_pairs,
    nearest,
    parse_eval_pairs,
    sign_test,
)
from langtrim.packager.shipped_text import pair_languages, shipped_pairs, shipped_sentences
from langtrim.runtime.errors import UsageError


def test_weighted_f1_of_a_hand_computed_case() -> None:
    # Sentences 0 and 1 both pick candidate 0, sentences 2 and 3 candidate 2: 0 and 2 are right.
    # Label 0: precision 1/2, recall 1, F1 2/3; label 2 the same; labels 1 and 3: F1 0. Weighted: (2/3 + 2/3) / 4.
    score = bitext_score(np.array([0, 0, 2, 2]))
    assert score.f1 == pytest.approx(100 / 3, abs=1e-3)
    assert score.accuracy == 50.0


def test_every_sentence_finding_its_own_translation_scores_100() -> None:
    assert bitext_score(np.arange(7)) == BitextScore(f1=100.0, accuracy=100.0)


def test_nearest_is_by_cosine_not_by_length() -> None:
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    candidates = np.array([[0.0, 10.0], [0.5, 0.0]])  # the long vector points the other way
    assert nearest(queries, candidates).tolist() == [1, 0]


def test_the_score_is_scikit_learns_weighted_f1() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    for n in (5, 50, 500):
        predicted = np.where(rng.random(n) < 0.6, np.arange(n), rng.integers(0, n, n))
        score = bitext_score(predicted)
        labels = np.arange(n)
        assert score.f1 == pytest.approx(
            100 * f1_score(labels, predicted, average="weighted", zero_division=0)
        )
        assert score.accuracy == pytest.approx(100 * accuracy_score(labels, predicted))


def test_nearest_and_score_match_mtebs_own_bitext_mining() -> None:
    """mteb's evaluator's search (its cosine top-1) and its task's metrics, on the same noisy vectors."""
    from types import SimpleNamespace

    from mteb._evaluators.text.bitext_mining_evaluator import BitextMiningEvaluator
    from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining
    from sentence_transformers.util import cos_sim

    rng = np.random.default_rng(1)
    targets = rng.normal(size=(300, 16)).astype(np.float32)
    queries = targets + rng.normal(scale=1.2, size=targets.shape).astype(np.float32)  # many mistakes
    neighbours = BitextMiningEvaluator._similarity_search(
        None,  # type: ignore[arg-type]  # the method uses neither self nor the model but its similarity
        queries,
        targets,
        SimpleNamespace(similarity=cos_sim),  # type: ignore[arg-type]
    )
    theirs = AbsTaskBitextMining._compute_metrics(
        None,  # type: ignore[arg-type]
        neighbours,
        [(i, i) for i in range(len(queries))],
    )
    predicted = nearest(queries, targets)
    assert predicted.tolist() == [n["corpus_id"] for n in neighbours]
    ours = bitext_score(predicted)
    assert 20 < ours.f1 < 90  # a case with both hits and misses
    assert ours.f1 == pytest.approx(100 * theirs["f1"], abs=1e-3)
    assert ours.accuracy == pytest.approx(100 * theirs["accuracy"], abs=1e-3)


def test_the_sign_test_is_the_binomial_tail() -> None:
    from scipy.stats import binomtest

    for lost, won in ((0, 0), (5, 0), (7, 2), (3, 4), (12, 2), (40, 25)):
        expected = binomtest(lost, lost + won, 0.5, alternative="greater").pvalue if lost + won else 1.0
        assert np.isclose(sign_test(lost, won), expected), (lost, won)


def test_the_gate_fails_a_drop_beyond_its_points_and_beyond_chance_only() -> None:
    original = BitextScore(f1=92.80, accuracy=94.4)
    # 7 translations lost and 2 won of 500: 1 point, which a 1e-4 shift of the int8 scales can cause.
    noisy = BitextScore(f1=91.73, accuracy=93.4)
    assert gate_failure(original, noisy, lost=7, won=2, max_drop=1.0) is None
    # 14 lost and 2 won: chance gives that with p = 0.002.
    worse = BitextScore(f1=90.40, accuracy=91.8)
    failure = gate_failure(original, worse, lost=14, won=2, max_drop=1.0)
    assert (
        failure
        and "2.40 points below the original's 92.80" in failure
        and "14 translations lost, 2 won" in failure
    )
    assert gate_failure(original, worse, lost=14, won=2, max_drop=3.0) is None  # within the gate's points


def test_shipped_pairs_are_aligned_and_share_their_sides_with_the_parity_sentences() -> None:
    assert len(pair_languages()) == 31
    for language in pair_languages():
        sentences, english = shipped_pairs(language) or ([], [])
        assert len(sentences) == len(english) >= 195
    # The overlap docs/coverage.md describes: the French side is the parity text, English its other side.
    french, english = shipped_pairs("fr") or ([], [])
    assert french == shipped_sentences("fr") and english == shipped_sentences("en")
    assert shipped_pairs("en") is None


def test_shipped_pairs_with_english_are_gated_only_with_english_in_the_bundle() -> None:
    with_english = {p.language: p.gated for p in load_pairs(["en", "fr", "de"], {}, ["es"])}
    assert with_english == {"en": True, "fr": True, "de": True, "es": False}
    english, french = load_pairs(["en", "fr"], {}, [])[:2]
    assert (english.sentences, english.targets) == (french.targets, french.sentences)  # the other way
    assert {p.language: p.gated for p in load_pairs(["fr"], {}, [])} == {"fr": False}


def test_eval_pairs_must_be_lang_equals_two_files() -> None:
    with pytest.raises(UsageError, match="is not LANG=SOURCE,TARGET: write it as e.g. --eval-pairs fr="):
        parse_eval_pairs(["fr=only-one.txt"])


def test_eval_pairs_of_unequal_length_name_both_files(tmp_path: Path) -> None:
    source, target = tmp_path / "fr.txt", tmp_path / "en.txt"
    source.write_text("Bonjour.\nMerci.\nAu revoir.\n", encoding="utf-8")
    target.write_text("Hello.\nThanks.\n", encoding="utf-8")
    with pytest.raises(SelectionError, match=r"fr.txt has 3 lines but .*en.txt 2: give aligned files"):
        load_pairs(["fr"], parse_eval_pairs([f"fr={source},{target}"]), [])


def test_eval_pairs_for_a_language_outside_the_bundle_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SelectionError, match="--eval-pairs names es, not a language of the bundle"):
        load_pairs(["fr"], {"es": (tmp_path / "a", tmp_path / "b")}, [])


def test_eval_pairs_that_do_not_exist_are_named(tmp_path: Path) -> None:
    with pytest.raises(
        SelectionError, match=r"--eval-pairs fr=.*: .*missing.txt is not a file: give two text"
    ):
        load_pairs(["fr"], parse_eval_pairs([f"fr={tmp_path / 'missing.txt'},{tmp_path / 'en.txt'}"]), [])


def test_a_language_with_pairs_but_no_sentences_is_measured_on_its_side_of_the_pairs() -> None:
    from langtrim.packager.pack.parity import load_eval_texts

    assert shipped_sentences("it") is None
    found = load_eval_texts(["fr", "it", "xx"], {})
    assert set(found) == {"fr", "it"}  # xx: nothing shipped, "not measured"
    source, sentences = found["it"]
    assert sentences == shipped_pairs("it")[0] and "it side of the Tatoeba pairs" in source  # type: ignore[index]
