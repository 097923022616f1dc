"""Parity report: how far a bundle is from its original PyTorch model, per language, on real text.

Trimming and quantization change different things, so the report tells them apart:
- coverage: does the trimmed tokenizer reproduce the original tokenization?
- trim effect: PyTorch trimmed model vs the original (exactly 0 on identically tokenized sentences);
- export effect: the bundle (ONNX, maybe quantized) vs the PyTorch trimmed model;
- end to end: the bundle vs the original, the figure users care about and the one the gates read.
The PyTorch trimmed model is rebuilt in memory from the original and the bundle's id map, so a report can
be recomputed for any bundle from its source model alone.
"""

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.counting.inputs import iter_lines
from langtrim.packager.errors import ParityError, SelectionError
from langtrim.packager.models.tokenizer import truncating, unpadded
from langtrim.packager.pack import bitext
from langtrim.packager.pack.score_parity import (
    PASSAGES_PER_QUERY,
    Compared,
    Measured,
    QuerySet,
    ScoreParity,
    measure_pairs,
    measure_tokens,
    padded_batch,
    translation_sets,
    within_language_sets,
)
from langtrim.packager.shipped_text import TATOEBA_CREDIT, shipped_pairs, shipped_sentences
from langtrim.packager.trim.coverage import Coverage, measure_coverage
from langtrim.packager.trim.tokenizer_remap import IdMap
from langtrim.runtime.bundle import FEATURE_EXTRACTION, TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION

PARITY_FORMAT = 1
_BATCH = 32


@dataclass(frozen=True)
class Gates:
    """Thresholds a bundle must meet per measured language (end to end, bundle vs original)."""

    min_mean_cosine: float = 0.99
    min_p1_cosine: float = 0.95  # the 1st percentile: the worst sentences but one in a hundred
    max_unk_rate: float = 0.01
    max_retrieval_drop: float = 1.0  # bitext-mining F1 points, original minus bundle (bitext.py)
    # Pair and token classifiers (score_parity.py). An int8 reranker's logits move by a few hundredths, far
    # less than a relevant passage's lead, but distractors scored alike may swap: the rank correlation of
    # five passages is 0.9 after one swap of neighbours, hence a lower bound for it than for the best passage.
    min_rank_correlation: float = 0.8  # mean Spearman of each query's passages
    min_top1_agreement: float = 0.9  # share of queries with the original's best passage
    min_span_agreement: float = 0.9  # share of texts with exactly the original's entities

    def check(self) -> "Gates":
        for name, value in asdict(self).items():
            top = 100.0 if name == "max_retrieval_drop" else 1.0  # F1 points, the others shares
            if not 0.0 <= value <= top or math.isnan(value):
                raise SelectionError(
                    f"parity gate {name}={value} is out of range: give a number between 0 and {top:g}"
                )
        return self


@dataclass(frozen=True)
class CosineStats:
    mean: float
    min: float
    p1: float  # 1st percentile

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> "CosineStats":
        cosines = np.sum(_unit(a) * _unit(b), axis=1)
        return cls(float(cosines.mean()), float(cosines.min()), float(np.percentile(cosines, 1)))


@dataclass(frozen=True)
class LanguageParity:
    language: str
    text_source: str
    coverage: Coverage
    trim_max_abs_diff: float | None  # last hidden states, identically tokenized sentences; None if none
    trim_cosine: CosineStats
    export_cosine: CosineStats
    end_to_end_cosine: CosineStats
    label_agreement: float | None = None  # classifiers: share of same argmax, bundle vs original
    max_probability_diff: float | None = None
    failures: list[str] = field(default_factory=list)
    # pair and token classifiers: logit differences, rank and span agreement
    scores: ScoreParity | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class ParityReport:
    source_model: str
    gates: Gates
    languages: list[LanguageParity]
    not_measured: list[str]  # languages with no evaluation text
    prompt: str  # prefix added to every sentence (e5's "query: "), or ""
    format: int = PARITY_FORMAT
    retrieval: list[bitext.RetrievalParity] = field(default_factory=list)  # bitext mining, see bitext.py

    @property
    def passed(self) -> bool:
        return all(language.passed for language in self.languages) and not any(
            row.failures for row in self.retrieval
        )

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "passed": self.passed}, indent=2, ensure_ascii=False)

    def summary(self) -> dict[str, Any]:
        """What the manifest keeps of the report."""
        return {
            "passed": self.passed,
            "gates": asdict(self.gates),
            "not_measured": self.not_measured,
            "languages": {
                p.language: {
                    "identical_tokenization": round(p.coverage.identical_share, 4),
                    "unk_rate": round(p.coverage.unk_rate, 5),
                    "cosine_mean": round(p.end_to_end_cosine.mean, 5),
                    "cosine_p1": round(p.end_to_end_cosine.p1, 5),
                    "cosine_min": round(p.end_to_end_cosine.min, 5),
                    "passed": p.passed,
                    **({"scores": asdict(p.scores)} if p.scores is not None else {}),
                }
                for p in self.languages
            },
            "retrieval": bitext.summary(self.retrieval),
        }


