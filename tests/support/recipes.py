"""The recipe tests' yardstick: the Encoder's vectors, and what "the same vectors" means.

Texts go one at a time on both sides: with `--quantize int8-dynamic` a text's vector also depends on the
texts it is batched with (activations are quantized with one scale per run), which is not what a recipe
test measures.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from langtrim.runtime import Encoder

MIN_COSINE = 0.9999  # the bar for "the Encoder's vectors"


def encoder_vectors(bundle: Path, texts: Sequence[str], prompt: str | None = None) -> np.ndarray:
    encoder = Encoder(bundle)
    return np.stack([encoder.embed([text], prompt=prompt)[0] for text in texts])


def assert_same_vectors(theirs: np.ndarray, ours: np.ndarray) -> None:
    """Cosine >= MIN_COSINE on every text, and the same length (both normalised, or neither)."""
    theirs, ours = np.asarray(theirs, dtype=np.float64), np.asarray(ours, dtype=np.float64)
    assert theirs.shape == ours.shape
    cosine = (theirs * ours).sum(1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(ours, axis=1)
    assert cosine.min() >= MIN_COSINE, f"cosines {np.round(cosine, 6).tolist()}"
    assert np.allclose(np.linalg.norm(theirs, axis=1), np.linalg.norm(ours, axis=1), rtol=1e-4)


MAX_TEXTS = 8  # the client recipes' server takes at most this many texts a request


@dataclass(frozen=True)
class Served:
    """A running `langtrim serve` and the same bundle in-process: what every client must get back."""

    url: str  # http://127.0.0.1:PORT
    encoder: Encoder


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)
