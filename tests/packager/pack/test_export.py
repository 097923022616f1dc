"""ONNX export and the served variants: the graph computes what PyTorch computes, within stated tolerances.

Fast tests use small random-weight models built here with real tokenizers (all-MiniLM-L6-v2's WordPiece and
the multilingual-e5 / XLM-R Unigram) and run on the shipped Tatoeba sentences. Slow tests use the trimmed
default model (multilingual-e5-small cut to en,fr,de) as `langtrim trim` makes it.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tokenizers import Tokenizer

from langtrim.packager.errors import ModelSourceError, SelectionError, UnsupportedModelError
from langtrim.packager.pack.calibration import calibration_ids
from langtrim.packager.pack.export import ExportResult, export_onnx
from langtrim.packager.pack.quantize import (
    DEFAULT_VARIANT,
    VariantResult,
    VariantSettings,
    build_onnx_variant,
    optimize_onnx,
    quantize_onnx,
)
from langtrim.packager.shipped_text import shipped_sentences
from langtrim.runtime.errors import UsageError
from tests.conftest import E5_TOKENIZER, MINILM_DIR

TINY = dict(num_hidden_layers=2, num_attention_heads=2, hidden_size=32, intermediate_size=64)
FP32_TOLERANCE = 1e-4  # max |ONNX - PyTorch| of last_hidden_state, float32 on CPU
MIN_MEAN_COSINE = 0.99  # per language, pooled embeddings of a quantized variant vs PyTorch


# ---------------------------------------------------------------- fixtures: models, text, runners


def _save_tiny(
    out: Path, model_class: str, config_class: str, config: dict, tokenizer_files: list[Path]
) -> Path:
    import transformers

    torch.manual_seed(0)
    model = getattr(transformers, model_class)(getattr(transformers, config_class)(**config)).eval()
    model.save_pretrained(out, safe_serialization=True)
    for path in tokenizer_files:
        shutil.copy2(path, out / path.name)
    return out


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BertModel with random weights and the real all-MiniLM-L6-v2 WordPiece tokenizer."""
    files = [
        MINILM_DIR / name for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
    ]
    return _save_tiny(
        tmp_path_factory.mktemp("tiny-bert"), "BertModel", "BertConfig", dict(vocab_size=30522, **TINY), files
    )