class GateFailure(ParityError):
    """A bundle missed a parity gate; `report` says which language and which figure."""

    def __init__(self, report: ParityReport) -> None:
        failed = [*report.languages, *report.retrieval]
        missed = "; ".join(f"{p.language}: {', '.join(p.failures)}" for p in failed if p.failures)
        super().__init__(
            f"parity gate missed ({missed}): no bundle written; keep more tokens (--corpus, lower --threshold), "
            "quantize less (--quantize-embeddings fp32, --quantize none), or pass --allow-parity-failure"
        )
        self.report = report


def write_parity(bundle_dir: Path, report: ParityReport) -> None:
    """parity.json in the bundle, and its summary in the manifest (files re-hashed)."""
    from langtrim.runtime.bundle import PARITY_FILE, record_parity

    (bundle_dir / PARITY_FILE).write_text(report.to_json(), encoding="utf-8")
    record_parity(bundle_dir, report.summary())


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _pool(hidden, mask, pooling: str):  # torch tensors [b, s, d], [b, s]
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask[..., None].to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _torch_outputs(model, cut: Tokenizer, texts: Sequence[str], pooling: str, classifier: bool):
    """Pooled vectors (classifiers: logits) and per-sentence last hidden states of a PyTorch model, in
    batches; `cut` is the model's tokenizer cutting texts as the bundle does (`truncating`)."""
    import torch

    pad_id = int(model.config.pad_token_id or 0)
    pooled, hidden_states = [], []
    encoder = model if classifier else model.base_model  # skip a masked-LM head's vocabulary-sized logits
    with torch.no_grad():
        for start in range(0, len(texts), _BATCH):
            encodings = cut.encode_batch(list(texts[start : start + _BATCH]))
            ids, _, mask = padded_batch(encodings, pad_id)
            output = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            last = output.hidden_states[-1]
            pooled.append((output.logits if classifier else _pool(last, mask, pooling)).numpy())
            hidden_states += [last[i, : len(encodings[i].ids)].numpy() for i in range(len(encodings))]
    return np.concatenate(pooled), hidden_states


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def load_eval_texts(
    languages: Sequence[str], eval_texts: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, list[str]]]:
    """Per language: (description, sentences), from `--eval-text LANG=PATH` (any input `langtrim count`
    reads) or else the shipped Tatoeba sentences."""
    unknown = set(eval_texts) - set(languages)
    if unknown:
        raise SelectionError(
            f"--eval-text names {', '.join(sorted(unknown))}, not a language of the bundle ({', '.join(languages)})"
        )
    found: dict[str, tuple[str, list[str]]] = {}
    for language in languages:
        if language in eval_texts:
            lines = [line for line in iter_lines(eval_texts[language]) if line.strip()]
            where = ", ".join(map(str, eval_texts[language]))
            if not lines:
                raise SelectionError(
                    f"--eval-text {language}={where} holds no text: give real sentences, one a line"
                )
            found[language] = (f"{where} ({len(lines)} lines)", lines)
        elif sentences := shipped_sentences(language):
            found[language] = (
                f"Tatoeba sentences shipped with langtrim, {TATOEBA_CREDIT} ({len(sentences)})",
                sentences,
            )
        elif pairs := shipped_pairs(language):
            found[language] = (
                f"the {language} side of the Tatoeba pairs shipped with langtrim, {TATOEBA_CREDIT} "
                f"({len(pairs[0])})",
                pairs[0],
            )
    return found


