"""What differs between the models langtrim packs, as data: one record per architecture and per usage.

An `Architecture` (keyed by config.json's `model_type`) holds what trimming, export and optimization must know
of the network: where its position ids start, which onnxruntime fusion script knows its graph, where its
config keeps heads and hidden size. A `Usage` holds how a model's vectors are meant to be made: the prompt
prefixes it was trained with (kept through every trim, so "query: " never becomes unknown tokens), pooling and
normalisation. Jobs ask this module instead of branching on model names.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langtrim.packager.errors import UnsupportedModelError
from langtrim.packager.models.default_model import PROVENANCE_FILE
from langtrim.runtime.bundle import Pooling


@dataclass(frozen=True)
class Architecture:
    """Facts about one Hugging Face `model_type` that langtrim can trim."""

    model_type: str
    # Positions before the first token's. RoBERTa-style models number positions from pad_token_id + 1, so
    # 2 of max_position_embeddings never hold a token, and the pad id must not move in a trim.
    position_offset: int = 0
    onnx_fusion: str = "bert"  # onnxruntime.transformers' optimizer family that recognises the graph
    heads_key: str = "num_attention_heads"  # config.json keys of the attention heads and the hidden size
    hidden_key: str = "hidden_size"

    @property
    def positions_follow_pad(self) -> bool:
        return self.position_offset > 0

    def fusion_settings(self, config: Mapping[str, Any]) -> tuple[str, int, int]:
        """(onnxruntime model type, num_heads, hidden_size) for --optimize fused."""
        return self.onnx_fusion, int(config.get(self.heads_key, 0)), int(config.get(self.hidden_key, 0))

    def max_positions(self, config: Mapping[str, Any]) -> int:
        """Tokens a text may have, special tokens included, as the position table allows."""
        return int(config.get("max_position_embeddings", 512)) - self.position_offset


ARCHITECTURES: dict[str, Architecture] = {
    architecture.model_type: architecture
    for architecture in (
        Architecture("bert"),
        Architecture("distilbert", heads_key="n_heads", hidden_key="dim"),
        Architecture("xlm-roberta", position_offset=2),
        Architecture("roberta", position_offset=2),
        Architecture("camembert", position_offset=2),
    )
}
SUPPORTED_MODEL_TYPES = tuple(ARCHITECTURES)


def architecture(config: Mapping[str, Any], model_name: str = "the model") -> Architecture:
    """The architecture of a config.json's contents; UnsupportedModelError for one langtrim cannot trim."""
    model_type = config.get("model_type")
    found = ARCHITECTURES.get(str(model_type))
    if found is None:
        raise UnsupportedModelError(
            f"model type {model_type!r} of {model_name!r} is not supported: langtrim trims "
            f"{', '.join(SUPPORTED_MODEL_TYPES)} encoders"
        )
    return found


@dataclass(frozen=True)
class Usage:
    """How a model's vectors are meant to be made from its hidden states."""

    name: str
    prompts: Mapping[str, str] = field(
        default_factory=dict
    )  # prompt name -> prefix, e.g. "query" -> "query: "
    pooling: Pooling = "mean"
    normalize: bool = True

    @property
    def keep_texts(self) -> tuple[str, ...]:
        """Texts whose pieces every trim keeps: the prompt prefixes the model sees before every text."""
        return tuple(self.prompts.values())


MULTILINGUAL_E5 = Usage("multilingual-e5", prompts={"query": "query: ", "passage": "passage: "})
# A plain encoder without a sentence-transformers configuration: mean pooling, unit vectors.
PLAIN_ENCODER = Usage("plain encoder")


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def usage_of(model_dir: Path, *, is_default: bool = False) -> Usage:
    """How `model_dir`'s model is used: multilingual-e5 (the offline default, or a directory cut from it),
    what a sentence-transformers directory says (1_Pooling/config.json, a Normalize module), else mean
    pooling with normalisation."""
    if is_default or (model_dir / PROVENANCE_FILE).is_file():  # the offline default or cut from it
        return MULTILINGUAL_E5
    pooling = _read_json(model_dir / "1_Pooling" / "config.json")
    if not pooling:
        return PLAIN_ENCODER
    modules = json.dumps(_read_json(model_dir / "modules.json"))
    return Usage(
        "sentence-transformers",
        pooling="cls" if pooling.get("pooling_mode_cls_token") else "mean",
        normalize="Normalize" in modules,
    )
