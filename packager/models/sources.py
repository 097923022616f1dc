"""Where a model comes from: the offline default, a local Hugging Face directory, or a hub id.

Weights are read from safetensors only, unless the user passes `allow_pickle` for files they trust:
a pickled `pytorch_model.bin` can run arbitrary code when loaded.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import Tokenizer

from langtrim.packager.errors import ModelSourceError
from langtrim.packager.models.families import architecture
from langtrim.runtime.errors import UsageError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

DISTIL_MBERT = "distilbert-base-multilingual-cased"
_HUB_FILES = [
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "*.bin",
]


@dataclass(frozen=True)
class ModelSource:
    path: Path  # a local Hugging Face directory
    name: str  # what the user asked for (hub id, directory, or the default's name)
    description: str  # for reports, e.g. "dequantized 4-bit weights of multilingual-e5-small"
    is_default: bool


def _download(repo_id: str, allow_pickle: bool) -> Path:
    try:
        from huggingface_hub import snapshot_download

        patterns = _HUB_FILES if allow_pickle else [p for p in _HUB_FILES if p != "*.bin"]
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as error:  # the hub client raises many types; all mean "could not get it"
        raise ModelSourceError(
            f"cannot get model {repo_id!r} from the Hugging Face hub ({type(error).__name__}): check the id and "
            "your network, or pass a local Hugging Face directory"
        ) from None


def resolve_model(name: str | None, *, from_distil: bool = False, allow_pickle: bool = False) -> ModelSource:
    """Turn the MODEL argument into a local directory, downloading from the hub when it is a hub id."""
    if from_distil and name:
        raise UsageError(f"give either MODEL ({name!r}) or --from-distil, not both")
    if from_distil:
        name = DISTIL_MBERT
    if not name:
        from langtrim.packager.models.default_model import (
            DEFAULT_MODEL_DESCRIPTION,
            DEFAULT_MODEL_NAME,
            default_model_dir,
        )

        return ModelSource(
            default_model_dir(), DEFAULT_MODEL_NAME, DEFAULT_MODEL_DESCRIPTION, is_default=True
        )
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelSource(path, name, f"local directory {name}", is_default=False)
    if path.exists():
        raise ModelSourceError(f"model {name!r} is a file: give a Hugging Face model directory or a hub id")
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if looks_local:
        raise ModelSourceError(f"model directory {name!r} does not exist: check the path")
    return ModelSource(
        _download(name, allow_pickle), name, f"Hugging Face hub model {name}", is_default=False
    )


def read_config(source: ModelSource) -> dict:
    config_path = source.path / "config.json"
    if not config_path.is_file():
        raise ModelSourceError(
            f"{str(source.path)!r} has no config.json: give a Hugging Face model directory"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelSourceError(f"{str(config_path)!r} is not valid JSON ({error}): check the file") from None
    architecture(config, source.name)  # refuses a model type langtrim cannot trim
    return config


def load_tokenizer(source: ModelSource) -> Tokenizer:
    """The model's fast tokenizer; built from vocab.txt / sentencepiece files by transformers if needed."""
    tokenizer_json = source.path / "tokenizer.json"
    if tokenizer_json.is_file():
        try:
            return Tokenizer.from_file(str(tokenizer_json))
        except Exception as error:  # tokenizers raises a bare Exception on malformed files
            raise ModelSourceError(
                f"{str(tokenizer_json)!r} cannot be read ({error}): check the file"
            ) from None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(source.path), use_fast=True).backend_tokenizer
    except Exception as error:
        raise ModelSourceError(
            f"{source.name!r} has no tokenizer.json and no files a fast tokenizer can be built from ({error})"
        ) from None


def load_model(source: ModelSource, *, allow_pickle: bool = False) -> "PreTrainedModel":
    """Load the model with its own architecture class (keeping any task head), in fp32 on CPU."""
    import transformers

    config = read_config(source)
    has_safetensors = any(source.path.glob("*.safetensors"))
    if not has_safetensors and not allow_pickle:
        raise ModelSourceError(
            f"{source.name!r} has no .safetensors weights; langtrim does not unpickle pytorch_model.bin unless "
            "you pass --allow-pickle (only for files you trust)"
        )
    architectures = config.get("architectures") or []
    model_class = getattr(transformers, architectures[0], None) if architectures else None
    if model_class is None:
        model_class = transformers.AutoModel
    try:
        model = model_class.from_pretrained(
            str(source.path), use_safetensors=has_safetensors, dtype="float32"
        )
    except Exception as error:
        raise ModelSourceError(f"cannot load the weights of {source.name!r} ({error})") from None
    model.eval()
    return model
