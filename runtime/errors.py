"""The one error hierarchy of langtrim.

The CLI catches `LangtrimError` and prints its message as one line, so every message must say what is wrong,
where (file, field, option) and what to do about it. Any other exception is a bug and keeps its traceback.
"""


class LangtrimError(Exception):
    """A problem with the user's input or environment that the user can fix."""


class UsageError(LangtrimError):
    """An option or argument is out of range or contradicts another one."""


class ModelSourceError(LangtrimError):
    """A model cannot be found or read (unknown hub id, missing directory, missing weights)."""


class UnsupportedModelError(LangtrimError):
    """The model's architecture or tokenizer is one langtrim cannot trim."""


class SelectionError(LangtrimError):
    """Token selection cannot run: unknown language, unreadable or empty corpus, bad threshold."""


class OutputError(LangtrimError):
    """The output path cannot be written (exists and is not empty, not a directory)."""


class BundleError(LangtrimError):
    """A bundle is missing, corrupt, tampered with, or of a format this langtrim cannot read."""


class ParityError(LangtrimError):
    """A bundle misses a parity gate."""


class InputError(LangtrimError):
    """A runtime call got input it cannot encode: not a list of strings, an empty list, ids out of range."""
