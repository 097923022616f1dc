"""Encoder: embeddings and classes from a bundle, compared with the PyTorch model it was exported from.

Bundles come from test_bundle.tiny_bundle (random-weight BERT / DistilBERT, hidden 32, real MiniLM
WordPiece tokenizer). Tolerances: ONNX vs PyTorch <= 1e-4 max abs difference (fp32, different kernels);
the same bundle two ways (batched vs alone, ids vs text) <= 1e-5.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from tokenizers import Tokenizer

from langtrim.runtime import BundleError, Encoder, InputError, LangtrimError, Prediction
from langtrim.runtime.bundle import bundle_digest
from langtrim.runtime.encoder import cls_pool, l2_normalize, length_runs, mean_pool, softmax
from tests.support.bundles import (
    LABELS,
    MAX_LENGTH,
    MINILM_DIR,
    UNK_ORIGINAL_ID,
    TinyBundle,
    copy_bundle,
    tiny_bundle,
)

VS_TORCH = 1e-4
SAME_BUNDLE = 1e-5


@pytest.fixture(scope="session")
def bert(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return tiny_bundle(tmp_path_factory, "bert")


@pytest.fixture(scope="session")
def encoder(bert: TinyBundle) -> Encoder:
    return Encoder(bert.path)


@pytest.fixture(scope="session")
def trimmed(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return tiny_bundle(tmp_path_factory, "bert-trimmed")


@pytest.fixture(scope="session")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return tiny_bundle(tmp_path_factory, "bert-classifier")


@pytest.fixture(scope="session")
def distilbert(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return tiny_bundle(tmp_path_factory, "distilbert")


@pytest.fixture(scope="session")
def original_tokenizer() -> Tokenizer:
    """all-MiniLM-L6-v2's own tokenizer, without its fixed padding to 128."""
    tokenizer = Tokenizer.from_file(str(MINILM_DIR / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_LENGTH)
    return tokenizer


@pytest.fixture(scope="session")
def english(sentences) -> list[str]:
    return sentences("en")


def _torch_outputs(source: Path, ids: list[list[int]]) -> list[np.ndarray]:
    """The PyTorch model's first output per sequence: hidden states [seq, dim] without padding, or logits.

    One right-padded batch with an attention mask: per-sequence calls are much slower on a busy machine.
    """
    config = transformers.AutoConfig.from_pretrained(source)
    model = getattr(transformers, config.architectures[0]).from_pretrained(source).eval()
    longest = max(map(len, ids))
    input_ids = torch.tensor([row + [0] * (longest - len(row)) for row in ids])
    mask = torch.tensor([[1] * len(row) + [0] * (longest - len(row)) for row in ids])
    with torch.no_grad():
        first = model(input_ids=input_ids, attention_mask=mask)[0].numpy()
    return [first[i, : len(row)] if first.ndim == 3 else first[i] for i, row in enumerate(ids)]


# --- pooling and normalisation alone ------------------------------------------------------------------------


def test_mean_pool_ignores_padding() -> None:
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)  # [1, 3, 2]
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(mean_pool(hidden, mask), [[2.0, 3.0]])
    assert mean_pool(hidden, mask).dtype == np.float32


def test_mean_pool_of_an_empty_mask_is_zero_not_nan() -> None:
    hidden = np.ones((1, 2, 3), dtype=np.float32)
    np.testing.assert_array_equal(mean_pool(hidden, np.zeros((1, 2))), np.zeros((1, 3)))


def test_cls_pool_takes_the_first_position() -> None:
    hidden = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    np.testing.assert_array_equal(cls_pool(hidden), [[0, 1], [6, 7]])


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(l2_normalize(vectors), [[0.6, 0.8], [0.0, 0.0]])


def test_softmax_sums_to_one_without_overflow() -> None:
    probabilities = softmax(np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32))
    np.testing.assert_allclose(probabilities, [[0.5, 0.5, 0.0]])


