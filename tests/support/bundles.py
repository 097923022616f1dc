"""Tiny real bundles for the runtime's tests: a random-weight BERT (vocab 30,522, hidden 32, 2 layers) with
the real all-MiniLM-L6-v2 WordPiece tokenizer, exported to ONNX with optimum.

`tiny_bundle` builds each kind once per session; tests that change a bundle work on `copy_bundle`.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.runtime import Manifest
from langtrim.runtime.bundle import (
    ID_MAP_FILE,
    TOKENIZER_FILE,
    Quantization,
    SelectionRecord,
    SourceModel,
    VocabSizes,
    write_manifest,
)
from tests.conftest import MINILM_DIR

TINY_BERT = dict(
    vocab_size=30_522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
)
LABELS = ("negative", "neutral", "positive")
MAX_LENGTH = 128
UNK_ORIGINAL_ID = 100  # [UNK] in the MiniLM (bert-base-uncased) vocabulary


@dataclass(frozen=True)
class TinyBundle:
    path: Path  # the bundle
    source: Path  # the PyTorch model it was exported from (trimmed for "bert-trimmed"), for reference outputs
    manifest: Manifest


def manifest_fields(kind: str, kept_size: int = 30_522) -> dict:
    """The arguments `langtrim pack` would give write_manifest for a bundle of this kind."""
    classifier = kind == "bert-classifier"
    return dict(
        source=SourceModel(
            name="tiny-bert",
            description="random-weight BERT with the all-MiniLM-L6-v2 tokenizer",
            sha256="0" * 64,
        ),
        languages=["en"],
        selection=SelectionRecord(
            settings={"threshold": 0.0, "fallback": False, "keep_texts": ["query: "]},
            sources={"en": "corpus tatoeba en.txt (250 lines)"},
        ),
        vocab=VocabSizes(original_size=30_522, kept_size=kept_size),
        quantization=Quantization(mode="none", embeddings="fp32"),
        task="text-classification" if classifier else "feature-extraction",
        pooling="cls" if kind == "distilbert" else "mean",
        normalize=kind != "distilbert",
        max_length=MAX_LENGTH,
        prompts={} if classifier else {"query": "query: ", "passage": "passage: "},
        labels=LABELS if classifier else (),
    )


def _kept_ids_for_english(tokenizer: Tokenizer) -> np.ndarray:
    """The tokens of the first 250 shipped English sentences, the special tokens and the prompt's pieces."""
    from langtrim.packager.models.tokenizer import special_token_ids
    from langtrim.packager.shipped_text import shipped_sentences

    english = shipped_sentences("en")
    assert english
    ids = {i for encoding in tokenizer.encode_batch([*english[:250], "query: "]) for i in encoding.ids}
    return np.asarray(sorted(ids | set(special_token_ids(tokenizer))), dtype=np.int64)


def _build(root: Path, kind: str) -> TinyBundle:
    import torch
    import transformers
    from optimum.exporters.onnx import main_export

    from langtrim.packager.trim.surgery import trim_model
    from langtrim.packager.trim.tokenizer_remap import IdMap, remap_tokenizer

    torch.manual_seed(0)
    if kind == "bert-classifier":
        config = transformers.BertConfig(
            **TINY_BERT,
            num_labels=3,
            id2label=dict(enumerate(LABELS)),
            label2id={n: i for i, n in enumerate(LABELS)},
        )
        model = transformers.BertForSequenceClassification(config)
    elif kind == "distilbert":  # a graph without token_type_ids
        model = transformers.DistilBertModel(
            transformers.DistilBertConfig(vocab_size=30_522, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
        )
    else:
        model = transformers.BertModel(transformers.BertConfig(**TINY_BERT))
    model.eval()
    tokenizer = Tokenizer.from_file(str(MINILM_DIR / TOKENIZER_FILE))
    if kind == "bert-trimmed":
        tokenizer, id_map = remap_tokenizer(tokenizer, _kept_ids_for_english(tokenizer))
        trim_model(model, id_map)
    else:
        id_map = IdMap(kept_ids=np.arange(30_522), original_vocab_size=30_522, unk_id=UNK_ORIGINAL_ID)

    source, bundle = root / f"{kind}-source", root / kind
    model.save_pretrained(source, safe_serialization=True)
    tokenizer.save(str(source / TOKENIZER_FILE))
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy2(MINILM_DIR / name, source / name)
    task = "text-classification" if kind == "bert-classifier" else "feature-extraction"
    main_export(str(source), output=str(bundle), task=task, do_validation=False)
    tokenizer.save(str(bundle / TOKENIZER_FILE))  # the bundle's tokenizer is ours, not optimum's re-save
    (bundle / ID_MAP_FILE).write_text(id_map.to_json(), encoding="utf-8")
    manifest = write_manifest(bundle, **manifest_fields(kind, kept_size=len(id_map.kept_ids)))
    return TinyBundle(bundle, source, manifest)


_built: dict[str, TinyBundle] = {}


def tiny_bundle(factory: pytest.TempPathFactory, kind: str) -> TinyBundle:
    """A bundle of `kind` ("bert", "bert-trimmed", "bert-classifier", "distilbert"), built once per session.

    Exporting takes about a second per kind. Do not change the returned bundle: copy it (`copy_bundle`).
    """
    if kind not in _built:
        _built[kind] = _build(factory.mktemp("bundles"), kind)
    return _built[kind]


def copy_bundle(bundle: TinyBundle, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.path, copy)
    return copy


def pack_small(model_dir: Path, out: Path, sentences, variant=None, languages: str = "fr") -> Path:
    """`model_dir` cut to `languages` (400 Tatoeba sentences each, every token they use) and packed into
    `out` (fp32 unless `variant` says otherwise), unless `out` already holds a bundle; parity gates open:
    random weights, parity is not what these bundles are for."""
    from langtrim.packager.counting.inputs import CorpusSpec
    from langtrim.packager.models.sources import ModelSource
    from langtrim.packager.pack.job import run_pack
    from langtrim.packager.pack.parity import Gates
    from langtrim.packager.pack.quantize import VariantSettings
    from langtrim.packager.selection.choose import SelectionSettings
    from langtrim.packager.selection.languages import parse_languages
    from langtrim.runtime.bundle import MANIFEST_FILE

    if (out / MANIFEST_FILE).is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    corpora = []
    for language in languages.split(","):
        corpus = out.parent / f"{out.name}-{language}.txt"
        corpus.write_text("\n".join(sentences(language)[:400]), encoding="utf-8")
        corpora.append(CorpusSpec(language, (str(corpus),)))
    run_pack(
        ModelSource(model_dir, model_dir.name, "test model", is_default=False),
        parse_languages(languages),
        out=out,
        corpora=corpora,
        settings=SelectionSettings(threshold=0.0),
        variant=variant or VariantSettings("none", "fp32", "none"),
        gates=Gates(0.0, 0.0, 1.0, 100.0, 0.0, 0.0, 0.0),
    )
    return out
