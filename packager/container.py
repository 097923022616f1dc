"""`langtrim container`: build the server image of a bundle with a docker or podman client.

The image is docker/Dockerfile built on a context staged in a temporary directory: the source files the
Dockerfile copies and the bundle (hard-linked when possible), nothing else. Staging means the bundle may live
anywhere, not only inside the repository, and the context never holds a virtual environment with torch.
The Dockerfile and the source come from the checkout langtrim runs from: a wheel install has neither.
"""

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from langtrim.runtime.bundle import MANIFEST_FILE, Manifest, read_manifest
from langtrim.runtime.errors import LangtrimError, UsageError

TOOLS = ("docker", "podman")
# What docker/Dockerfile copies from the context, besides the bundle.
_SOURCES = (
    "pyproject.toml",
    "README.md",
    "runtime",
    "packager",
    "docker/Dockerfile",
    "docker/constraints.txt",
)
_STAGED_BUNDLE = "bundle"


@dataclass(frozen=True)
class ContainerBuild:
    tag: str
    tool: str
    command: tuple[str, ...]  # the build command as run (its context directory is gone afterwards)
    size_bytes: int | None  # as the tool reports it; None if it could not say


def source_root() -> Path:
    """The checkout langtrim runs from; UsageError if docker/Dockerfile or the source is not there."""
    root = Path(__file__).resolve().parent.parent
    missing = [name for name in _SOURCES if not (root / name).exists()]
    if missing:
        raise UsageError(
            f"langtrim container builds from a source checkout, but {root} has no {', '.join(missing)}: "
            "clone the langtrim repository and `pip install -e .` from it"
        )
    return root


def find_tool(tool: str | None) -> str:
    """The container client to use: `tool` if given, else the first of docker, podman on PATH."""
    if tool is not None and tool not in TOOLS:
        raise UsageError(f"--tool {tool!r} is not one of {', '.join(TOOLS)}")
    for name in (tool,) if tool else TOOLS:
        if name and shutil.which(name):
            return name
    wanted = tool or " or ".join(TOOLS)
    raise UsageError(
        f"no {wanted} client on PATH: install one, or build by hand from the repository's root with "
        "docker build -f docker/Dockerfile --build-arg BUNDLE=<bundle inside the repo> -t NAME ."
    )


def build_command(tool: str, context: Path, tag: str, base: str | None) -> list[str]:
    """The build command for a staged context; podman keeps HEALTHCHECK only in docker format."""
    command = [tool, "build", "-f", str(context / "docker" / "Dockerfile"), "-t", tag]
    command += ["--build-arg", f"BUNDLE={_STAGED_BUNDLE}"]
    if base:
        command += ["--build-arg", f"BASE={base}"]
    if tool == "podman":
        command += ["--format", "docker"]
    return [*command, str(context)]


def build_container(
    bundle: Path, tag: str, *, tool: str | None = None, base: str | None = None
) -> ContainerBuild:
    """Build image `tag` serving `bundle`; the tool's output goes to this process's stdout and stderr.

    The bundle is verified first (every file's digest), so a corrupt bundle fails here and not in the
    container. LangtrimError if the build fails.
    """
    manifest = read_manifest(bundle, verify="full")
    if not tag or any(c.isspace() for c in tag):
        raise UsageError(f"--tag {tag!r} is not an image name: give e.g. --tag langtrim-en-fr-de")
    root, client = source_root(), find_tool(tool)
    with tempfile.TemporaryDirectory(prefix="langtrim-container-") as staging:
        context = Path(staging)
        for name in _SOURCES:
            _stage(root / name, context / name)
        stage_bundle(bundle, manifest, context / _STAGED_BUNDLE)
        command = build_command(client, context, tag, base)
        status = subprocess.run(command, check=False).returncode
    if status != 0:
        raise LangtrimError(f"{client} build of {tag} failed (exit status {status}): see its output above")
    return ContainerBuild(tag, client, tuple(command), image_size(client, tag))


def image_size(tool: str, tag: str) -> int | None:
    """The image's size in bytes as `tool image inspect` reports it (uncompressed layers)."""
    result = subprocess.run(
        [tool, "image", "inspect", "--format", "{{json .Size}}", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return int(json.loads(result.stdout.strip()))
    except (ValueError, TypeError):
        return None


def stage_bundle(bundle: Path, manifest: Manifest, target: Path) -> None:
    """Put the bundle's manifest and the files it lists (nothing else) into the build context.

    A file that is a link to a place outside the bundle is refused, not followed: the image would carry
    whatever the link points at (a key, /etc/shadow), which the manifest's hash cannot vouch for once the
    target changes.
    """
    root = bundle.resolve()
    for name in [MANIFEST_FILE, *manifest.files]:
        source = bundle / name
        resolved = source.resolve()
        if not resolved.is_relative_to(root):
            raise UsageError(
                f"bundle file {name} is a link to {str(resolved)!r}, outside the bundle: replace the link by the "
                "file itself"
            )
        _stage(resolved, target / name)


def _stage(source: Path, target: Path) -> None:
    """Copy a file or tree into the context, hard-linking files when on the same filesystem."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(
            source, target, copy_function=_link_or_copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    else:
        _link_or_copy(str(source), str(target))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
