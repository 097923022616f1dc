"""`langtrim container`: the build command and the staged context, with a stand-in `docker` on PATH.

The stand-in records its arguments and the context it was given, so these tests check what langtrim asks
a real client to build without a daemon. docker/ci_container_check.sh builds and runs the real image.
"""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from langtrim.packager.container import build_command, build_container, find_tool
from langtrim.runtime import BundleError, LangtrimError, UsageError
from langtrim.runtime.bundle import regular_files
from tests.support.server import packed_bundle

FAKE_DOCKER = """#!/bin/sh
# a stand-in docker client: `build` records its arguments and the files of its context (the last argument)
if [ "$1" = build ]; then
    for last in "$@"; do :; done
    printf '%s\\n' "$@" > "$RECORD/argv"
    (cd "$last" && find . -type f | sort) > "$RECORD/files"
    exit "${FAKE_STATUS:-0}"
fi
if [ "$1" = image ]; then echo 453000000; fi
"""


@pytest.fixture()
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("RECORD", str(record))
    return record


@pytest.fixture(scope="module")
def bundle(tiny_models, sentences, tmp_path_factory) -> Path:
    return packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)


def test_the_context_holds_the_dockerfile_the_source_and_the_bundle_only(
    fake_docker: Path, bundle: Path
) -> None:
    built = build_container(bundle, "langtrim-test", base="localhost/debian-py:bookworm")
    argv = (fake_docker / "argv").read_text().splitlines()
    assert argv[:2] == ["build", "-f"] and argv[2].endswith("docker/Dockerfile")
    assert "BUNDLE=bundle" in argv and "BASE=localhost/debian-py:bookworm" in argv and "langtrim-test" in argv
    files = (fake_docker / "files").read_text().splitlines()
    sources = {"./pyproject.toml", "./README.md", "./docker/Dockerfile", "./docker/constraints.txt"}
    assert sources | {"./runtime/server/process.py", "./runtime/server/healthcheck.py"} <= set(files)
    assert "1_Pooling/config.json" in regular_files(bundle)  # files in a sub-folder are staged too
    assert {f"./bundle/{name}" for name in regular_files(bundle)} <= set(files)
    assert not [f for f in files if f.startswith(("./.venv", "./.git/", "./tests/")) or "__pycache__" in f]
    assert (built.tool, built.size_bytes) == ("docker", 453_000_000)


def test_a_failed_build_is_one_error_naming_the_tool(fake_docker: Path, bundle: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_STATUS", "3")
    with pytest.raises(LangtrimError, match="docker build of langtrim-test failed \\(exit status 3\\)"):
        build_container(bundle, "langtrim-test")


def test_a_corrupt_bundle_fails_before_any_build(fake_docker: Path, bundle: Path, tmp_path: Path) -> None:
    import shutil

    corrupt = tmp_path / "corrupt"
    shutil.copytree(bundle, corrupt)
    with (corrupt / "tokenizer.json").open("a") as tokenizer:
        tokenizer.write(" ")
    with pytest.raises(BundleError):
        build_container(corrupt, "langtrim-test")
    assert not (fake_docker / "argv").exists()


def test_no_client_on_path_says_how_to_build_by_hand(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        UsageError, match="no docker or podman client on PATH.*docker build -f docker/Dockerfile"
    ):
        find_tool(None)
    with pytest.raises(UsageError, match="--tool 'nerdctl' is not one of docker, podman"):
        find_tool("nerdctl")


def test_podman_builds_in_docker_format_to_keep_the_healthcheck(tmp_path: Path) -> None:
    command = build_command("podman", tmp_path, "name", None)
    assert command[command.index("--format") + 1] == "docker"
    assert not any(arg.startswith("BASE=") for arg in command)


def test_the_cli_prints_the_image_size(fake_docker: Path, bundle: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "langtrim"), "container", str(bundle), "--tag", "langtrim-test"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ | {"COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "built langtrim-test with docker: 453 MB" in result.stdout
    assert (fake_docker / "argv").exists()


def test_a_bundle_file_linking_outside_the_bundle_is_refused_not_copied(
    fake_docker: Path, bundle: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "linked.bundle"
    shutil.copytree(bundle, copy)
    outside = tmp_path / "secret-but-same-bytes.json"
    shutil.move(copy / "config.json", outside)
    (copy / "config.json").symlink_to(outside)  # the hash still matches: only the link gives it away
    with pytest.raises(UsageError, match="config.json is a link to .*outside the bundle"):
        build_container(copy, "langtrim-test")
    assert not (fake_docker / "argv").exists()


def test_only_the_files_the_manifest_lists_enter_the_image(
    fake_docker: Path, bundle: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "dotted.bundle"
    shutil.copytree(bundle, copy)
    (copy / ".notes").write_text("not part of the bundle")
    build_container(copy, "langtrim-test")
    files = (fake_docker / "files").read_text().splitlines()
    assert "./bundle/.notes" not in files and "./bundle/manifest.json" in files


def test_the_context_holds_every_source_the_dockerfile_copies(fake_docker: Path, bundle: Path) -> None:
    """A COPY added to docker/Dockerfile without staging its source would break only `langtrim container`."""
    from langtrim.packager.container import source_root

    copies = [
        line.split()[1:-1]
        for line in (source_root() / "docker" / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
    ]
    sources = {source for words in copies for source in words if source != "${BUNDLE}"}
    assert {"pyproject.toml", "docker/constraints.txt", "runtime"} <= sources
    build_container(bundle, "langtrim-test")
    files = (fake_docker / "files").read_text().splitlines()
    for source in sources:
        assert any(f == f"./{source}" or f.startswith(f"./{source}/") for f in files), source
