"""langtrim's serve-time package: loads a bundle with onnxruntime, tokenizers and numpy only.

Nothing here may import torch or transformers; the packager depends on this package, never the reverse.
`Encoder` is imported on first use: it pulls in onnxruntime (~0.2 s), which the packager's commands, which
import this package for its errors and bundle format, mostly do not need.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from langtrim.runtime.bundle import FORMAT_VERSION, Manifest, read_manifest
from langtrim.runtime.errors import (
    BundleError,
    InputError,
    LangtrimError,
    ModelSourceError,
    OutputError,
    ParityError,
    SelectionError,
    UnsupportedModelError,
    UsageError,
)

if TYPE_CHECKING:
    from langtrim.runtime.encoder import Encoder, Prediction

try:
    __version__ = version("langtrim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

_LAZY = {"Encoder": "langtrim.runtime.encoder", "Prediction": "langtrim.runtime.encoder"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMAT_VERSION",
    "BundleError",
    "Encoder",
    "InputError",
    "LangtrimError",
    "Manifest",
    "ModelSourceError",
    "OutputError",
    "ParityError",
    "Prediction",
    "SelectionError",
    "UnsupportedModelError",
    "UsageError",
    "__version__",
    "read_manifest",
]
