"""Parameter and byte counts read from safetensors headers, without loading any tensor."""

import json
import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path

_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class WeightsSummary:
    parameters: int
    file_bytes: int  # sum of the .safetensors files' sizes
    vocab_parameters: int  # parameters in tensors whose first dimension is the vocabulary
    vocab_rows: int
    bytes_per_parameter: float


def _header(path: Path) -> dict:
    with path.open("rb") as stream:
        (length,) = struct.unpack("<Q", stream.read(8))
        header: dict = json.loads(stream.read(length))
    header.pop("__metadata__", None)
    return header


def summarize_weights(model_dir: Path, vocab_rows: int) -> WeightsSummary:
    """Count parameters of a model directory's safetensors files; `vocab_rows` is the embedding's row count."""
    files = sorted(model_dir.glob("*.safetensors"))
    parameters = vocab_parameters = payload = 0
    for path in files:
        for info in _header(path).values():
            count = prod(info["shape"])
            parameters += count
            payload += count * _BYTES.get(info["dtype"], 4)
            if info["shape"] and info["shape"][0] == vocab_rows:
                vocab_parameters += count
    return WeightsSummary(
        parameters=parameters,
        file_bytes=sum(path.stat().st_size for path in files),
        vocab_parameters=vocab_parameters,
        vocab_rows=vocab_rows,
        bytes_per_parameter=payload / parameters if parameters else 4.0,
    )


def projected_after_trim(before: WeightsSummary, kept_rows: int) -> tuple[int, int]:
    """(parameters, bytes) after keeping `kept_rows` of the vocabulary, from the headers alone."""
    removed = before.vocab_parameters - round(before.vocab_parameters * kept_rows / before.vocab_rows)
    return before.parameters - removed, before.file_bytes - round(removed * before.bytes_per_parameter)
