"""langtrim's installed version, read once on first use.

importlib.metadata costs ~15 ms and 3 MB of RSS, so it is not read in every process that loads a bundle:
only the server, the CLI and manifest writing ask for it.
"""

from functools import cache


@cache
def langtrim_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("langtrim")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0"
