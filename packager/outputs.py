"""Output directories: written all at once, and measured.

A directory is built in a temporary sibling, then renamed into place, so a failure (or Ctrl-C) part-way
leaves the user's output path as it was, never half-written.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langtrim.packager.errors import OutputError
from langtrim.runtime.bundle import regular_files


def directory_bytes(path: Path) -> tuple[int, dict[str, int]]:
    """Total size of the regular files under `path`, and each one's by relative path (see `regular_files`)."""
    sizes = {relative: file.stat().st_size for relative, file in regular_files(path).items()}
    return sum(sizes.values()), sizes


def check_output_dir(out: Path, *, force: bool) -> None:
    """Refuse an output path that exists and is not an empty directory, unless `force`."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {str(out)!r} is a file: give a directory path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"output directory {str(out)!r} is not empty: choose another --out or pass --force")


def _make_readable(root: Path) -> None:
    """mkdtemp and some writers create owner-only modes; give the result the user's usual modes."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [root, *root.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


@contextmanager
def atomic_output_dir(out: Path, *, force: bool) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `out` (which `force` allows to be non-empty)."""
    check_output_dir(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield staging
        _make_readable(staging)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
