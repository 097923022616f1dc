"""Read a language's corpus line by line, in constant memory, with errors a user can act on."""

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from langtrim.packager.errors import SelectionError


@dataclass(frozen=True)
class CorpusSpec:
    """A user's corpus for one language, as given on the command line (`--corpus fr=path`)."""

    language: str
    path: Path


def parse_corpus_option(value: str) -> CorpusSpec:
    """Parse `LANG=PATH` (the `--corpus` option)."""
    language, sep, path = value.partition("=")
    if not sep or not language.strip() or not path.strip():
        raise SelectionError(
            f"--corpus {value!r} is not LANG=PATH: write it as e.g. --corpus fr=corpus/fr.txt.gz"
        )
    return CorpusSpec(language.strip().lower(), Path(path.strip()).expanduser())


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline=None)


def iter_corpus_lines(path: Path) -> Iterator[str]:
    """Yield the lines of a plain or .gz UTF-8 text file, without line ends, streaming.

    Raises SelectionError for a missing, non-UTF-8, corrupt or empty file: a selection from an
    unreadable corpus would silently keep the wrong tokens.
    """
    if not path.is_file():
        raise SelectionError(f"corpus file {str(path)!r} does not exist: check the path given to --corpus")
    line_number = 0
    try:
        with _open_text(path) as stream:
            for line_number, line in enumerate(stream, start=1):  # noqa: B007
                yield line.rstrip("\n")
    except UnicodeDecodeError as error:
        raise SelectionError(
            f"corpus file {str(path)!r} is not UTF-8 text (line {line_number + 1}, byte {error.start}): "
            "convert it with e.g. `iconv -t UTF-8`"
        ) from None
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise SelectionError(f"corpus file {str(path)!r} cannot be read ({error}): check the file") from None
    if line_number == 0:
        raise SelectionError(
            f"corpus file {str(path)!r} is empty: give a file with one sentence or paragraph a line"
        )
