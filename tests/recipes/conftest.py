"""A real `langtrim serve` process for the client recipes (docs/recipes.md), over conftest's tiny fp32 bundle.

The clients are the real libraries, installed from PyPI through the test extra; nothing leaves loopback.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from langtrim.runtime import Encoder
from tests.support.server import SERVER_MODULE, free_port, packed_bundle, running_server

MAX_TEXTS = 8


@dataclass(frozen=True)
class Served:
    url: str  # http://127.0.0.1:PORT
    encoder: Encoder  # the same bundle in-process: what every client must get back


@pytest.fixture(scope="module")
def served(tiny_models, sentences, tmp_path_factory) -> Iterator[Served]:
    bundle = packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)
    port = free_port()
    command = [
        *SERVER_MODULE,
        str(bundle),
        "--port",
        str(port),
        "--threads",
        "1",
        "--max-texts",
        str(MAX_TEXTS),
    ]
    with running_server(command, port) as server:
        yield Served(server.url, Encoder(bundle, verify="size"))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)