# --- embed -----------------------------------------------------------------------------------------------


def test_embed_returns_one_float32_vector_per_text(encoder: Encoder, english: list[str]) -> None:
    vectors = encoder.embed(english[:5])
    assert vectors.shape == (5, 32) and vectors.dtype == np.float32
    assert encoder.dimension == 32


def test_embed_normalizes_as_the_manifest_says_unless_told(encoder: Encoder, english: list[str]) -> None:
    assert encoder.manifest.normalize
    np.testing.assert_allclose(np.linalg.norm(encoder.embed(english[:5]), axis=1), 1.0, atol=1e-6)
    raw = encoder.embed(english[:5], normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    np.testing.assert_allclose(l2_normalize(raw), encoder.embed(english[:5]), atol=1e-7)


def test_a_text_embeds_the_same_alone_and_next_to_a_longer_one(encoder: Encoder, english: list[str]) -> None:
    short, longer = "We agree with you.", max(english, key=len)
    alone = encoder.embed([short])[0]
    batched = encoder.embed([short, longer])[0]
    assert np.abs(alone - batched).max() <= SAME_BUNDLE


@pytest.mark.parametrize("seed", range(5))
def test_length_runs_cover_every_text_once_within_the_limits(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.integers(3, 200, size=int(rng.integers(1, 120)))]
    runs = length_runs(lengths, batch_size=16, run_tokens=512)
    assert sorted(int(i) for run in runs for i in run) == list(range(len(lengths)))
    for run in runs:
        longest = max(lengths[i] for i in run)
        assert len(run) <= 16
        assert len(run) == 1 or len(run) * longest <= 512


def test_length_runs_keep_one_long_text_out_of_a_run_of_short_ones() -> None:
    lengths = [15] * 31 + [159]  # the benchmark's mixed traffic: one long sentence among short ones
    runs = length_runs(lengths, batch_size=32, run_tokens=1024)
    assert [31] in [[int(i) for i in run] for run in runs]
    assert sum(len(run) * max(lengths[i] for i in run) for run in runs) == 31 * 15 + 159


def test_length_runs_cut_a_batch_by_length_when_padding_would_cost_more_than_a_run() -> None:
    lengths = [10] * 16 + [60] * 16
    runs = length_runs(lengths, batch_size=32, run_tokens=4096, run_overhead=16)
    assert sorted(sorted(int(i) for i in run) for run in runs) == [list(range(16)), list(range(16, 32))]
    assert len(length_runs([10] * 32, batch_size=32, run_tokens=4096)) == 1


def test_mixed_lengths_come_back_in_input_order(encoder: Encoder, english: list[str]) -> None:
    texts = sorted(english[:30], key=len, reverse=True) + ["Yes.", " ".join(english[:20])]
    together = encoder.embed(texts, batch_size=8)
    alone = np.stack([encoder.embed([text])[0] for text in texts])
    assert np.abs(together - alone).max() <= SAME_BUNDLE


def test_texts_are_run_window_by_window_in_input_order(
    encoder: Encoder, english: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import langtrim.runtime.encoder as encoder_module

    texts = sorted(english[:23], key=len, reverse=True)
    whole = encoder.embed(texts, batch_size=4)
    monkeypatch.setattr(encoder_module, "WINDOW_TEXTS", 5)
    assert np.abs(encoder.embed(texts, batch_size=4) - whole).max() <= SAME_BUNDLE


def test_batch_size_does_not_change_results(encoder: Encoder, english: list[str]) -> None:
    texts = english[:40]
    assert (
        np.abs(encoder.embed(texts, batch_size=1) - encoder.embed(texts, batch_size=16)).max() <= SAME_BUNDLE
    )


def test_embed_matches_pytorch_mean_pooling(
    bert: TinyBundle, encoder: Encoder, original_tokenizer: Tokenizer, english: list[str]
) -> None:
    texts = english[:100]
    ids = [e.ids for e in original_tokenizer.encode_batch(texts)]
    expected = np.stack([hidden.mean(axis=0) for hidden in _torch_outputs(bert.source, ids)])
    ours = encoder.embed(texts, normalize=False)
    assert np.abs(ours - expected).max() <= VS_TORCH
    normalized = torch.nn.functional.normalize(torch.from_numpy(expected), dim=1).numpy()
    assert np.abs(encoder.embed(texts) - normalized).max() <= VS_TORCH


def test_cls_pooling_on_a_graph_without_token_type_ids(
    distilbert: TinyBundle, original_tokenizer: Tokenizer, english: list[str]
) -> None:
    encoder = Encoder(distilbert.path)
    assert encoder.manifest.inputs == ("input_ids", "attention_mask")
    assert encoder.manifest.pooling == "cls" and not encoder.manifest.normalize
    texts = english[:20]
    ids = [e.ids for e in original_tokenizer.encode_batch(texts)]
    expected = np.stack([hidden[0] for hidden in _torch_outputs(distilbert.source, ids)])
    assert np.abs(encoder.embed(texts) - expected).max() <= VS_TORCH


def test_long_texts_are_truncated_to_max_length(encoder: Encoder, original_tokenizer: Tokenizer) -> None:
    text = "langtrim keeps the tokens your languages use. " * 100
    ids = original_tokenizer.encode(text).ids
    assert len(ids) == MAX_LENGTH  # the original tokenizer truncates the same way ([SEP] kept at the end)
    assert np.abs(encoder.embed([text]) - encoder.embed_ids([ids])).max() <= SAME_BUNDLE


@pytest.mark.parametrize("words", [1, 10, 126, 127, 300, 2000])
def test_tokenize_gives_the_ids_it_runs_and_the_full_length(encoder: Encoder, words: int) -> None:
    """The length before truncation is exact (what a server refuses over-long texts by) at any length."""
    text = " ".join(["moon"] * words)
    full = Tokenizer.from_file(str(encoder.directory / "tokenizer.json"))
    full.no_truncation()
    full.no_padding()
    expected = full.encode(text).ids
    tokenized = encoder.tokenize([text, "short"])
    assert tokenized.lengths[0] == len(expected)
    assert tokenized.ids[0].tolist() == (
        expected if len(expected) <= MAX_LENGTH else [*expected[: MAX_LENGTH - 1], expected[-1]]
    )
    assert tokenized.lengths[1] == len(tokenized.ids[1])


def test_left_truncation_keeps_the_last_tokens_like_the_tokenizers_own(encoder: Encoder) -> None:
    text = " ".join(f"word{i}" for i in range(300))
    left = Tokenizer.from_file(str(encoder.directory / "tokenizer.json"))
    left.no_padding()
    left.enable_truncation(MAX_LENGTH, direction="left")
    tokenized = encoder.tokenize([text], truncation="left")
    assert tokenized.ids[0].tolist() == left.encode(text).ids
    assert tokenized.ids[0].tolist() != encoder.tokenize([text]).ids[0].tolist()
    with pytest.raises(InputError, match="'right' or 'left'"):
        encoder.tokenize([text], truncation="middle")  # type: ignore[arg-type]


def test_encodings_are_the_full_tokens_and_decode_inverts_them(encoder: Encoder) -> None:
    text = " ".join(["moon"] * 300)
    (encoding,) = encoder.encodings([text])
    assert len(encoding.ids) == encoder.tokenize([text]).lengths[0] > MAX_LENGTH  # not truncated
    assert encoding.tokens[0] == "[CLS]" and encoding.special_tokens_mask[0] == 1
    assert encoder.decode([encoding.ids[:4]]) == ["moon moon moon"]
    assert encoder.decode([encoding.ids[:2]], skip_special_tokens=False) == ["[CLS] moon"]
    with pytest.raises(InputError, match="outside this bundle's vocabulary"):
        encoder.decode([[encoder.manifest.vocab.kept_size]])


def test_hidden_states_are_what_embed_pools(encoder: Encoder, english: list[str]) -> None:
    texts = english[:7]
    tokenized = encoder.tokenize(texts)
    states = encoder.hidden_states(tokenized.ids, batch_size=3)
    assert [len(s) for s in states] == [len(ids) for ids in tokenized.ids]
    pooled = np.stack([s.mean(axis=0) for s in states])  # this bundle pools by mean
    assert np.abs(pooled - encoder.embed(texts, normalize=False)).max() <= SAME_BUNDLE


def test_logits_of_a_classifier_are_what_its_probabilities_softmax(
    classifier: TinyBundle, english: list[str]
) -> None:
    encoder = Encoder(classifier.path, verify="size")
    ids = encoder.tokenize(english[:5]).ids
    np.testing.assert_allclose(softmax(encoder.outputs(ids, logits=True)), encoder.outputs(ids), atol=1e-6)


def test_outputs_of_tokenized_texts_equal_embed(encoder: Encoder, english: list[str]) -> None:
    texts = [*english[:30], "query: " + english[0] * 20]
    tokenized = encoder.tokenize(texts, prompt="query")
    assert (
        np.abs(encoder.outputs(tokenized.ids) - encoder.embed(texts, prompt="query", normalize=False)).max()
        <= SAME_BUNDLE
    )


def test_prompt_puts_the_manifest_prefix_before_each_text(encoder: Encoder) -> None:
    with_prompt = encoder.embed(["how old is the moon?"], prompt="query")
    np.testing.assert_allclose(with_prompt, encoder.embed(["query: how old is the moon?"]), atol=SAME_BUNDLE)


def test_threads_option(bert: TinyBundle, encoder: Encoder) -> None:
    single = Encoder(bert.path, threads=1, verify="size")
    np.testing.assert_allclose(single.embed(["one thread"]), encoder.embed(["one thread"]), atol=SAME_BUNDLE)


def test_encoder_refuses_a_tampered_bundle(bert: TinyBundle, tmp_path: Path) -> None:
    bundle = copy_bundle(bert, tmp_path)
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[-10] ^= 0x01
    (bundle / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.onnx has blake2b-256"):
        Encoder(bundle)


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json"])
def test_a_changed_file_is_named_as_changed_even_when_loading_it_fails_first(
    name, bert: TinyBundle, tmp_path: Path
) -> None:
    """The digests are checked on a thread while the files load; a file garbled to its old size breaks
    loading before its digest is done, and the error must still say it was changed, not how it broke."""
    bundle = copy_bundle(bert, tmp_path)
    size = (bundle / name).stat().st_size
    (bundle / name).write_bytes(b"\xff" * size)
    with pytest.raises(
        BundleError, match=rf"{name.replace('.', '[.]')} has blake2b-256 .* changed after packing"
    ):
        Encoder(bundle)
    with pytest.raises(BundleError, match="cannot load|tokenizer"):  # without the check, loading's own error
        Encoder(bundle, verify="size")


def test_encoder_refuses_a_tokenizer_of_another_size_than_the_manifest(
    bert: TinyBundle, tmp_path: Path
) -> None:
    bundle = copy_bundle(bert, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["vocab"]["kept_size"] -= 1
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"tokenizer\.json has 30522 tokens but the manifest says 30521"):
        Encoder(bundle, verify="none")


def test_the_id_map_is_read_when_embed_ids_first_needs_it(bert: TinyBundle, tmp_path: Path) -> None:
    """Loading skips id_map.json (only embed_ids uses it); a broken one is named on first use."""
    bundle = copy_bundle(bert, tmp_path)
    (bundle / "id_map.json").write_text("{not json")
    encoder = Encoder(bundle, verify="none")
    assert encoder.embed(["text still embeds"]).shape == (1, 32)
    with pytest.raises(BundleError, match=r"id_map\.json is not valid JSON"):
        encoder.embed_ids([[101, 102]])


# --- embed_ids: callers who tokenize with the original tokenizer ---------------------------------------------


def test_embed_ids_equals_embed_and_pytorch_on_covered_text(
    trimmed: TinyBundle, bert: TinyBundle, original_tokenizer: Tokenizer, english: list[str]
) -> None:
    encoder = Encoder(trimmed.path)
    assert encoder.manifest.vocab.kept_size < 1000  # a real trim: 30,522 -> a few hundred tokens
    texts = english[:250]  # the sentences the kept tokens came from: all covered
    original_ids = [e.ids for e in original_tokenizer.encode_batch(texts)]
    from_ids = encoder.embed_ids(original_ids, normalize=False)
    assert np.abs(from_ids - encoder.embed(texts, normalize=False)).max() <= SAME_BUNDLE
    # bert.source is the model before the trim, with all 30,522 rows
    expected = np.stack([hidden.mean(axis=0) for hidden in _torch_outputs(bert.source, original_ids)])
    assert np.abs(from_ids - expected).max() <= VS_TORCH


def test_embed_ids_maps_dropped_tokens_to_unknown(
    trimmed: TinyBundle, original_tokenizer: Tokenizer, english: list[str]
) -> None:
    encoder = Encoder(trimmed.path)
    kept = set(json.loads((trimmed.path / "id_map.json").read_text())["kept_original_ids"])
    text = next(t for t in english[250:] if not set(original_tokenizer.encode(t).ids) <= kept)
    ids = original_tokenizer.encode(text).ids
    as_unknown = [i if i in kept else UNK_ORIGINAL_ID for i in ids]
    assert as_unknown != ids
    np.testing.assert_allclose(encoder.embed_ids([ids]), encoder.embed_ids([as_unknown]), atol=SAME_BUNDLE)


@pytest.mark.parametrize(
    ("original_ids", "message"),
    [
        ([101, 102], r"original_ids\[0\] is int, not a list of token ids"),
        ("101 102", r"original_ids must be a list of lists of token ids, got a single str"),
        ([], r"original_ids is empty"),
        ([[101, 102], []], r"original_ids\[1\] is empty"),
        ([[101, 30_522, 102]], r"holds id 30522, outside the original vocabulary \(0 to 30521\)"),
        ([[101, -1, 102]], r"holds id -1"),
        ([[101, 1.5, 102]], r"original_ids\[0\] must be a flat list of integers"),
        (
            [[101] * (MAX_LENGTH + 1)],
            rf"has {MAX_LENGTH + 1} ids, more than this bundle's max_length {MAX_LENGTH}",
        ),
    ],
)
def test_embed_ids_bad_input_is_named(encoder: Encoder, original_ids: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        encoder.embed_ids(original_ids)  # type: ignore[arg-type]


@pytest.mark.parametrize("call", ["embed", "tokenize", "encodings", "coverage"])
def test_a_lone_surrogate_is_named_not_a_unicode_traceback(encoder: Encoder, call: str) -> None:
    """JSON's "\\ud800" and surrogateescape decoding make strs no tokenizer can read."""
    texts = ["fine", "caf\u00e9 ok", "bad \udc80 byte"]
    with pytest.raises(InputError, match=r"texts\[2\] holds a lone surrogate \(U\+DC80 at character 4\)"):
        getattr(encoder, call)(texts)
    assert encoder.embed(texts[:2]).shape[0] == 2, "valid non-ASCII text still passes"


# --- classify -------------------------------------------------------------------------------------------


def test_classify_matches_pytorch_softmax(
    classifier: TinyBundle, original_tokenizer: Tokenizer, english: list[str]
) -> None:
    encoder = Encoder(classifier.path)
    texts = english[:30]
    logits = _torch_outputs(classifier.source, [e.ids for e in original_tokenizer.encode_batch(texts)])
    expected = torch.softmax(torch.from_numpy(np.stack(logits)), dim=1).numpy()
    probabilities = encoder.probabilities(texts, batch_size=8)
    assert probabilities.shape == (30, 3)
    assert np.abs(probabilities - expected).max() <= VS_TORCH
    predictions = encoder.classify(texts)
    assert all(isinstance(p, Prediction) and p.label in LABELS for p in predictions)
    assert [p.label for p in predictions] == [LABELS[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose([p.score for p in predictions], expected.max(axis=1), atol=VS_TORCH)


def test_classify_on_an_embedding_bundle_says_to_embed(encoder: Encoder) -> None:
    with pytest.raises(
        BundleError, match=r"is a feature-extraction model, so classify\(\) does not apply: use embed\(\)"
    ):
        encoder.classify(["hello"])


def test_embed_on_a_classifier_bundle_says_to_classify(classifier: TinyBundle) -> None:
    with pytest.raises(
        BundleError, match=r"is a text-classification model, so embed\(\) does not apply: use classify\(\)"
    ):
        Encoder(classifier.path).embed(["hello"])


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda e: e.embed("a single text"),
            r"texts must be a list of strings, got a single str: wrap it in a list",
        ),
        (lambda e: e.embed([]), r"texts is empty"),
        (lambda e: e.embed(["fine", 3]), r"texts\[1\] is int, not str"),
        (lambda e: e.embed(["fine", None]), r"texts\[1\] is NoneType, not str"),
        (lambda e: e.embed(None), r"texts must be a list of strings, got NoneType"),
        (lambda e: e.embed({"a": 1}), r"texts must be a list of strings, got dict"),
        (lambda e: e.embed(["x"], batch_size=0), r"batch_size must be a positive integer, got 0"),
        (
            lambda e: e.embed(["x"], prompt="document"),
            r"prompt 'document' is not one of this bundle's prompts \('query', 'passage'\)",
        ),
        (lambda e: e.embed(["x"], normalize="yes"), r"normalize must be True, False or None"),
    ],
)
def test_bad_input_is_named(encoder: Encoder, call, message: str) -> None:
    with pytest.raises(InputError, match=message) as raised:
        call(encoder)
    assert isinstance(raised.value, LangtrimError)


def test_embed_accepts_a_tuple_or_generator(encoder: Encoder) -> None:
    texts = ("one", "two")
    np.testing.assert_allclose(encoder.embed(texts), encoder.embed(t for t in texts), atol=SAME_BUNDLE)  # type: ignore[arg-type]


def test_a_pinned_digest_loads_that_bundle_only(bert: TinyBundle, tmp_path: Path) -> None:
    digest = bundle_digest(bert.path)
    assert Encoder(bert.path, expected_digest=digest).embed(["pinned"]).shape == (1, 32)
    changed = copy_bundle(bert, tmp_path)
    manifest = changed / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"normalize": true', '"normalize": false'))
    with pytest.raises(BundleError, match="was pinned"):
        Encoder(changed, expected_digest=digest)


def test_threads_must_be_positive(bert: TinyBundle) -> None:
    with pytest.raises(InputError, match=r"threads must be a positive integer or None, got 0"):
        Encoder(bert.path, threads=0)


def test_one_encoder_serves_several_threads(encoder: Encoder, english: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    expected = encoder.embed(english[:200])

    def embed_slice(start: int) -> float:
        return float(
            np.abs(
                encoder.embed(english[start : start + 50], batch_size=7) - expected[start : start + 50]
            ).max()
        )

    with ThreadPoolExecutor(4) as pool:
        assert max(pool.map(embed_slice, [0, 50, 100, 150] * 3)) <= SAME_BUNDLE


def test_outputs_of_a_classifier_are_its_probabilities(classifier: TinyBundle, english: list[str]) -> None:
    encoder = Encoder(classifier.path, verify="size")
    texts = english[:10]
    outputs = encoder.outputs(encoder.tokenize(texts).ids)
    np.testing.assert_allclose(outputs, encoder.probabilities(texts), atol=SAME_BUNDLE)
