"""Tiny random-weight pair and token classifiers of each family, with the real vocabularies (mBERT's
WordPiece, XLM-R's Unigram): what tests of rerankers, NLI classifiers and NER models pack and compare."""

import json
from pathlib import Path

from tests.conftest import E5_TOKENIZER, _save_tiny
from tests.support.bundles import pack_small

NER_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
NLI_LABELS = ("entailment", "neutral", "contradiction")
_SMALL = dict(num_hidden_layers=2, num_attention_heads=2, hidden_size=32, intermediate_size=64)
_FAMILIES = {
    "mbert": ("Bert", dict(vocab_size=119_547, pad_token_id=0, **_SMALL)),
    "distilmbert": (
        "DistilBert",
        dict(vocab_size=119_547, pad_token_id=0, n_layers=2, n_heads=2, dim=32, hidden_dim=64),
    ),
    "xlmr": (
        "XLMRoberta",
        dict(
            vocab_size=250_002,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            max_position_embeddings=514,
            **_SMALL,
        ),
    ),
}
# name -> (family, head, labels)
TASK_MODELS = {
    "xlmr-reranker": ("xlmr", "ForSequenceClassification", ("LABEL_0",)),
    "mbert-nli": ("mbert", "ForSequenceClassification", NLI_LABELS),
    "distilmbert-nli": ("distilmbert", "ForSequenceClassification", NLI_LABELS),
    "mbert-ner": ("mbert", "ForTokenClassification", NER_LABELS),
    "distilmbert-ner": ("distilmbert", "ForTokenClassification", NER_LABELS),
    "xlmr-ner": ("xlmr", "ForTokenClassification", NER_LABELS),
    "xlmr-qa": ("xlmr", "ForQuestionAnswering", ("LABEL_0", "LABEL_1")),
}


def xlmr_tokenizer_dir(root: Path) -> Path:
    out = root / "xlmr-tokenizer"
    out.mkdir(exist_ok=True)
    (out / "tokenizer.json").write_bytes(E5_TOKENIZER.read_bytes())
    (out / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": 512})
    )
    return out


def build_task_model(name: str, root: Path, mbert_tokenizer_dir: Path) -> Path:
    """The model `name` of TASK_MODELS, saved (safetensors) with its tokenizer under `root`."""
    family, head, labels = TASK_MODELS[name]
    prefix, config = _FAMILIES[family]
    tokenizer = xlmr_tokenizer_dir(root) if family == "xlmr" else mbert_tokenizer_dir
    config = {
        **config,
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }
    out = _save_tiny(root / name, f"{prefix}{head}", f"{prefix}Config", config, tokenizer)
    if family == "distilmbert":  # DistilBERT's tokenizer class gives no token types, which it does not take
        settings = json.loads((out / "tokenizer_config.json").read_text())
        (out / "tokenizer_config.json").write_text(
            json.dumps({**settings, "tokenizer_class": "DistilBertTokenizerFast"})
        )
    return out


def pack_task_bundle(model_dir: Path, sentences, tmp_path_factory, languages: str = "fr") -> Path:
    """`model_dir` cut to `languages` and packed in fp32, once per session; the report is what the tests read."""
    out = tmp_path_factory.getbasetemp() / "task-bundles" / f"{model_dir.name}-{languages.replace(',', '-')}"
    return pack_small(model_dir, out, sentences, languages=languages)
