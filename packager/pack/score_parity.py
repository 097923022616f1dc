"""Parity of the scoring tasks: pair classifiers (rerankers, NLI) on query/passage sets, and token classifiers
(NER) token by token and span by span, the bundle against its original PyTorch model.

`parity.py` turns a `Measured` into the report's per-language entry, with the same gates as every bundle
(cosine of the probability vectors, unknown-token rate); the figures proper to these tasks are `ScoreParity`:
- pairs: the largest |logit difference|, and whether the bundle ranks each query's passages as the original
  does (Spearman's rank correlation per query, averaged; the share of queries with the same best passage);
- tokens: the largest |logit difference| per token, and the share of texts whose entities (label, start,
  end, as the transformers pipeline's aggregation_strategy="simple" groups them) are the original's.

Query/passage sets, per language (`QuerySet`):
- from translation pairs whose both sides the bundle covers (the shipped Tatoeba pairs with English when the
  bundle keeps English, or the user's `--eval-pairs`): a sentence against its translation and the next
  `PASSAGES_PER_QUERY - 1` sentences' translations, the real retrieval case of a multilingual reranker, with
  one relevant passage, so the report can also say how often each model ranks the translation first;
- else from the language's own sentences: query i against the next `PASSAGES_PER_QUERY` sentences. Parity
  compares the bundle with the original, so it needs no relevance judgement there, and a bundle without
  English gets no English pieces (which it drops) into its figures.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.trim.coverage import Coverage, measure_coverage
from langtrim.packager.trim.tokenizer_remap import IdMap
from langtrim.runtime.encoder import Encoder, class_probabilities, softmax
from langtrim.runtime.entities import group_simple

PASSAGES_PER_QUERY = 5
MAX_QUERIES = 100  # 500 pairs per language: enough for rank figures, quick for a large reranker
_BATCH = 32


@dataclass(frozen=True)
class ScoreParity:
    items: int  # pairs, or tokens
    max_logit_diff: float  # bundle vs original, every item
    max_logit_diff_identical: float | None  # on identically tokenized items only; None if none
    spearman: float | None = None  # pairs: mean over queries of the passages' rank correlation
    top1_agreement: float | None = None  # pairs: share of queries with the same best passage
    queries: int | None = None
    span_agreement: float | None = None  # tokens: share of texts with exactly the original's entities
    # pairs from translations: share of queries whose translation ranks first, by the original and the bundle
    relevant_top1_original: float | None = None
    relevant_top1_bundle: float | None = None


@dataclass(frozen=True)
class QuerySet:
    query: str
    passages: list[str]
    relevant: int | None = None  # the position of the query's translation among the passages, if one is


@dataclass(frozen=True)
class Compared:
    """What every measurement compares: the original PyTorch model, its trim, their tokenizers, the bundle."""

    original_model: Any
    trimmed_model: Any
    original_tokenizer: Tokenizer  # plain: neither pads nor truncates
    trimmed_tokenizer: Tokenizer
    original_cut: Tokenizer  # the same, cutting texts and pairs as the bundle does (`truncating`)
    trimmed_cut: Tokenizer
    encoder: Encoder
    id_map: IdMap


@dataclass(frozen=True)
class Measured:
    """One language's outputs, rows aligned item by item (pairs or tokens), as probabilities."""

    coverage: Coverage
    original: np.ndarray  # [items, labels]
    trimmed: np.ndarray  # the PyTorch trimmed model's
    bundle: np.ndarray
    trim_max_abs_diff: float | None  # logits, trimmed vs original PyTorch model, identically tokenized items
    scores: ScoreParity


def within_language_sets(sentences: Sequence[str]) -> list[QuerySet]:
    """Query i with the next PASSAGES_PER_QUERY sentences (wrapping around), for up to MAX_QUERIES queries."""
    n = len(sentences)
    count = min(MAX_QUERIES, n) if n > PASSAGES_PER_QUERY else 0
    return [
        QuerySet(sentences[i], [sentences[(i + k) % n] for k in range(1, PASSAGES_PER_QUERY + 1)])
        for i in range(count)
    ]


