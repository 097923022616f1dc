"""Rebuild a tokenizer for a trimmed vocabulary, and map ids between the original and trimmed models.

New ids are the kept original ids in ascending order, so special tokens, which sit at the start of the
vocabularies we support, usually keep their ids. The contract (tested on real text): for every text whose
original tokenization uses only kept tokens, the trimmed tokenizer gives exactly the remapped original ids.

That holds because both supported models only lose candidates: WordPiece's greedy longest match finds the
same piece when it is kept, and Unigram's Viterbi search finds the same best path when all its pieces are
kept. One subtlety: the `tokenizers` Unigram model scores an unknown character at (lowest piece score - 10),
so `unigram_keep_ids` adds the lowest-scoring piece to keep that penalty, and therefore every segmentation,
unchanged.
"""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.errors import UnsupportedModelError
from langtrim.packager.models.tokenizer import unk_token

SUPPORTED_TOKENIZER_MODELS = ("WordPiece", "Unigram")


@dataclass(frozen=True)
class IdMap:
    """Original id <-> new id. `kept_ids[new_id]` is the original id; dropped ids map to the unknown token."""

    kept_ids: np.ndarray  # [new_vocab_size] int64, ascending original ids
    original_vocab_size: int
    unk_id: int  # new id of the unknown token

    def __post_init__(self) -> None:
        lookup = np.full(self.original_vocab_size, self.unk_id, dtype=np.int64)
        lookup[self.kept_ids] = np.arange(len(self.kept_ids), dtype=np.int64)
        object.__setattr__(self, "_to_new", lookup)

    def to_new(self, original_ids: np.ndarray | list[int]) -> np.ndarray:
        """Map original ids to new ids; ids of dropped tokens become the unknown token's new id."""
        lookup: np.ndarray = self._to_new  # type: ignore[attr-defined]
        return lookup[np.asarray(original_ids, dtype=np.int64)]

    def is_kept(self, original_ids: np.ndarray | list[int]) -> np.ndarray:
        lookup: np.ndarray = self._to_new  # type: ignore[attr-defined]
        original = np.asarray(original_ids, dtype=np.int64)
        return (lookup[original] != self.unk_id) | (original == self.kept_ids[self.unk_id])

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": 1,
                "what": "new id -> original id: kept_original_ids[new_id] is the original model's id",
                "original_vocab_size": self.original_vocab_size,
                "unk_id": self.unk_id,
                "kept_original_ids": self.kept_ids.tolist(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> "IdMap":
        data = json.loads(text)
        return cls(
            kept_ids=np.asarray(data["kept_original_ids"], dtype=np.int64),
            original_vocab_size=int(data["original_vocab_size"]),
            unk_id=int(data["unk_id"]),
        )


def _remap_processor(node: Any, new_id: dict[int, int]) -> Any:
    """Remap the token ids a post-processor inserts ([CLS]/<s>, [SEP]/</s>), at any nesting depth."""
    if isinstance(node, list):
        return [_remap_processor(item, new_id) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _remap_processor(value, new_id) for key, value in node.items()}
    if node.get("type") in ("BertProcessing", "RobertaProcessing"):
        for key in ("sep", "cls"):
            token, token_id = node[key]
            out[key] = [token, new_id[token_id]]
    if node.get("type") == "TemplateProcessing":
        out["special_tokens"] = {
            name: {**special, "ids": [new_id[i] for i in special["ids"]]}
            for name, special in node["special_tokens"].items()
        }
    return out


def remap_tokenizer(tokenizer: Tokenizer, kept_ids: np.ndarray) -> tuple[Tokenizer, IdMap]:
    """A tokenizer whose vocabulary is `kept_ids` (ascending original ids) and the id map to go with it."""
    spec = json.loads(tokenizer.to_str())
    model = spec["model"]
    if model["type"] not in SUPPORTED_TOKENIZER_MODELS:
        raise UnsupportedModelError(
            f"cannot trim a {model['type']} tokenizer: langtrim trims WordPiece (BERT, DistilBERT) and Unigram "
            "(XLM-R, multilingual-e5) vocabularies; byte-level BPE (RoBERTa, GPT-2) needs its merges rebuilt"
        )
    original_size = tokenizer.get_vocab_size(with_added_tokens=True)
    kept = np.asarray(kept_ids, dtype=np.int64)
    new_id = {int(original): new for new, original in enumerate(kept)}
    unk = unk_token(spec)
    unk_original = tokenizer.token_to_id(unk) if unk is not None else None
    if unk_original is None or unk_original not in new_id:
        raise UnsupportedModelError(
            "the tokenizer's unknown token is missing or not kept: cannot trim it safely"
        )

    if model["type"] == "Unigram":
        model["vocab"] = [model["vocab"][i] for i in kept if i < len(model["vocab"])]
        model["unk_id"] = new_id[unk_original]
    else:
        by_id = {token_id: token for token, token_id in model["vocab"].items()}
        model["vocab"] = {by_id[i]: new_id[i] for i in kept if i in by_id}
    spec["added_tokens"] = [
        {**token, "id": new_id[token["id"]]} for token in spec["added_tokens"] if token["id"] in new_id
    ]
    spec["post_processor"] = _remap_processor(spec.get("post_processor"), new_id)
    if spec.get("padding"):
        spec["padding"]["pad_id"] = new_id[spec["padding"]["pad_id"]]

    trimmed = Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))
    if trimmed.get_vocab_size(with_added_tokens=True) != len(kept):
        raise UnsupportedModelError(
            f"the trimmed tokenizer has {trimmed.get_vocab_size(with_added_tokens=True)} tokens, expected "
            f"{len(kept)}: the tokenizer's added tokens overlap its vocabulary in a way langtrim does not support"
        )
    return trimmed, IdMap(kept_ids=kept, original_vocab_size=original_size, unk_id=new_id[unk_original])