@pytest.fixture(scope="module")
def tiny_xlmr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer XLMRobertaModel with the real multilingual-e5 tokenizer and an 8,000-row embedding table.

    Token ids past the table become <unk> (3) in `_encode(max_id=...)`, as in a trimmed model's tokenizer.
    """
    out = tmp_path_factory.mktemp("tiny-xlmr")
    config = dict(
        vocab_size=8000, pad_token_id=1, bos_token_id=0, eos_token_id=2, max_position_embeddings=514
    )
    _save_tiny(out, "XLMRobertaModel", "XLMRobertaConfig", {**config, **TINY}, [E5_TOKENIZER])
    return out


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = [MINILM_DIR / "tokenizer.json"]
    config = dict(vocab_size=30522, num_labels=3, **TINY)
    return _save_tiny(
        tmp_path_factory.mktemp("tiny-cls"), "BertForSequenceClassification", "BertConfig", config, files
    )


@pytest.fixture(scope="module")
def tiny_bert_onnx(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_onnx(tiny_bert, tmp_path_factory.mktemp("tiny-bert-onnx"))


def _sentences(languages: tuple[str, ...] = ("en", "fr", "de"), per_language: int = 16) -> list[str]:
    found = []
    for language in languages:
        sentences = shipped_sentences(language)
        assert sentences, f"no shipped sentences for {language}"
        found += sentences[:per_language]
    return found


def _encode(model_dir: Path, texts: list[str], *, length: int | None = None, max_id: int | None = None):
    """int64 inputs for `texts`, padded to the longest (or cut and padded to `length`)."""
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    pad_id = tokenizer.token_to_id("[PAD]") if tokenizer.token_to_id("[PAD]") is not None else 1
    tokenizer.enable_truncation(length or 512)
    tokenizer.enable_padding(pad_id=pad_id, length=length)
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    if max_id is not None:
        ids[ids >= max_id] = tokenizer.token_to_id("<unk>")
    return {
        "input_ids": ids,
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.zeros_like(ids),
    }


def _run_onnx(
    onnx_path: Path, inputs: dict[str, np.ndarray], output: str = "last_hidden_state"
) -> np.ndarray:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {i.name: inputs[i.name] for i in session.get_inputs()}
    return session.run([output], feeds)[0]


@lru_cache(maxsize=4)
def _torch_model(model_dir: Path, classifier: bool) -> torch.nn.Module:
    from transformers import AutoModel, AutoModelForSequenceClassification

    loader = AutoModelForSequenceClassification if classifier else AutoModel
    return loader.from_pretrained(model_dir, use_safetensors=True).eval()


def _run_torch(model_dir: Path, inputs: dict[str, np.ndarray], *, classifier: bool = False) -> np.ndarray:
    model = _torch_model(model_dir, classifier)
    feeds = {name: torch.from_numpy(value) for name, value in inputs.items()}
    with torch.inference_mode():
        out = model(**feeds)
    return (out.logits if classifier else out.last_hidden_state).numpy()


def _pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def _only_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# ---------------------------------------------------------------- export


def test_export_matches_pytorch_on_real_sentences(tiny_bert: Path, tiny_bert_onnx: ExportResult) -> None:
    inputs = _encode(tiny_bert, _sentences())
    expected = _run_torch(tiny_bert, inputs)
    got = _run_onnx(tiny_bert_onnx.onnx_path, inputs)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= FP32_TOLERANCE


@pytest.mark.parametrize("length", [7, 40])
def test_export_has_dynamic_batch_and_sequence_axes(
    tiny_bert: Path, tiny_bert_onnx: ExportResult, length: int
) -> None:
    texts = ["Hi.", "Le chat dort sur le canapé depuis ce matin.", "Ich weiß es nicht."]
    inputs = _encode(tiny_bert, texts, length=length)
    assert inputs["input_ids"].shape == (3, length)
    assert inputs["attention_mask"].min() == 0, "the batch should contain padding"
    got = _run_onnx(tiny_bert_onnx.onnx_path, inputs)
    assert got.shape == (3, length, TINY["hidden_size"])
    assert np.abs(got - _run_torch(tiny_bert, inputs)).max() <= FP32_TOLERANCE


def test_export_reports_names_task_and_writes_only_the_graph(tiny_bert_onnx: ExportResult) -> None:
    assert tiny_bert_onnx.task == "feature-extraction"
    assert tiny_bert_onnx.input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert tiny_bert_onnx.output_names == ("last_hidden_state",)
    assert _only_files(tiny_bert_onnx.onnx_path.parent) == ["model.onnx"]


def test_exported_graph_passes_onnx_checker(tiny_bert_onnx: ExportResult) -> None:
    onnx.checker.check_model(str(tiny_bert_onnx.onnx_path), full_check=True)


def test_xlm_roberta_export_matches_pytorch(tiny_xlmr: Path, tmp_path: Path) -> None:
    result = export_onnx(tiny_xlmr, tmp_path)
    inputs = _encode(tiny_xlmr, _sentences(), max_id=8000)
    assert result.input_names == ("input_ids", "attention_mask")
    got = _run_onnx(result.onnx_path, inputs)
    assert np.abs(got - _run_torch(tiny_xlmr, inputs)).max() <= FP32_TOLERANCE


def test_classification_head_exports_logits(tiny_classifier: Path, tmp_path: Path) -> None:
    result = export_onnx(tiny_classifier, tmp_path)
    assert result.task == "text-classification"
    assert result.output_names == ("logits",)
    inputs = _encode(tiny_classifier, _sentences(per_language=4))
    got = _run_onnx(result.onnx_path, inputs, output="logits")
    assert got.shape == (len(inputs["input_ids"]), 3)
    assert np.abs(got - _run_torch(tiny_classifier, inputs, classifier=True)).max() <= FP32_TOLERANCE


def test_export_of_missing_directory_says_to_trim_first(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="does not exist: run langtrim trim"):
        export_onnx(tmp_path / "nowhere", tmp_path / "out")


def test_export_refuses_pickle_weights(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=100, **TINY)).save_pretrained(
        tmp_path / "model", safe_serialization=False
    )
    with pytest.raises(ModelSourceError, match="no .safetensors weights .* safetensors only"):
        export_onnx(tmp_path / "model", tmp_path / "out")


def test_classification_task_without_a_head_names_the_architecture(tiny_bert: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"no sequence-classification head .*BertModel"):
        export_onnx(tiny_bert, tmp_path, task="sequence-classification")


def test_unknown_task_lists_the_known_ones(tiny_bert: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown export task 'fill-mask': use one of feature-extraction"):
        export_onnx(tiny_bert, tmp_path, task="fill-mask")


# ---------------------------------------------------------------- optimize and quantize (tiny model)


def test_fused_optimization_keeps_parity(
    tiny_bert: Path, tiny_bert_onnx: ExportResult, tmp_path: Path
) -> None:
    result = optimize_onnx(
        tiny_bert_onnx.onnx_path, tmp_path / "fused.onnx", level="fused", num_heads=2, hidden_size=32
    )
    assert result.fused_operators.get("Attention") == TINY["num_hidden_layers"]
    inputs = _encode(tiny_bert, _sentences())
    assert np.abs(_run_onnx(result.onnx_path, inputs) - _run_torch(tiny_bert, inputs)).max() <= FP32_TOLERANCE


def test_basic_optimization_keeps_parity(
    tiny_bert: Path, tiny_bert_onnx: ExportResult, tmp_path: Path
) -> None:
    result = optimize_onnx(tiny_bert_onnx.onnx_path, tmp_path / "basic.onnx", level="basic")
    assert result.fused_operators == {}
    inputs = _encode(tiny_bert, _sentences())
    assert np.abs(_run_onnx(result.onnx_path, inputs) - _run_torch(tiny_bert, inputs)).max() <= FP32_TOLERANCE


def test_per_row_embeddings_store_int8_rows_and_stay_close(
    tiny_bert: Path, tiny_bert_onnx: ExportResult, tmp_path: Path
) -> None:
    result = quantize_onnx(
        tiny_bert_onnx.onnx_path, tmp_path / "rows.onnx", mode="none", embeddings="per-row"
    )
    assert result.word_embedding == "embeddings.word_embeddings.weight"
    graph = onnx.load(str(result.onnx_path)).graph
    tables = {t.name: t for t in graph.initializer}
    assert "embeddings.word_embeddings.weight" not in tables
    assert tables["embeddings.word_embeddings.weight_int8_rows"].data_type == onnx.TensorProto.INT8
    assert list(tables["embeddings.word_embeddings.weight_row_scales"].dims) == [30522, 1]
    inputs = _encode(tiny_bert, _sentences())
    expected = _pooled(_run_torch(tiny_bert, inputs), inputs["attention_mask"])
    got = _pooled(_run_onnx(result.onnx_path, inputs), inputs["attention_mask"])
    assert (expected * got).sum(axis=1).min() >= 0.999


@pytest.mark.parametrize("embeddings", ["fp32", "per-tensor", "per-row"])
def test_int8_variant_is_smaller_and_leaves_no_temporary_files(
    tiny_bert_onnx: ExportResult, tmp_path: Path, embeddings: str
) -> None:
    dst = tmp_path / "variant" / "model.onnx"
    settings = VariantSettings("int8-dynamic", embeddings, "fused")  # type: ignore[arg-type]
    result = build_onnx_variant(
        tiny_bert_onnx.onnx_path, dst, settings, config={"model_type": "bert", **TINY}
    )
    data = dst.with_name("model.onnx.data")  # the weights, which onnxruntime maps instead of copying
    assert (
        result.file_bytes
        == dst.stat().st_size + data.stat().st_size
        < tiny_bert_onnx.onnx_path.stat().st_size
    )
    assert _only_files(dst.parent) == ["model.onnx", "model.onnx.data"]
    op_types = {node.op_type for node in onnx.load(str(dst)).graph.node}
    assert {"QAttention", "MatMulInteger"} <= op_types


def test_int8_without_calibration_sentences_says_what_to_do(
    tiny_bert_onnx: ExportResult, tmp_path: Path
) -> None:
    with pytest.raises(SelectionError, match="needs calibration sentences"):
        quantize_onnx(tiny_bert_onnx.onnx_path, tmp_path / "q.onnx", mode="int8")


def test_quantizing_a_graph_with_fused_embeddings_says_what_to_do(
    tiny_bert_onnx: ExportResult, tmp_path: Path
) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(str(tiny_bert_onnx.onnx_path), model_type="bert", num_heads=2, hidden_size=32)
    fused.save_model_to_file(str(tmp_path / "embed-fused.onnx"))
    with pytest.raises(UnsupportedModelError, match="EmbedLayerNormalization.*--quantize-embeddings fp32"):
        quantize_onnx(tmp_path / "embed-fused.onnx", tmp_path / "q.onnx", embeddings="per-row")


def test_bad_variant_setting_names_the_option() -> None:
    with pytest.raises(
        UsageError, match="--quantize-embeddings 'per-channel' is not one of fp32, per-tensor"
    ):
        VariantSettings("int8", "per-channel", "fused")  # type: ignore[arg-type]


def test_fused_optimization_refuses_an_unknown_model_type(
    tiny_bert_onnx: ExportResult, tmp_path: Path
) -> None:
    with pytest.raises(UnsupportedModelError, match="model_type 'gpt2'.*--optimize basic or none"):
        build_onnx_variant(
            tiny_bert_onnx.onnx_path,
            tmp_path / "m.onnx",
            VariantSettings("int8", "per-row", "fused"),
            config={"model_type": "gpt2"},
        )


@pytest.mark.parametrize("mode", ["int8", "int8-dynamic"])
def test_int8_weights_use_seven_bits(
    tiny_bert: Path, tiny_bert_onnx: ExportResult, tmp_path: Path, mode: str
) -> None:
    """reduce_range: |w| <= 64 keeps u8*s8 pairs from saturating int16 on x86 CPUs without VNNI."""
    from onnx import numpy_helper

    dst = tmp_path / "int8.onnx"
    ids = calibration_ids(tiny_bert / "tokenizer.json", ["en"], [], 128)
    build_onnx_variant(tiny_bert_onnx.onnx_path, dst, VariantSettings(mode), calibration_ids=ids)  # type: ignore[arg-type]
    graph = onnx.load(str(dst)).graph
    assert {"MatMulInteger", "MatMulIntegerToFloat"} & {node.op_type for node in graph.node}
    matmul_weights = [
        numpy_helper.to_array(t)
        for t in graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2 and not t.name.endswith("_int8_rows")
    ]
    layer_weights = 4 if mode == "int8" else 6  # int8: query, key and value as one (fewer_nodes.py)
    assert len(matmul_weights) == layer_weights * TINY["num_hidden_layers"]
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in matmul_weights) <= 64


@pytest.mark.parametrize(("mode", "bits"), [("int8-block", 8), ("int4", 4)])
def test_weight_only_modes_use_matmulnbits_and_stay_close(
    tiny_bert: Path, tiny_bert_onnx: ExportResult, tmp_path: Path, mode: str, bits: int
) -> None:
    pytest.importorskip("onnx_ir", reason="onnxruntime's MatMulNBitsQuantizer needs onnx-ir")
    dst = tmp_path / f"{mode}.onnx"
    build_onnx_variant(tiny_bert_onnx.onnx_path, dst, VariantSettings(mode, "per-row", "basic"))  # type: ignore[arg-type]
    nbits = [n for n in onnx.load(str(dst)).graph.node if n.op_type == "MatMulNBits"]
    assert nbits and all(onnx.helper.get_node_attr_value(n, "bits") == bits for n in nbits)
    inputs = _encode(tiny_bert, _sentences())
    expected = _pooled(_run_torch(tiny_bert, inputs), inputs["attention_mask"])
    got = _pooled(_run_onnx(dst, inputs), inputs["attention_mask"])
    assert (expected * got).sum(axis=1).mean() >= (0.999 if bits == 8 else 0.99)


def test_weight_only_modes_without_onnx_ir_say_what_to_install(
    tiny_bert_onnx: ExportResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx_ir", None)  # makes `import onnx_ir` fail as if not installed
    monkeypatch.delitem(sys.modules, "onnxruntime.quantization.matmul_nbits_quantizer", raising=False)
    with pytest.raises(UsageError, match="need the 'onnx_ir' package.*pip install onnx-ir"):
        quantize_onnx(tiny_bert_onnx.onnx_path, tmp_path / "q.onnx", mode="int4")


# ---------------------------------------------------------------- the trimmed default model (slow)


@pytest.fixture(scope="session")
def trimmed_default_onnx(trimmed_default: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_onnx(trimmed_default, tmp_path_factory.mktemp("e5-onnx"))


LANGUAGES = ("en", "fr", "de")


Batches = list[dict[str, np.ndarray]]


@pytest.fixture(scope="session")
def e5_inputs(trimmed_default: Path) -> dict[str, Batches]:
    """Each language's shipped Tatoeba sentences with e5's "query: " prefix, in padded batches of 64."""
    found = {}
    for language in LANGUAGES:
        sentences = shipped_sentences(language)
        assert sentences, f"no shipped sentences for {language}"
        texts = ["query: " + s for s in sentences]
        found[language] = [_encode(trimmed_default, texts[i : i + 64]) for i in range(0, len(texts), 64)]
    return found


def _embeddings(run: Callable[[dict[str, np.ndarray]], np.ndarray], batches: Batches) -> np.ndarray:
    return np.concatenate([_pooled(run(batch), batch["attention_mask"]) for batch in batches])


@pytest.fixture(scope="session")
def e5_reference(trimmed_default: Path, e5_inputs: dict[str, Batches]) -> dict[str, np.ndarray]:
    """PyTorch's e5 sentence embeddings: mean-pooled over the attention mask, L2-normalised."""
    return {
        language: _embeddings(lambda batch: _run_torch(trimmed_default, batch), batches)
        for language, batches in e5_inputs.items()
    }


