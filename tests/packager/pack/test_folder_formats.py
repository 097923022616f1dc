"""A bundle is also a sentence-transformers folder and a Hugging Face ONNX folder, from the manifest's fields."""

import json
import shutil
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from langtrim.packager.pack.folder_formats import set_tokenizer_limits, write_folder_files
from langtrim.runtime import Encoder, read_manifest
from langtrim.runtime.bundle import (
    ST_CONFIG_FILE,
    ST_MODEL_CONFIG_FILE,
    ST_MODULES_FILE,
    ST_POOLING_FILE,
    TOKENIZER_FILE,
)
from tests.conftest import MINILM_DIR
from tests.support.bundles import tiny_bundle
from tests.support.server import packed_bundle

ST_FILES = (ST_MODULES_FILE, ST_POOLING_FILE, ST_CONFIG_FILE, ST_MODEL_CONFIG_FILE)


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bundle(tiny_models, sentences, tmp_path_factory) -> Path:
    return packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)


def test_a_packed_bundle_lists_and_hashes_the_sentence_transformers_files(bundle: Path) -> None:
    manifest = read_manifest(bundle, verify="full")
    assert set(ST_FILES) <= set(manifest.files)
    modules = _json(bundle / ST_MODULES_FILE)
    assert [(m["path"], m["type"].rsplit(".", 1)[-1]) for m in modules] == [
        ("", "Transformer"),
        ("1_Pooling", "Pooling"),
        *([("2_Normalize", "Normalize")] if manifest.normalize else []),
    ]
    pooling = _json(bundle / ST_POOLING_FILE)
    assert pooling["pooling_mode_mean_tokens"] is (manifest.pooling == "mean")
    assert pooling["pooling_mode_cls_token"] is (manifest.pooling == "cls")
    assert pooling["word_embedding_dimension"] == Encoder(bundle).dimension
    assert _json(bundle / ST_CONFIG_FILE)["prompts"] == dict(manifest.prompts)
    assert _json(bundle / ST_MODEL_CONFIG_FILE)["max_seq_length"] == manifest.max_length


def test_a_packed_bundles_tokenizer_truncates_to_max_length_and_does_not_pad(bundle: Path, sentences) -> None:
    manifest = read_manifest(bundle)
    tokenizer = Tokenizer.from_file(str(bundle / TOKENIZER_FILE))
    short, long = tokenizer.encode_batch(["Bonjour.", " ".join(sentences("fr")[:200])])
    assert len(long.ids) == manifest.max_length
    assert len(short.ids) == sum(short.attention_mask) < 10  # its true length: usage is counted so


@pytest.mark.parametrize(
    ("pooling", "normalize", "prompts"),
    [("cls", False, {}), ("mean", True, {"query": "query: ", "passage": "passage: "})],
)
def test_the_files_follow_the_manifests_pooling_normalisation_and_prompts(
    tmp_path: Path, pooling, normalize, prompts
) -> None:
    shutil.copy2(MINILM_DIR / TOKENIZER_FILE, tmp_path / TOKENIZER_FILE)
    write_folder_files(
        tmp_path,
        task="feature-extraction",
        pooling=pooling,
        normalize=normalize,
        max_length=300,
        prompts=prompts,
        dimension=384,
    )
    types = [module["type"] for module in _json(tmp_path / ST_MODULES_FILE)]
    assert ("sentence_transformers.models.Normalize" in types) is normalize
    pooling_config = _json(tmp_path / ST_POOLING_FILE)
    assert [key for key, value in pooling_config.items() if value is True] == [
        "pooling_mode_cls_token" if pooling == "cls" else "pooling_mode_mean_tokens"
    ]
    assert _json(tmp_path / ST_CONFIG_FILE)["prompts"] == prompts
    assert _json(tmp_path / ST_MODEL_CONFIG_FILE) == {"max_seq_length": 300, "do_lower_case": False}
    assert not (tmp_path / "2_Normalize").exists()  # Normalize has no files, and a bundle lists only files


def test_a_classifier_gets_the_tokenizer_limits_but_no_sentence_transformers_modules(tmp_path: Path) -> None:
    shutil.copy2(MINILM_DIR / TOKENIZER_FILE, tmp_path / TOKENIZER_FILE)
    write_folder_files(
        tmp_path,
        task="text-classification",
        pooling="mean",
        normalize=True,
        max_length=64,
        prompts={},
        dimension=384,
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == [TOKENIZER_FILE]
    assert Tokenizer.from_file(str(tmp_path / TOKENIZER_FILE)).truncation["max_length"] == 64


def test_a_sources_fixed_padding_and_shorter_cut_give_way_to_the_bundles(tmp_path: Path) -> None:
    """all-MiniLM-L6-v2's tokenizer.json pads every text to 128 and cuts at 128."""
    path = tmp_path / TOKENIZER_FILE
    shutil.copy2(MINILM_DIR / TOKENIZER_FILE, path)
    assert Tokenizer.from_file(str(path)).padding["length"] == 128
    set_tokenizer_limits(path, 512)
    tokenizer = Tokenizer.from_file(str(path))
    short, longer = tokenizer.encode_batch(["Hi.", "word " * 600])
    assert (len(short.ids), len(longer.ids)) == (4, 512)
    assert tokenizer.padding is None


def test_a_bundle_packed_before_these_files_still_loads(tmp_path_factory) -> None:
    old = tiny_bundle(tmp_path_factory, "bert")  # written without the sentence-transformers files
    assert not any((old.path / name).exists() for name in ST_FILES)
    assert Encoder(old.path).embed(["a text"]).shape == (1, 32)
