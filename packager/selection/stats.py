"""Token statistics: the paper's statistic, as selection reads it and `langtrim count` writes it.

Every source of a selection gives one `TokenStats` per language: a counted corpus, a statistics file, or the
offline word-frequency estimate (`wordfreq_source`). A `TokenStats` holds, for one tokenizer and one language, the number of lines counted and, per token id, the
number of lines it occurs in (the paper's statistic) and its total number of occurrences. A file holds one. Statistics of the
same tokenizer, language and minimum line length merge by addition, so shards, files and machines can be
counted apart and summed. The file is a NumPy `.npz` archive read with `allow_pickle=False`: plain arrays
and strings only, versioned by `format_version`.

The tokenizer is identified by the sha256 of `to_str()` of the tokenizer as counting uses it, that is
without padding and truncation (those do not change which tokens a line gives, and a model's loader may
switch them on or off). `to_str()` is canonical within one `tokenizers` release; a release that serialises
differently makes old statistics look foreign, which fails safe (count again).
"""

import hashlib
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.errors import SelectionError
from langtrim.packager.models.tokenizer import unpadded

FORMAT_VERSION = 1
# A line counts when it has at least this many characters after stripping; shorter lines are read and
# skipped. 5 is the paper's: its notebook keeps `len(line) > 5` with `line` still ending in its newline.
DEFAULT_MIN_LINE_CHARS = 5
_KIND = "langtrim-token-stats"
_INT_FIELDS = ("n_lines", "n_skipped_lines", "n_bytes", "min_line_chars")


