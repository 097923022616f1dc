"""Coverage on real text: how often the trimmed tokenizer reproduces the original tokenization exactly."""

from dataclasses import dataclass

from tokenizers import Tokenizer

from langtrim.packager.models.tokenizer import unpadded
from langtrim.packager.trim.tokenizer_remap import IdMap


@dataclass(frozen=True)
class Coverage:
    language: str
    n_sentences: int
    identical_share: float  # sentences whose trimmed tokenization equals the remapped original
    unk_rate: float  # share of trimmed tokens that are the unknown token
    original_unk_rate: float  # the same for the original tokenizer, for comparison
    tokens_per_sentence_original: float
    tokens_per_sentence_trimmed: float


def measure_coverage(
    language: str, sentences: list[str], original: Tokenizer, trimmed: Tokenizer, id_map: IdMap
) -> Coverage:
    original, trimmed = unpadded(original), unpadded(trimmed)
    before = original.encode_batch(sentences, add_special_tokens=False)
    after = trimmed.encode_batch(sentences, add_special_tokens=False)
    identical = sum(
        list(id_map.to_new(b.ids)) == a.ids and bool(id_map.is_kept(b.ids).all())
        for b, a in zip(before, after, strict=True)
    )
    original_unk = int(id_map.kept_ids[id_map.unk_id])
    n_before = sum(len(e.ids) for e in before)
    n_after = sum(len(e.ids) for e in after)
    return Coverage(
        language=language,
        n_sentences=len(sentences),
        identical_share=identical / len(sentences),
        unk_rate=sum(e.ids.count(id_map.unk_id) for e in after) / max(n_after, 1),
        original_unk_rate=sum(e.ids.count(original_unk) for e in before) / max(n_before, 1),
        tokens_per_sentence_original=n_before / len(sentences),
        tokens_per_sentence_trimmed=n_after / len(sentences),
    )
