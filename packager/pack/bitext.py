"""Retrieval parity: does search still work? Bitext mining as MTEB defines it, bundle vs original.

MTEB's Tatoeba task: for each sentence of one language, its nearest neighbour by cosine among all the
sentences of the other side must be its own translation. The score is scikit-learn's weighted F1 of the
predicted against the true indices (MTEB's main score; accuracy alongside); with one true sentence per
index it is (1/n) x the sum, over the sentences found, of 2 / (1 + how many sentences picked that one).
Cosine parity says how close two vectors are; this says whether the closeness still ranks the right
answer first, the figure a user can read as "will my search still work".

Each row embeds both sides with the original and with the bundle (the model's prompt before every text, as
MTEB does with e5's "query: "), so a drop is the bundle's doing. Shipped pairs are with English: a row of a
bundle language is gated only when English is in the bundle too (else the English side is text the bundle
was not trimmed for), and English's own row searches the other way (English queries) on the first bundle
language's pairs; a user's `--eval-pairs` are gated as given. Rows of languages outside the bundle are
never gated: they show what happens to text the bundle does not cover.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.counting.inputs import iter_lines
from langtrim.packager.errors import SelectionError
from langtrim.packager.shipped_text import PIVOT, TATOEBA_CREDIT, shipped_pairs
from langtrim.packager.trim.coverage import measure_coverage
from langtrim.packager.trim.tokenizer_remap import IdMap
from langtrim.runtime.errors import UsageError

if TYPE_CHECKING:  # the runtime's Encoder pulls in onnxruntime, which `langtrim --help` must not wait for
    from langtrim.runtime.encoder import Encoder

# Languages outside the bundle whose rows the report shows by default: one more of the Latin script and two
# of other scripts, each a language the default model was trained on.
DEFAULT_PROBES = ("es", "ru", "zh")
# Pairs per probe row: enough to show a cliff, few enough to keep a pack quick. Rows of fewer pairs score
# higher (fewer wrong candidates), so compare a probe's bundle F1 with its own original F1, not another row.
PROBE_PAIRS = 100
# A gated row fails when its F1 drop passes the gate *and* chance: any change to the vectors, even a
# 1e-4 relative shift of the int8 scales (or another CPU's float kernels at pack time), moves a few of
# 500 sentences to another neighbour, in either direction, and so F1 by up to ~1 point. A drop counts
# when the bundle loses a translation the original found significantly more often than the other way
# round (one-sided sign test over the sentences whose outcome changed).
SIGNIFICANCE = 0.05

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> vectors [n, dim]


@dataclass(frozen=True)
class BitextPairs:
    language: str
    text_source: str
    sentences: list[str]  # the language's side (the queries)
    targets: list[str]  # their translations, in order (the candidates)
    gated: bool  # a bundle language whose target side the bundle covers too


@dataclass(frozen=True)
class BitextScore:
    f1: float  # MTEB's weighted F1, in points (0-100)
    accuracy: float  # share of sentences whose nearest neighbour is their translation, in points


@dataclass(frozen=True)
class RetrievalParity:
    language: str
    in_bundle: bool
    gated: bool
    text_source: str
    pairs: int
    original: BitextScore
    bundle: BitextScore
    f1_drop: float  # original F1 minus bundle F1, in points (negative: the bundle scored higher)
    # What the bundle makes of the language's side: the trimmed tokenizer's unknown-token rate, the share
    # of sentences it splits as the original does, the share the serve-time coverage check flags.
    unk_rate: float
    identical_share: float
    flagged_share: float
    failures: list[str] = field(default_factory=list)
    # Sentences whose translation the original found and the bundle missed (lost), the other way (won),
    # and the chance of losing at least that many of lost + won by coin flips (the gate's sign test).
    lost: int = 0
    won: int = 0
    p_value: float = 1.0


def nearest(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """For each query [n, dim], the index of the candidate [m, dim] with the highest cosine (first on ties)."""
    similarity = _unit(queries) @ _unit(candidates).T
    return np.asarray(similarity.argmax(axis=1))


def sign_test(lost: int, won: int) -> float:
    """One-sided sign test: the probability that at least `lost` of `lost + won` fair coin flips come up
    "lost", i.e. how likely the bundle's net loss is when a change of neighbour is equally likely either way."""
    changed = lost + won
    return sum(math.comb(changed, k) for k in range(lost, changed + 1)) / 2**changed