def _mean_cosines(onnx_path: Path, e5_inputs: dict[str, Batches], e5_reference: dict) -> dict[str, float]:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        return session.run(["last_hidden_state"], {name: batch[name] for name in names})[0]

    return {
        language: float((e5_reference[language] * _embeddings(run, batches)).sum(axis=1).mean())
        for language, batches in e5_inputs.items()
    }


@pytest.mark.slow
def test_default_model_export_matches_pytorch(
    trimmed_default: Path, trimmed_default_onnx: ExportResult
) -> None:
    inputs = _encode(trimmed_default, ["query: " + s for s in _sentences(per_language=32)])
    got = _run_onnx(trimmed_default_onnx.onnx_path, inputs)
    assert np.abs(got - _run_torch(trimmed_default, inputs)).max() <= FP32_TOLERANCE


@pytest.mark.slow
def test_default_model_fused_keeps_parity(
    trimmed_default: Path, trimmed_default_onnx: ExportResult, tmp_path: Path
) -> None:
    config = json.loads((trimmed_default / "config.json").read_text())
    dst = tmp_path / "fused.onnx"
    settings = VariantSettings("none", "fp32", "fused")
    result = build_onnx_variant(trimmed_default_onnx.onnx_path, dst, settings, config=config)
    assert result.fused_operators.get("Attention") == 12
    inputs = _encode(trimmed_default, ["query: " + s for s in _sentences(per_language=32)])
    assert np.abs(_run_onnx(dst, inputs) - _run_torch(trimmed_default, inputs)).max() <= FP32_TOLERANCE


