"""The packager's errors: build-time problems the user can fix, below the runtime's `LangtrimError`.

The whole hierarchy is drawn in `langtrim.runtime.errors`; these are the branches only the packager raises.
"""

from langtrim.runtime.errors import LangtrimError, UsageError

__all__ = [
    "BenchError",
    "LangtrimError",
    "ModelSourceError",
    "OutputError",
    "ParityError",
    "SelectionError",
    "UnsupportedModelError",
    "UsageError",
]


class ModelSourceError(LangtrimError):
    """A model cannot be found or read (unknown hub id, missing directory, missing weights)."""


class UnsupportedModelError(LangtrimError):
    """The model's architecture or tokenizer is one langtrim cannot trim."""


class SelectionError(LangtrimError):
    """Token selection cannot run: unknown language, unreadable or empty corpus, bad threshold."""


class OutputError(LangtrimError):
    """The output path cannot be written (exists and is not empty, not a directory)."""


class ParityError(LangtrimError):
    """A bundle misses a parity gate."""


class BenchError(LangtrimError):
    """A benchmark's measurement process failed; the message carries the end of its stderr."""
