"""Outputs appear whole or not at all, and what a killed run left behind is removed by the next one."""

import subprocess
import sys
from pathlib import Path

import pytest

from langtrim.packager.errors import OutputError
from langtrim.packager.outputs import atomic_output_dir, remove_stale, staging_prefix


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_leftovers_of_a_killed_run_are_removed_and_a_live_runs_kept(tmp_path: Path) -> None:
    killed = tmp_path / f".bundle.tmp-{_dead_pid()}-abc123"
    killed.mkdir()
    (killed / "model.onnx").write_bytes(b"\0" * 1000)
    running = tmp_path / f"{staging_prefix('bundle')}def456"  # this process: still running
    running.mkdir()
    other_output = tmp_path / f".other.tmp-{_dead_pid()}-x"
    other_output.mkdir()
    assert remove_stale(tmp_path, "bundle") == [killed]
    assert not killed.exists() and running.exists() and other_output.exists()


def test_an_atomic_output_sweeps_before_it_builds(tmp_path: Path) -> None:
    killed = tmp_path / f".out.tmp-{_dead_pid()}-zzz"
    killed.mkdir()
    with atomic_output_dir(tmp_path / "out", force=False) as staging:
        (staging / "a.txt").write_text("a")
    assert (tmp_path / "out" / "a.txt").read_text() == "a"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_a_failed_build_leaves_the_output_as_it_was(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_output_dir(tmp_path / "out", force=False) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("killed half way")
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_cannot_be_written_is_refused_before_building(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with (
        pytest.raises(OutputError, match="cannot write .*file/out"),
        atomic_output_dir(blocker / "out", force=False),
    ):
        pass