def translation_sets(queries: Sequence[str], translations: Sequence[str]) -> list[QuerySet]:
    """Query i against its translation and the next PASSAGES_PER_QUERY - 1 translations (wrapping around),
    for up to MAX_QUERIES queries; the translation sits at position i mod PASSAGES_PER_QUERY, so no position
    is favoured by a model whose scores lean on it."""
    n = len(queries)
    count = min(MAX_QUERIES, n) if n >= PASSAGES_PER_QUERY else 0
    sets = []
    for i in range(count):
        others = [translations[(i + k) % n] for k in range(1, PASSAGES_PER_QUERY)]
        at = i % PASSAGES_PER_QUERY
        sets.append(QuerySet(queries[i], [*others[:at], translations[i], *others[at:]], relevant=at))
    return sets


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two score lists (no ties expected in float scores); 1.0 for constant lists."""
    ranks_a, ranks_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if np.all(ranks_a == ranks_b):
        return 1.0
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def padded_batch(batch: Sequence[Any], pad_id: int, id_map: IdMap | None = None):
    """Torch tensors (ids, token types, attention mask) of encodings padded on the right to the longest;
    `id_map`: the encodings' original ids mapped to the trimmed model's."""
    import torch

    longest = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, e in enumerate(batch):
        ids[row, : len(e.ids)] = torch.tensor(e.ids if id_map is None else id_map.to_new(e.ids))
        types[row, : len(e.ids)] = torch.tensor(e.type_ids)
        mask[row, : len(e.ids)] = 1
    return ids, types, mask


def _logits(
    model: Any, encodings: Sequence[Any], pad_id: int, id_map: IdMap | None = None
) -> list[np.ndarray]:
    """A PyTorch model's logits per encoding ([labels] or [tokens, labels]), fed its token types when it
    takes them; `id_map`: the encodings' original ids mapped to the trimmed model's."""
    import inspect

    import torch

    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters
    out: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(encodings), _BATCH):
            batch = encodings[start : start + _BATCH]
            ids, types, mask = padded_batch(batch, pad_id, id_map)
            extra = {"token_type_ids": types} if takes_types else {}
            logits = model(input_ids=ids, attention_mask=mask, **extra).logits.numpy()
            out += [
                logits[row] if logits.ndim == 2 else logits[row, : len(e.ids)] for row, e in enumerate(batch)
            ]
    return out


def _identical(original: Sequence[Any], trimmed: Sequence[Any], id_map: IdMap) -> list[bool]:
    return [
        bool(id_map.is_kept(a.ids).all()) and list(id_map.to_new(a.ids)) == b.ids
        for a, b in zip(original, trimmed, strict=True)
    ]


def _max_diff(
    a: Sequence[np.ndarray], b: Sequence[np.ndarray], which: Sequence[bool] | None = None
) -> float | None:
    diffs = [
        float(np.abs(x - y).max())
        for i, (x, y) in enumerate(zip(a, b, strict=True))
        if which is None or which[i]
    ]
    return max(diffs, default=None)


def measure_pairs(language: str, sets: Sequence[QuerySet], compared: Compared) -> Measured:
    """A pair bundle on one language's query/passage sets, each tokenizer cutting pairs as the bundle does."""
    c = compared
    pairs = [(s.query, passage) for s in sets for passage in s.passages]
    texts = sorted({text for pair in pairs for text in pair})
    coverage = measure_coverage(language, texts, c.original_tokenizer, c.trimmed_tokenizer, c.id_map)
    encoded = [cut.encode_batch(pairs) for cut in (c.original_cut, c.trimmed_cut)]
    original = np.stack(_logits(c.original_model, encoded[0], _pad_id(c.original_model)))
    trimmed = np.stack(_logits(c.trimmed_model, encoded[1], _pad_id(c.trimmed_model)))
    bundle = c.encoder.probabilities(pairs, raw_scores=True)
    identical = _identical(encoded[0], encoded[1], c.id_map)
    reranker = original.shape[1] == 1
    # One row per query, its passages' scores: a reranker's one logit, else the last label's.
    original_scores, bundle_scores = (
        logits[:, 0 if reranker else -1].reshape(len(sets), PASSAGES_PER_QUERY)
        for logits in (original, bundle)
    )
    best_original, best_bundle = original_scores.argmax(1), bundle_scores.argmax(1)
    relevant = [s.relevant for s in sets]
    # Only a reranker's score means relevance (an NLI classifier's labels say entailment), and only
    # translation sets have a relevant passage.
    found = reranker and bool(sets) and None not in relevant
    scores = ScoreParity(
        items=len(pairs),
        max_logit_diff=float(np.abs(bundle - original).max()),
        max_logit_diff_identical=_max_diff(list(bundle), list(original), identical),
        spearman=float(
            np.mean([spearman(b, o) for b, o in zip(bundle_scores, original_scores, strict=True)])
        ),
        top1_agreement=float(np.mean(best_bundle == best_original)),
        queries=len(sets),
        relevant_top1_original=float(np.mean(best_original == relevant)) if found else None,
        relevant_top1_bundle=float(np.mean(best_bundle == relevant)) if found else None,
    )
    return Measured(
        coverage=coverage,
        original=_two_class(class_probabilities(original)),
        trimmed=_two_class(class_probabilities(trimmed)),
        bundle=_two_class(class_probabilities(bundle)),
        trim_max_abs_diff=_max_diff(list(original), list(trimmed), identical),
        scores=scores,
    )


