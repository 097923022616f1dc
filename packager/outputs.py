"""Output directories: written all at once, and measured.

A directory is built in a temporary sibling, then renamed into place, so a failure (or Ctrl-C) part-way
leaves the user's output path as it was, never half-written.
"""

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langtrim.packager.errors import OutputError
from langtrim.runtime.bundle import regular_files

log = logging.getLogger(__name__)


def directory_bytes(path: Path) -> tuple[int, dict[str, int]]:
    """Total size of the regular files under `path`, and each one's by relative path (see `regular_files`)."""
    sizes = {relative: file.stat().st_size for relative, file in regular_files(path).items()}
    return sum(sizes.values()), sizes


def check_output_dir(out: Path, *, force: bool) -> None:
    """Refuse, before any slow step, an output the run could not write at its end: an existing file, a
    non-empty directory (unless `force`), the current directory or one holding it, or a place where no
    directory can be made."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {str(out)!r} is a file: give a directory path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"output directory {str(out)!r} is not empty: choose another --out or pass --force")
    resolved, here = out.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise OutputError(
            f"output {str(out)!r} is the current directory or holds it, which --force would replace: give a "
            "new directory, e.g. --out ./bundle"
        )
    check_writable_parent(out)


def check_writable_parent(out: Path) -> None:
    """OutputError unless a sibling of `out` can be created (where atomic outputs are built)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=staging_prefix(out.name) + "probe-", dir=out.parent))
        probe.rmdir()
    except OSError as error:
        raise OutputError(
            f"cannot write {str(out)!r} ({error.strerror or error}): choose an --out in a writable directory"
        ) from None


def staging_prefix(name: str) -> str:
    """The name prefix of a run's temporary sibling of `name`; it carries the run's process id, so a later
    run can tell the leftovers of a killed run (`remove_stale`) from those of a run still going."""
    return f".{name}.tmp-{os.getpid()}-"


def remove_stale(directory: Path, name: str) -> list[Path]:
    """Remove what killed runs left beside `name` in `directory`: temporary siblings whose process is gone.

    SIGKILL leaves no chance to clean up, so each run sweeps before it starts. Returns what it removed.
    """
    removed = []
    for path in directory.glob(f".{name}.tmp-*-*") if directory.is_dir() else ():
        pid = path.name.removeprefix(f".{name}.tmp-").split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.warning(
            "removed %d temporary outputs of earlier runs that were killed: %s", len(removed), removed[0]
        )
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


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
    remove_stale(out.parent, out.name)
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix(out.name), dir=out.parent))
    try:
        yield staging
        _make_readable(staging)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=staging_prefix(out.name) + "old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
