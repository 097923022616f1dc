"""The one error hierarchy of langtrim: its root and the runtime's own errors.

    LangtrimError                 a problem the user can fix; the CLI prints it as one line and exits 1
    ├── UsageError                an option or argument is out of range or contradicts another
    ├── BundleError               a bundle is missing, corrupt, tampered with or of an unreadable format
    ├── InputError                a runtime call got input it cannot encode
    └── (the packager's errors, in langtrim.packager.errors)
        ├── ModelSourceError      a model cannot be found or read
        ├── UnsupportedModelError an architecture or tokenizer langtrim cannot trim
        ├── SelectionError        token selection cannot run: language, corpus, statistics, threshold
        ├── OutputError           an output path cannot be written
        ├── ParityError           a bundle misses a parity gate (GateFailure carries the report)
        └── BenchError            a benchmark process failed

Every message says what is wrong, where (file, field, option) and what to do about it. Any other exception
is a bug and keeps its traceback. The packager's errors live in the packager: the runtime never raises them,
and the runtime must not import the packager.
"""


class LangtrimError(Exception):
    """A problem with the user's input or environment that the user can fix."""


class UsageError(LangtrimError):
    """An option or argument is out of range or contradicts another one."""


class BundleError(LangtrimError):
    """A bundle is missing, corrupt, tampered with, or of a format this langtrim cannot read."""


class InputError(LangtrimError):
    """A runtime call got input it cannot encode: not a list of strings, an empty list, ids out of range."""
