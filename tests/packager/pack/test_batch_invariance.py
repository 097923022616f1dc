"""The default bundle's guarantee: a text's vector does not depend on the texts it is embedded with.

`langtrim pack`'s default --quantize int8 fixes every activation scale at pack time (calibration.py), so a text
alone, inside calls of any size and at any thread count gets the same vector: bit-identical, or at worst cosine
>= GUARANTEED_COSINE (docs/bundle-format.md). Sentences are the shipped Tatoeba lines the calibration did not
see, plus a long paragraph, so every call mixes lengths.
"""

import numpy as np
import pytest

from langtrim.packager.pack.calibration import CALIBRATION_SENTENCES
from langtrim.packager.shipped_text import shipped_sentences
from langtrim.runtime import Encoder, read_manifest

GUARANTEED_COSINE = 0.99999


def _held_out() -> list[str]:
    texts = [
        s for language in ("en", "fr", "de") for s in shipped_sentences(language)[CALIBRATION_SENTENCES:][:40]
    ]
    return [*texts, " ".join(texts[:30])]  # the paragraph runs past 128 tokens


@pytest.mark.slow
def test_a_texts_vector_is_the_same_alone_and_in_calls_of_any_size_and_thread_count(default_bundle):
    bundle, _ = default_bundle
    assert read_manifest(bundle).quantization.mode == "int8"
    texts = _held_out()
    single = Encoder(bundle, threads=1)
    alone = np.concatenate([single.embed([text], prompt="query") for text in texts])
    for threads in (1, 2):
        encoder = Encoder(bundle, threads=threads)
        for size, batch_size in ((3, 32), (16, 8), (len(texts), 32), (len(texts), 64)):
            order = np.random.default_rng(size).permutation(
                len(texts)
            )  # each call mixes languages and lengths
            mixed = np.empty_like(alone)
            for start in range(0, len(texts), size):
                rows = order[start : start + size]
                mixed[rows] = encoder.embed([texts[i] for i in rows], batch_size=batch_size, prompt="query")
            cosines = (alone * mixed).sum(axis=1)
            assert cosines.min() >= GUARANTEED_COSINE, (threads, size, batch_size, cosines.min())