def gate_failure(
    original: BitextScore, bundle: BitextScore, lost: int, won: int, max_drop: float
) -> str | None:
    """Why a gated row fails, or None: its F1 drop is over `max_drop` points and beyond chance (SIGNIFICANCE)
    given the `lost` and `won` translations."""
    drop = round(original.f1 - bundle.f1, 4)
    p_value = sign_test(lost, won)
    if drop <= max_drop or p_value >= SIGNIFICANCE:
        return None
    return (
        f"retrieval F1 {bundle.f1:.2f} is {drop:.2f} points below the original's {original.f1:.2f} "
        f"(at most {max_drop:g}; {lost} translations lost, {won} won, p={p_value:.2g})"
    )


def bitext_score(predicted: np.ndarray) -> BitextScore:
    """MTEB's scores of nearest-neighbour indices, sentence i's true neighbour being i.

    scikit-learn's weighted F1 over the labels 0..n-1 (each has support 1, so weight 1/n): label i's
    precision is 1/(how many picked i) when i picked itself, its recall 1 or 0.
    """
    n = len(predicted)
    hits = predicted == np.arange(n)
    picked = np.bincount(predicted, minlength=n)  # how many sentences chose each candidate
    f1 = np.where(hits, 2.0 / (1.0 + picked[np.arange(n)]), 0.0).sum() / n
    return BitextScore(f1=round(100 * float(f1), 4), accuracy=round(100 * float(hits.mean()), 4))


def parse_eval_pairs(values: Sequence[str]) -> dict[str, tuple[Path, Path]]:
    """`LANG=SOURCE,TARGET` options: LANG's sentences and their translations, one a line, aligned."""
    found: dict[str, tuple[Path, Path]] = {}
    for value in values:
        language, sep, paths = value.partition("=")
        files = [part.strip() for part in paths.split(",")]
        if not sep or not language.strip() or len(files) != 2 or not all(files):
            raise UsageError(
                f"--eval-pairs {value!r} is not LANG=SOURCE,TARGET: write it as e.g. "
                "--eval-pairs fr=pairs/fr.txt,pairs/en.txt (line i of TARGET translates line i of SOURCE)"
            )
        found[language.strip().lower()] = (Path(files[0]).expanduser(), Path(files[1]).expanduser())
    return found


def load_pairs(
    languages: Sequence[str],
    eval_pairs: Mapping[str, tuple[Path, Path]],
    probes: Sequence[str] = DEFAULT_PROBES,
) -> list[BitextPairs]:
    """The bundle languages' pairs (the user's, else the shipped ones), then the probes outside the bundle."""
    unknown = set(eval_pairs) - set(languages)
    if unknown:
        raise SelectionError(
            f"--eval-pairs names {', '.join(sorted(unknown))}, not a language of the bundle "
            f"({', '.join(languages)})"
        )
    found, shipped_rows = [], []
    for language in languages:
        if language in eval_pairs:
            found.append(_user_pairs(language, *eval_pairs[language]))
        elif (shipped := shipped_pairs(language)) is not None:
            source = f"Tatoeba pairs with English shipped with langtrim, {TATOEBA_CREDIT}"
            sentences, targets = shipped
            found.append(BitextPairs(language, source, sentences, targets, gated=PIVOT in languages))
            shipped_rows.append(found[-1])
    if PIVOT in languages and PIVOT not in eval_pairs and shipped_rows:
        # English has no pairs of its own: its row is the other direction of the first bundle language's
        # shipped pairs (English queries, that language's candidates), whose vectors are computed anyway.
        other = shipped_rows[0]
        source = f"the English side of the {other.language} pairs as queries, {TATOEBA_CREDIT}"
        found.insert(0, BitextPairs(PIVOT, source, other.targets, other.sentences, gated=True))
    for language in probes:
        if language not in languages and (shipped := shipped_pairs(language)) is not None:
            source = f"Tatoeba pairs with English shipped with langtrim (the first {PROBE_PAIRS}), {TATOEBA_CREDIT}"
            sentences, targets = (side[:PROBE_PAIRS] for side in shipped)
            found.append(BitextPairs(language, source, sentences, targets, gated=False))
    return found