def pair_sets(
    texts_by_language: Mapping[str, tuple[str, list[str]]],
    pairs: Sequence[bitext.BitextPairs],
    user_texts: Collection[str],
    user_pairs: Collection[str],
) -> dict[str, tuple[str, list[QuerySet]]]:
    """Per language, a pair classifier's query/passage sets and where they come from, the user's first:
    --eval-pairs, then --eval-text (its sentences against each other), then the shipped translation pairs
    when the bundle covers both sides (score_parity.py), then the shipped sentences against each other."""
    translated = {row.language: row for row in pairs if row.gated}
    found = {}
    for language in dict.fromkeys([*texts_by_language, *translated]):
        use_pairs = language in user_pairs or language not in user_texts
        row = translated.get(language) if use_pairs else None
        if row is not None:
            where = f"{row.text_source}: each sentence against its translation and {PASSAGES_PER_QUERY - 1} others"
            found[language] = (where, translation_sets(row.sentences, row.targets))
        else:
            where, sentences = texts_by_language[language]
            found[language] = (where, within_language_sets(sentences))
    return found


def measure_parity(
    bundle_dir: Path,
    original_dir: Path,
    *,
    source_model: str,
    eval_texts: Mapping[str, Sequence[str]] | None = None,
    gates: Gates = Gates(),
    eval_pairs: Mapping[str, tuple[Path, Path]] | None = None,
    probes: Sequence[str] = bitext.DEFAULT_PROBES,
) -> ParityReport:
    """Compare the bundle with its original PyTorch model on real sentences of each of its languages, and
    on bitext mining (`eval_pairs`, else the shipped pairs) of them and of the `probes` outside it."""
    import copy

    from langtrim.packager.models.sources import ModelSource, load_model
    from langtrim.packager.trim.surgery import trim_model
    from langtrim.runtime import Encoder
    from langtrim.runtime.bundle import ID_MAP_FILE, read_manifest

    gates.check()
    manifest = read_manifest(bundle_dir, verify="size")
    # Read the pairs first: a bad --eval-pairs fails before the models load.
    pairs = bitext.load_pairs(list(manifest.languages), dict(eval_pairs or {}), probes)
    id_map = IdMap.from_json((bundle_dir / ID_MAP_FILE).read_text(encoding="utf-8"))
    # Plain once (no padding, no truncation): every later comparison then uses them without a copy.
    original_tokenizer = unpadded(Tokenizer.from_file(str(original_dir / "tokenizer.json")))
    trimmed_tokenizer = unpadded(Tokenizer.from_file(str(bundle_dir / "tokenizer.json")))
    original = load_model(ModelSource(original_dir, source_model, "", is_default=False))
    trimmed = trim_model(copy.deepcopy(original), id_map)
    encoder = Encoder(bundle_dir, verify="none")
    prompt = next(iter(manifest.prompts.values()), "")
    texts_by_language = load_eval_texts(list(manifest.languages), dict(eval_texts or {}))
    pooling, max_length = manifest.pooling, manifest.max_length
    classifier = manifest.task == TEXT_CLASSIFICATION
    strategy = manifest.pair_truncation or "longest_first"
    compared = Compared(
        original,
        trimmed,
        original_tokenizer,
        trimmed_tokenizer,
        truncating(original_tokenizer, max_length, strategy),
        truncating(trimmed_tokenizer, max_length, strategy),
        encoder,
        id_map,
    )

    seen: tuple[dict, dict] = ({}, {})  # prompted text -> its vector (original, bundle), for bitext mining
    results = []
    pair_task = manifest.pair_truncation is not None
    if pair_task:
        sets_by_language = pair_sets(texts_by_language, pairs, eval_texts or {}, eval_pairs or {})
        for language, (text_source, sets) in sets_by_language.items():
            results.append(_scored(language, text_source, measure_pairs(language, sets, compared), gates))
    for language, (text_source, sentences) in ({} if pair_task else texts_by_language).items():
        if manifest.task == TOKEN_CLASSIFICATION:
            results.append(
                _scored(language, text_source, measure_tokens(language, sentences, compared), gates)
            )
            continue
        texts = [prompt + sentence for sentence in sentences]
        coverage = measure_coverage(language, texts, original_tokenizer, trimmed_tokenizer, id_map)
        original_out, original_hidden = _torch_outputs(
            original, compared.original_cut, texts, pooling, classifier
        )
        trimmed_out, trimmed_hidden = _torch_outputs(
            trimmed, compared.trimmed_cut, texts, pooling, classifier
        )
        if classifier:
            bundle_out = encoder.probabilities(texts)
            original_probabilities = _softmax(original_out)
        else:
            bundle_out = encoder.embed(texts, normalize=False)
            seen[0].update(zip(texts, original_out, strict=True))
            seen[1].update(zip(texts, bundle_out, strict=True))
        identical = [
            i
            for i, (a, b) in enumerate(zip(original_hidden, trimmed_hidden, strict=True))
            if a.shape == b.shape
            and id_map.is_kept(original_tokenizer.encode(texts[i]).ids[:max_length]).all()
        ]
        trim_diff = max(
            (float(np.abs(original_hidden[i] - trimmed_hidden[i]).max()) for i in identical), default=None
        )
        comparable = (
            (original_probabilities, _softmax(trimmed_out)) if classifier else (original_out, trimmed_out)
        )
        end_to_end = CosineStats.of(bundle_out, comparable[0])
        failures = _failures(end_to_end, coverage, gates)
        results.append(
            LanguageParity(
                language=language,
                text_source=text_source,
                coverage=coverage,
                trim_max_abs_diff=trim_diff,
                trim_cosine=CosineStats.of(*comparable[::-1]),
                export_cosine=CosineStats.of(bundle_out, comparable[1]),
                end_to_end_cosine=end_to_end,
                label_agreement=float(np.mean(bundle_out.argmax(1) == original_out.argmax(1)))
                if classifier
                else None,
                max_probability_diff=float(np.abs(bundle_out - comparable[0]).max()) if classifier else None,
                failures=failures,
            )
        )
    retrieval = (
        []
        if manifest.task != FEATURE_EXTRACTION
        else bitext.measure_retrieval(
            pairs,
            manifest.languages,
            embed_original=bitext.memoized(
                lambda t: _torch_outputs(original, compared.original_cut, t, pooling, False)[0],
                prompt,
                seen[0],
            ),
            embed_bundle=bitext.memoized(lambda t: encoder.embed(t, normalize=False), prompt, seen[1]),
            coverage=(original_tokenizer, trimmed_tokenizer, id_map, encoder),
            max_drop=gates.max_retrieval_drop,
        )
    )
    return ParityReport(
        source_model=source_model,
        gates=gates,
        languages=results,
        not_measured=[
            language for language in manifest.languages if language not in {p.language for p in results}
        ],
        prompt=prompt,
        retrieval=retrieval,
    )


