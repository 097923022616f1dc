"""docs/recipes.md, plain onnxruntime: an `InferenceSession` with default options and `Tokenizer.from_file`
make the Encoder's vectors; tokenizer.json cuts a text over max_length, so the graph takes it."""

import json

import numpy as np
import pytest

from tests.support.recipes import assert_same_vectors, encoder_vectors

pytestmark = pytest.mark.slow


def _embed(bundle, texts: list[str]) -> np.ndarray:
    import onnxruntime
    from tokenizers import Tokenizer

    manifest = json.loads((bundle / "manifest.json").read_text())
    session = onnxruntime.InferenceSession(str(bundle / "model.onnx"))  # default options
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))  # truncates to max_length
    pad = json.loads((bundle / "tokenizer_config.json").read_text())["pad_token"]
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad), pad_token=pad)  # for batches
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings])
    mask = np.array([e.attention_mask for e in encodings])
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    hidden = session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]
    if manifest["pooling"] == "mean":
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    else:
        pooled = hidden[:, 0]
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True) if manifest["normalize"] else pooled


@pytest.mark.parametrize("bundle_name", ["e5_bundle", "minilm_bundle"])
def test_a_default_session_gives_the_encoders_vectors_and_takes_a_long_text(
    bundle_name, texts, request
) -> None:
    bundle = request.getfixturevalue(bundle_name)
    from tokenizers import Tokenizer

    longest = max(len(e.ids) for e in Tokenizer.from_file(str(bundle / "tokenizer.json")).encode_batch(texts))
    assert longest == json.loads((bundle / "manifest.json").read_text())["max_length"]  # the long text, cut

    vectors = np.stack([_embed(bundle, [text])[0] for text in texts])

    assert_same_vectors(vectors, encoder_vectors(bundle, texts))


def test_a_padded_batch_runs_and_a_prompt_is_a_prefix(e5_bundle, texts) -> None:
    """A batch pads to its longest text; vectors then move by batch (issue 16), so only the shape is exact."""
    query = json.loads((e5_bundle / "manifest.json").read_text())["prompts"]["query"]
    vectors = _embed(e5_bundle, [query + text for text in texts])
    assert vectors.shape == (len(texts), 384)
    alone = np.stack([_embed(e5_bundle, [query + text])[0] for text in texts])
    assert_same_vectors(alone, encoder_vectors(e5_bundle, texts, prompt="query"))
