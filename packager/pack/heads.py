"""Which task head a model carries, whether langtrim can keep it, and whether the model reads text pairs.

langtrim keeps a sequence-classification head (task "text-classification": classifiers, rerankers, NLI)
and a token-classification head ("token-classification": NER), and packs a bare encoder or a masked-LM
(whose vocabulary-sized decoder is no part of the vectors) as "feature-extraction". Any other head (question
answering, multiple choice, causal LM, ...) would be dropped without a word, so it is refused.

A sequence classifier reads text pairs when it is a reranker (one label: text-embeddings-inference's rule)
or a natural-language-inference model (entailment / contradiction labels); `--pairs` says so for others.
"""

from collections.abc import Mapping
from typing import Any

from langtrim.packager.errors import UnsupportedModelError
from langtrim.runtime.bundle import (
    FEATURE_EXTRACTION,
    TEXT_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    PairTruncation,
)

# config.architectures suffix -> the task that keeps the head.
_KEPT_HEADS = {
    "ForSequenceClassification": TEXT_CLASSIFICATION,
    "ForTokenClassification": TOKEN_CLASSIFICATION,
}
# Heads that are no part of an encoder's output: packing without them loses nothing the runtime serves.
_DROPPED_HEADS = ("ForMaskedLM", "ForPreTraining")
_NLI_LABELS = frozenset({"entailment", "contradiction"})


def head_task(config: Mapping[str, Any], model_name: str = "the model") -> str:
    """The task that keeps the model's head; UnsupportedModelError, in one line, for a head langtrim would drop."""
    architectures = [str(name) for name in config.get("architectures") or []]
    for name in architectures:
        for suffix, task in _KEPT_HEADS.items():
            if name.endswith(suffix):
                return task
    for name in architectures:
        head = name[name.find("For") :] if "For" in name else ""
        if head and head not in _DROPPED_HEADS:
            raise UnsupportedModelError(
                f"{model_name!r} is a {name}, whose {head[3:]} head langtrim cannot keep: it packs "
                "sequence-classification (classifiers, rerankers, NLI) and token-classification (NER) heads, "
                "and bare or masked-LM encoders as feature extraction; save the base model "
                "(model.base_model.save_pretrained) to pack its encoder"
            )
    return FEATURE_EXTRACTION


def labels_of(config: Mapping[str, Any]) -> list[str]:
    """config.id2label's names in logit order."""
    return [label for _, label in sorted((int(k), str(v)) for k, v in (config.get("id2label") or {}).items())]


def pair_truncation_of(
    config: Mapping[str, Any], task: str, pairs: bool | None = None
) -> PairTruncation | None:
    """How the bundle cuts a long pair, or None for a model of single texts.

    `pairs` None decides from the labels: one label is a reranker (the query stays whole: "only_second"),
    NLI labels a premise/hypothesis classifier ("longest_first", what its tokenizer does by default).
    """
    if task != TEXT_CLASSIFICATION:
        if pairs:
            raise UnsupportedModelError(
                f"--pairs needs a sequence-classification model, and this one is {task}"
            )
        return None
    labels = labels_of(config)
    reranker = len(labels) == 1
    if pairs is None:
        pairs = reranker or bool(_NLI_LABELS & {label.lower() for label in labels})
    if not pairs:
        return None
    return "only_second" if reranker else "longest_first"