def _scored(language: str, text_source: str, measured: Measured, gates: Gates) -> LanguageParity:
    """A pair or token classifier's entry: cosines of the probability vectors of its items (pairs, tokens),
    gated as every classifier's, with the task's own figures in `scores`."""
    end_to_end = CosineStats.of(measured.bundle, measured.original)
    failures = _failures(end_to_end, measured.coverage, gates) + _score_failures(measured.scores, gates)
    return LanguageParity(
        language=language,
        text_source=text_source,
        coverage=measured.coverage,
        trim_max_abs_diff=measured.trim_max_abs_diff,
        trim_cosine=CosineStats.of(measured.trimmed, measured.original),
        export_cosine=CosineStats.of(measured.bundle, measured.trimmed),
        end_to_end_cosine=end_to_end,
        label_agreement=float(np.mean(measured.bundle.argmax(1) == measured.original.argmax(1))),
        max_probability_diff=float(np.abs(measured.bundle - measured.original).max()),
        failures=failures,
        scores=measured.scores,
    )


def _failures(end_to_end: CosineStats, coverage: Coverage, gates: Gates) -> list[str]:
    failures = []
    if end_to_end.mean < gates.min_mean_cosine:
        failures.append(f"mean cosine {end_to_end.mean:.4f} < {gates.min_mean_cosine}")
    if end_to_end.p1 < gates.min_p1_cosine:
        failures.append(f"1st-percentile cosine {end_to_end.p1:.4f} < {gates.min_p1_cosine}")
    if coverage.unk_rate > gates.max_unk_rate:
        failures.append(f"unknown-token rate {coverage.unk_rate:.4f} > {gates.max_unk_rate}")
    return failures


def _score_failures(scores: ScoreParity, gates: Gates) -> list[str]:
    bounds = (
        ("rank correlation", scores.spearman, gates.min_rank_correlation),
        ("top-1 agreement", scores.top1_agreement, gates.min_top1_agreement),
        ("same-entities share", scores.span_agreement, gates.min_span_agreement),
    )
    return [
        f"{name} {value:.4f} < {bound}"
        for name, value, bound in bounds
        if value is not None and value < bound
    ]
