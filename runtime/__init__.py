"""langtrim's serve-time package: loads a bundle with onnxruntime, tokenizers and numpy only.

Nothing here may import torch or transformers; the packager depends on this package, never the reverse.
"""

from importlib.metadata import PackageNotFoundError, version

from langtrim.runtime.errors import (
    BundleError,
    LangtrimError,
    ModelSourceError,
    OutputError,
    ParityError,
    SelectionError,
    UnsupportedModelError,
    UsageError,
)

try:
    __version__ = version("langtrim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "BundleError",
    "LangtrimError",
    "ModelSourceError",
    "OutputError",
    "UsageError",
    "ParityError",
    "SelectionError",
    "UnsupportedModelError",
    "__version__",
]
