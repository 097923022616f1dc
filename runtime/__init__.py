"""langtrim's serve-time package: loads a bundle with onnxruntime, tokenizers, sentencepiece and numpy only.

Nothing here may import torch or transformers; the packager depends on this package, never the reverse.
`Encoder` is imported on first use: it pulls in onnxruntime (~0.2 s), which the packager's commands, which
import this package for its errors and bundle format, mostly do not need.
"""

import os

# onnxruntime's Linux wheels (>= 1.29) record usage telemetry (a device id and an event database under
# ~/.cache/Microsoft) unless ORT_DISABLE_TELEMETRY=1 is set before onnxruntime is imported. Every module that
# imports onnxruntime (encoder, bundle, the server through both) sits below this package, so opting out here
# covers them all. A library inside a user's service must not phone home; a deployment that wants the
# telemetry sets the variable itself.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from importlib import import_module  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

from langtrim.runtime.bundle import FORMAT_VERSION, Manifest, read_manifest  # noqa: E402
from langtrim.runtime.errors import (  # noqa: E402
    BundleError,
    InputError,
    LangtrimError,
    UsageError,
)

if TYPE_CHECKING:
    from langtrim.runtime.encoder import Encoder, Prediction, Tokenized
    from langtrim.runtime.entities import Entity

    __version__: str

_LAZY = {name: "langtrim.runtime.encoder" for name in ("Encoder", "Prediction", "Tokenized")}
_LAZY["Entity"] = "langtrim.runtime.entities"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name == "__version__":
        from langtrim.runtime.version import langtrim_version

        return langtrim_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMAT_VERSION",
    "BundleError",
    "Encoder",
    "Entity",
    "InputError",
    "LangtrimError",
    "Manifest",
    "Prediction",
    "Tokenized",
    "UsageError",
    "__version__",
    "read_manifest",
]
