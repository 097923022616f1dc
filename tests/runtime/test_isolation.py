"""The runtime serves a bundle with onnxruntime, tokenizers, sentencepiece and numpy only: no torch, no network.

Each check runs in a fresh interpreter, since this test session has long imported torch itself.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bundles import TinyBundle, tiny_bundle

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
FORBIDDEN = ("torch", "transformers", "optimum", "onnx", "langtrim.packager")

LOAD_AND_EMBED = """
import sys
from langtrim.runtime import Encoder

vectors = Encoder(sys.argv[1]).embed(["The runtime needs no torch.", "Nor any network."])
assert vectors.shape == (2, 32), vectors.shape
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "optimum"))
assert not heavy, f"the runtime imported {heavy}"
print("ok")
"""

NO_NETWORK = """
import socket

class _NoNetwork(socket.socket):
    def __init__(self, *args, **kwargs):
        raise OSError("network access attempted: " + repr(args))

def _refuse(*args, **kwargs):
    raise OSError("network access attempted: " + repr(args))

socket.socket = _NoNetwork
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
"""


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return tiny_bundle(tmp_path_factory, "bert")


def _run(code: str, bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, str(bundle)], capture_output=True, text=True, timeout=120, check=False
    )


def test_runtime_loads_and_embeds_without_torch_or_transformers(bert: TinyBundle) -> None:
    result = _run(LOAD_AND_EMBED, bert.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_runtime_loads_and_embeds_with_the_network_cut(bert: TinyBundle) -> None:
    result = _run(NO_NETWORK + LOAD_AND_EMBED, bert.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_network_guard_itself_works(bert: TinyBundle) -> None:
    """Without this, the test above would pass even if the monkeypatch did nothing."""
    result = _run(NO_NETWORK + "import socket; socket.create_connection(('pypi.org', 443))", bert.path)
    assert result.returncode != 0 and "network access attempted" in result.stderr


@pytest.mark.parametrize(
    "module", sorted(RUNTIME.rglob("*.py")), ids=lambda path: str(path.relative_to(RUNTIME))
)
def test_runtime_source_imports_no_build_time_package(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    bad = [name for name in imported if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN)]
    assert not bad, (
        f"{module.name} imports {bad}: the runtime may use only onnxruntime, tokenizers, sentencepiece and numpy"
    )
