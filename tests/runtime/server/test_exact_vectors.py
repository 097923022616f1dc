"""The server answers a text with exactly `Encoder.embed([text])`, whatever else runs in its round.

The batcher tokenizes each request alone and runs a round's ids together through `Encoder.outputs`, cut into
runs by length; with the default --quantize int8 (activation scales fixed at pack time) a text's vector does
not depend on its company, so the bytes match. The bundle is conftest's tiny XLM-R packed with every default.
"""

from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from langtrim.packager.pack.quantize import DEFAULT_VARIANT
from langtrim.runtime import Encoder, read_manifest
from langtrim.runtime.server import create_app
from tests.runtime.server.test_server import Gate, post_in_thread, wait_for
from tests.support.server import packed_bundle, ready


@pytest.fixture(scope="module")
def int8_bundle(tiny_models, sentences, tmp_path_factory) -> Path:
    return packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory, variant=DEFAULT_VARIANT)


def test_embed_of_a_text_is_encoder_embed_of_it_alone_while_others_share_its_round(int8_bundle, sentences):
    assert read_manifest(int8_bundle).quantization.mode == DEFAULT_VARIANT.quantize == "int8"
    lines = sentences("fr")[400:]
    texts = [lines[0], " ".join(lines[1:12]), lines[12], " ".join(lines[13:16]), lines[16]]
    app = create_app(int8_bundle, threads=2)
    batcher = app.state.langtrim.batcher
    with TestClient(app) as started:
        ready(started)
        gate, results, threads = Gate(batcher), [], []
        threads.append(post_in_thread(started, {"inputs": " ".join(lines[20:30])}, results))
        assert gate.entered.acquire(timeout=30)  # the first request holds the inference thread
        threads += [post_in_thread(started, {"inputs": [text]}, results) for text in texts]
        wait_for(lambda: batcher.inflight == 1 + len(texts))
        gate.open.set()
        for thread in threads:
            thread.join(30)
    assert batcher.batch_sizes[len(texts)] >= 1  # the waiting requests ran as one round
    encoder = Encoder(int8_bundle, threads=1)
    for body, response in results:
        assert response.status_code == 200
        inputs = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
        served = np.asarray(response.json(), dtype=np.float32)
        assert np.array_equal(served, encoder.embed(inputs)), inputs
