"""`pip install 'langtrim[serve]'` into a fresh virtual environment: no torch comes with it, and
`langtrim serve` serves a bundle there, with the same vectors as the development environment's `Encoder`.

Slow (~1-2 min): it creates a virtual environment and installs the runtime and serve dependencies from PyPI
(or pip's cache). The package is installed from a copy of the source files, so the checkout stays clean.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from langtrim.runtime import Encoder
from tests.support.server import free_port, packed_bundle, running_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("pyproject.toml", "README.md", "runtime", "packager")
BUILD_TIME = ("torch", "transformers", "optimum", "onnx", "safetensors", "wordfreq")


def test_a_fresh_serve_install_has_no_torch_and_serves(
    tiny_models, sentences, tmp_path_factory, tmp_path
) -> None:
    bundle = packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name)  # type: ignore[operator]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, langtrim = venv / "bin" / "python", venv / "bin" / "langtrim"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{source}[serve]"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    probe = f"import importlib.util as u; print(sorted(m for m in {BUILD_TIME!r} if u.find_spec(m)))"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.strip() == "[]", f"the serve install brought build-time packages: {found.stdout}"

    texts = sentences("fr")[:4]
    port = free_port()
    with running_server(
        [str(langtrim), "serve", str(bundle), "--port", str(port), "--threads", "1"], port
    ) as server:
        response = httpx.post(f"{server.url}/embed", json={"inputs": texts}, timeout=30)
        maps = Path(f"/proc/{server.pid}/maps").read_text()
    assert response.status_code == 200, response.text
    assert np.abs(np.array(response.json()) - Encoder(bundle).embed(texts)).max() <= 1e-5
    assert str(venv) in maps and "torch" not in maps  # the fresh environment's server, without torch