@pytest.fixture(scope="module")
def default_variant(
    trimmed_default: Path, trimmed_default_onnx: ExportResult, tmp_path_factory: pytest.TempPathFactory
) -> VariantResult:
    """The trimmed offline default as `pack` builds it by default (int8, per-row embeddings, basic)."""
    config = json.loads((trimmed_default / "config.json").read_text())
    dst = tmp_path_factory.mktemp("default-variant") / "int8.onnx"
    ids = calibration_ids(trimmed_default / "tokenizer.json", LANGUAGES, ["query: ", "passage: "], 512)
    return build_onnx_variant(
        trimmed_default_onnx.onnx_path, dst, DEFAULT_VARIANT, config=config, calibration_ids=ids
    )


@pytest.mark.slow
def test_default_variant_keeps_mean_cosine_per_language(
    default_variant: VariantResult, e5_inputs: dict, e5_reference: dict
) -> None:
    cosines = _mean_cosines(default_variant.onnx_path, e5_inputs, e5_reference)
    assert min(cosines.values()) >= MIN_MEAN_COSINE, cosines


@pytest.mark.slow
def test_default_variant_is_a_third_of_fp32_and_fits_the_budget(
    default_variant: VariantResult, trimmed_default_onnx: ExportResult
) -> None:
    result = default_variant
    assert result.file_bytes < trimmed_default_onnx.onnx_path.stat().st_size / 3
    assert result.file_bytes <= 40e6


@pytest.mark.slow
def test_int8_block_keeps_mean_cosine_above_0999(
    trimmed_default: Path,
    trimmed_default_onnx: ExportResult,
    e5_inputs: dict,
    e5_reference: dict,
    tmp_path: Path,
) -> None:
    pytest.importorskip("onnx_ir", reason="onnxruntime's MatMulNBitsQuantizer needs onnx-ir")
    dst = tmp_path / "int8-block.onnx"
    settings = VariantSettings("int8-block", "per-row", "basic")
    build_onnx_variant(trimmed_default_onnx.onnx_path, dst, settings)
    cosines = _mean_cosines(dst, e5_inputs, e5_reference)
    assert min(cosines.values()) >= 0.999, cosines