def _user_pairs(language: str, source: Path, target: Path) -> BitextPairs:
    where = f"--eval-pairs {language}={source},{target}"
    for path in (source, target):
        if not path.is_file():
            raise SelectionError(f"{where}: {path} is not a file: give two text files, one sentence a line")
    sides = [list(iter_lines([str(path)])) for path in (source, target)]
    if len(sides[0]) != len(sides[1]):
        raise SelectionError(
            f"{where}: {source} has {len(sides[0])} lines but {target} {len(sides[1])}: give aligned files, "
            "line i of one the translation of line i of the other"
        )
    kept = [(a, b) for a, b in zip(*sides, strict=True) if a.strip() and b.strip()]
    if len(kept) < 2:
        raise SelectionError(f"{where} holds {len(kept)} pairs: give at least two, one a line")
    return BitextPairs(
        language,
        f"{source}, {target} ({len(kept)} pairs)",
        [a for a, _ in kept],
        [b for _, b in kept],
        gated=True,
    )


def memoized(embed: Embed, prompt: str, seen: dict[str, np.ndarray]) -> Embed:
    """`embed` of the prompted texts, reusing the vectors in `seen` (prompted text -> vector) and adding to it:
    the shipped pairs' sides are mostly the sentences the cosine rows embedded already."""

    def run(texts: Sequence[str]) -> np.ndarray:
        prompted = [prompt + text for text in texts]
        missing = list(dict.fromkeys(text for text in prompted if text not in seen))
        if missing:
            seen.update(zip(missing, embed(missing), strict=True))
        return np.stack([seen[text] for text in prompted])

    return run


def measure_retrieval(
    pairs: Sequence[BitextPairs],
    in_bundle: Sequence[str],
    *,
    embed_original: Embed,
    embed_bundle: Embed,
    coverage: tuple[Tokenizer, Tokenizer, IdMap, "Encoder"],
    max_drop: float,
) -> list[RetrievalParity]:
    """One row per language: bitext-mining scores of the original and of the bundle on the same pairs, and
    what the bundle makes of the language's side. `coverage` is (original tokenizer, trimmed tokenizer, id
    map, the bundle's Encoder); a gated row dropping more than `max_drop` F1 points fails."""
    original_tokenizer, trimmed_tokenizer, id_map, encoder = coverage
    rows = []
    for item in pairs:
        found = [
            nearest(embed(item.sentences), embed(item.targets)) for embed in (embed_original, embed_bundle)
        ]
        original, bundle = (bitext_score(predicted) for predicted in found)
        drop = round(original.f1 - bundle.f1, 4)
        hit_original, hit_bundle = (predicted == np.arange(len(predicted)) for predicted in found)
        lost, won = int((hit_original & ~hit_bundle).sum()), int((~hit_original & hit_bundle).sum())
        p_value = sign_test(lost, won)
        split = measure_coverage(item.language, item.sentences, original_tokenizer, trimmed_tokenizer, id_map)
        flagged = float(np.mean([not record.covered for record in encoder.coverage(item.sentences)]))
        failure = gate_failure(original, bundle, lost, won, max_drop) if item.gated else None
        failures = [failure] if failure else []
        rows.append(
            RetrievalParity(
                language=item.language,
                in_bundle=item.language in in_bundle,
                gated=item.gated,
                text_source=item.text_source,
                pairs=len(item.sentences),
                original=original,
                bundle=bundle,
                f1_drop=drop,
                unk_rate=split.unk_rate,
                identical_share=split.identical_share,
                flagged_share=flagged,
                failures=failures,
                lost=lost,
                won=won,
                p_value=round(p_value, 4),
            )
        )
    return rows


def summary(rows: Sequence[RetrievalParity]) -> dict[str, dict[str, object]]:
    """What the manifest keeps of the rows, by language."""
    return {
        row.language: {
            "in_bundle": row.in_bundle,
            "gated": row.gated,
            "pairs": row.pairs,
            "f1_original": row.original.f1,
            "f1_bundle": row.bundle.f1,
            "unk_rate": round(row.unk_rate, 5),
            "flagged_share": round(row.flagged_share, 4),
            "passed": not row.failures,
        }
        for row in rows
    }


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