def measure_tokens(language: str, sentences: Sequence[str], compared: Compared) -> Measured:
    """A token-classification bundle on one language's sentences: token probabilities on the original's
    tokens (the bundle fed the remapped original ids, so rows align), and entities by each one's own path."""
    c = compared
    manifest = c.encoder.manifest
    coverage = measure_coverage(
        language, list(sentences), c.original_tokenizer, c.trimmed_tokenizer, c.id_map
    )
    encoded = [cut.encode_batch(list(sentences)) for cut in (c.original_cut, c.trimmed_cut)]
    original = _logits(c.original_model, encoded[0], _pad_id(c.original_model))
    # The trimmed model and the bundle read the original's tokens mapped to new ids (a dropped piece becomes
    # the unknown token), so their rows align with the original's token by token.
    trimmed = _logits(c.trimmed_model, encoded[0], _pad_id(c.trimmed_model), c.id_map)
    bundle = c.encoder.token_logits([c.id_map.to_new(e.ids) for e in encoded[0]])
    identical = _identical(encoded[0], encoded[1], c.id_map)
    labels = manifest.labels
    expected = [
        [(e.label, e.start, e.end) for e in group_simple(text, encoding, softmax(logits), labels)]
        for text, encoding, logits in zip(sentences, encoded[0], original, strict=True)
    ]
    found = [[(e.label, e.start, e.end) for e in spans] for spans in c.encoder.entities(list(sentences))]
    scores = ScoreParity(
        items=sum(len(rows) for rows in original),
        max_logit_diff=_max_diff(bundle, original) or 0.0,
        max_logit_diff_identical=_max_diff(bundle, original, identical),
        span_agreement=float(np.mean([a == b for a, b in zip(expected, found, strict=True)])),
    )
    return Measured(
        coverage=coverage,
        original=softmax(np.concatenate(original)),
        trimmed=softmax(np.concatenate(trimmed)),
        bundle=softmax(np.concatenate(bundle)),
        trim_max_abs_diff=_max_diff(original, trimmed, identical),
        scores=scores,
    )


def _pad_id(model: Any) -> int:
    return int(model.config.pad_token_id or 0)


def _two_class(probabilities: np.ndarray) -> np.ndarray:
    """A reranker's relevance p as the vector [p, 1 - p], so its cosines compare like a classifier's."""
    return (
        np.concatenate([probabilities, 1 - probabilities], axis=1)
        if probabilities.shape[1] == 1
        else probabilities
    )