def tokenizer_sha256(tokenizer: Tokenizer) -> str:
    """The identity statistics carry: sha256 of the tokenizer's JSON without padding and truncation."""
    return hashlib.sha256(unpadded(tokenizer).to_str().encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class TokenStats:
    """Token counts of one language's corpus under one tokenizer. Arrays are not copied: do not mutate."""

    tokenizer_sha256: str
    language: str
    n_lines: int  # lines counted: at least `min_line_chars` characters after stripping
    line_counts: np.ndarray  # [vocab_size] int64: lines each token id occurs in (at most n_lines)
    occurrences: np.ndarray  # [vocab_size] int64: occurrences of each token id in the counted lines
    min_line_chars: int
    inputs: tuple[str, ...]  # what was counted, for people: "corpus/fr.txt.gz (1,234,567 bytes)"
    n_skipped_lines: int = 0  # lines read but too short to count
    n_bytes: int = 0  # UTF-8 text bytes read, line ends included (decompressed size for .gz etc.)

    @property
    def vocab_size(self) -> int:
        return len(self.line_counts)

    @classmethod
    def empty(
        cls,
        tokenizer_sha256: str,
        language: str,
        vocab_size: int,
        *,
        min_line_chars: int,
        inputs: tuple[str, ...] = (),
    ) -> "TokenStats":
        zeros = np.zeros(vocab_size, dtype=np.int64)
        return cls(tokenizer_sha256, language, 0, zeros, zeros.copy(), min_line_chars, inputs)

    def merge(self, other: "TokenStats") -> "TokenStats":
        """The statistics of both corpora together (counts add). Refuses statistics that do not add up."""
        where = f"{_describe(self.inputs)} and {_describe(other.inputs)}"
        if other.tokenizer_sha256 != self.tokenizer_sha256 or other.vocab_size != self.vocab_size:
            raise SelectionError(
                f"cannot merge token statistics of different tokenizers (sha256 {self.tokenizer_sha256[:12]}… "
                f"and {other.tokenizer_sha256[:12]}…; {where}): count every part with the same tokenizer"
            )
        if other.language != self.language:
            raise SelectionError(
                f"cannot merge token statistics of {self.language!r} and {other.language!r} ({where}): "
                "the threshold applies per language, so keep one file per language and pass each to selection"
            )
        if other.min_line_chars != self.min_line_chars:
            raise SelectionError(
                f"cannot merge token statistics counted with --min-line-chars {self.min_line_chars} and "
                f"{other.min_line_chars} ({where}): count every part with the same minimum"
            )
        inputs = tuple(dict.fromkeys(self.inputs + other.inputs))
        return replace(
            self,
            n_lines=self.n_lines + other.n_lines,
            line_counts=self.line_counts + other.line_counts,
            occurrences=self.occurrences + other.occurrences,
            inputs=inputs,
            n_skipped_lines=self.n_skipped_lines + other.n_skipped_lines,
            n_bytes=self.n_bytes + other.n_bytes,
        )

    def describe(self) -> str:
        """What was counted, for people: the first input and how many more."""
        return _describe(self.inputs)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the file atomically: a sibling temporary file replaces `path` once complete."""
        path = Path(path)
        arrays = {
            "kind": np.array(_KIND),
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "tokenizer_sha256": np.array(self.tokenizer_sha256),
            "language": np.array(self.language),
            "line_counts": np.asarray(self.line_counts, dtype=np.int64),
            "occurrences": np.asarray(self.occurrences, dtype=np.int64),
            "inputs": np.array(self.inputs, dtype=str) if self.inputs else np.zeros(0, dtype="<U1"),
            **{name: np.array(getattr(self, name), dtype=np.int64) for name in _INT_FIELDS},
        }
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
            try:
                np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
                handle.flush()
                os.fsync(handle.fileno())
            except BaseException:
                os.unlink(handle.name)
                raise
        os.replace(handle.name, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "TokenStats":
        """Read a file `save` wrote. Raises SelectionError for a missing, foreign, corrupt or newer file."""
        path = Path(path)
        if not path.is_file():
            raise SelectionError(
                f"token statistics file {str(path)!r} does not exist: count the corpus first with `langtrim count`"
            )
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise SelectionError(
                f"{str(path)!r} is not a langtrim token statistics file ({error}): count the corpus again with "
                "`langtrim count`"
            ) from None
        return _from_arrays(arrays, path)


def _from_arrays(arrays: dict[str, np.ndarray], path: Path) -> TokenStats:
    if "kind" not in arrays or str(arrays["kind"]) != _KIND:
        raise SelectionError(
            f"{str(path)!r} is a NumPy archive but not langtrim token statistics: give a file written by "
            "`langtrim count`"
        )
    version = int(arrays.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise SelectionError(
            f"token statistics {str(path)!r} have format {version}; this langtrim reads format {FORMAT_VERSION}: "
            "count the corpus again with this langtrim, or upgrade langtrim"
        )
    try:
        ints = {name: int(arrays[name]) for name in _INT_FIELDS}
        line_counts, occurrences = arrays["line_counts"], arrays["occurrences"]
        stats = TokenStats(
            tokenizer_sha256=str(arrays["tokenizer_sha256"]),
            language=str(arrays["language"]),
            line_counts=line_counts,
            occurrences=occurrences,
            inputs=tuple(str(item) for item in arrays["inputs"]),
            **ints,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SelectionError(
            f"token statistics {str(path)!r} miss or garble field {error}: count the corpus again"
        ) from None
    problem = _inconsistency(stats)
    if problem:
        raise SelectionError(
            f"token statistics {str(path)!r} are corrupt ({problem}): count the corpus again"
        )
    return stats


def _inconsistency(stats: TokenStats) -> str | None:
    for name in ("line_counts", "occurrences"):
        array = getattr(stats, name)
        if array.ndim != 1 or array.dtype != np.int64:
            return f"{name} is {array.dtype}{list(array.shape)}, not a vector of int64"
    if stats.line_counts.shape != stats.occurrences.shape:
        return "line_counts and occurrences differ in length"
    if min(stats.n_lines, stats.n_skipped_lines, stats.n_bytes, stats.min_line_chars) < 0:
        return "a count is negative"
    if len(stats.line_counts) and (
        stats.line_counts.min() < 0
        or stats.line_counts.max() > stats.n_lines
        or (stats.occurrences < stats.line_counts).any()
    ):
        return "a token's line count is negative, above the number of lines or above its occurrences"
    if len(stats.tokenizer_sha256) != 64:
        return "the tokenizer fingerprint is not a sha256"
    return None


def _describe(inputs: tuple[str, ...]) -> str:
    if not inputs:
        return "no input"
    return inputs[0] if len(inputs) == 1 else f"{inputs[0]} and {len(inputs) - 1} more inputs"


def merge_all(parts: Iterable[TokenStats]) -> TokenStats:
    """Sum of several statistics (at least one) of the same tokenizer, language and minimum line length."""
    iterator = iter(parts)
    try:
        total = next(iterator)
    except StopIteration:
        raise SelectionError("no token statistics to merge: give at least one file") from None
    for part in iterator:
        total = total.merge(part)
    return total


def is_token_stats_file(path: str | os.PathLike[str]) -> bool:
    """Whether a selection input is statistics (a NumPy archive: a zip file) rather than text to count."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def load_checked(path: str | os.PathLike[str], tokenizer: Tokenizer, language: str) -> TokenStats:
    """Statistics from `langtrim count` as selection input, checked to belong to this tokenizer and language."""
    stats = TokenStats.load(path)
    expected = tokenizer_sha256(tokenizer)
    if stats.tokenizer_sha256 != expected:
        raise SelectionError(
            f"token statistics {str(path)!r} were counted with another tokenizer (sha256 "
            f"{stats.tokenizer_sha256[:12]}…) than this model's ({expected[:12]}…): count again with "
            "`langtrim count MODEL`"
        )
    if stats.language != language:
        raise SelectionError(
            f"token statistics {str(path)!r} are for {stats.language!r}, not {language!r}: pass them as "
            f"--corpus {stats.language}={path}"
        )
    return replace(stats, inputs=(f"token statistics {path} of {stats.describe()}",))
