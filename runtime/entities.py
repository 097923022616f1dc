"""Token classification (NER) spans: per-token labels grouped into entities with offsets into the user's text.

The grouping is the transformers pipeline's `aggregation_strategy="simple"`
(`TokenClassificationPipeline.aggregate` and `group_entities`), so a bundle gives the spans that pipeline
gives on the untrimmed model wherever the trimmed tokenizer reproduces the original tokens: each token takes
its most probable label; adjacent tokens of the same tag join unless the later one is a "B-" tag; an
entity's score is the mean of its tokens' scores; entities labelled "O" are dropped. Offsets are
character (code point) offsets into the text as the caller gave it, so `text[start:end]` is the entity: a
prompt's prefix is subtracted, and a truncated text has entities only in the part the model saw.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding, Tokenizer

from langtrim.runtime.tokenizing import encode_each, special_tokens_added

# The label the pipeline ignores by default: "outside any entity".
OUTSIDE = "O"


@dataclass(frozen=True)
class Entity:
    label: str  # the entity's group: the tag without its "B-"/"I-" prefix, e.g. "PER"
    score: float  # mean over its tokens of each token's probability of its label
    start: int  # character offsets into the caller's text: the entity is text[start:end]
    end: int
    text: str  # text[start:end]


def cut_encodings(
    tokenizer: Tokenizer, texts: Sequence[str], max_length: int, side: str = "right"
) -> list[Encoding]:
    """Each text's encoding cut to max_length (special tokens included) at `side`, with offsets and the
    special-token mask: the ids `Encoder.tokenize` makes, and what the spans are read from."""
    room = max_length - special_tokens_added(tokenizer)
    encodings = []
    for encoding in encode_each(tokenizer, texts, add_special_tokens=False):
        if len(encoding.ids) > room:
            encoding.truncate(room, direction=side)
        encodings.append(tokenizer.post_process(encoding))
    return encodings


def _tag(label: str) -> tuple[str, str]:
    """("B" or "I", tag): a label without a B-/I- prefix continues like an I- label (the pipeline's get_tag)."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def group_simple(
    text: str,
    encoding: Encoding,
    probabilities: np.ndarray,  # [tokens, labels] softmax of the token logits
    labels: Sequence[str],
    prefix_chars: int = 0,
) -> list[Entity]:
    """The entities of one text, from its (prefix + text) encoding and per-token probabilities."""
    tokens: list[tuple[str, float, int, int]] = []  # (label, score, start, end) of each text token
    for index, (special, (start, end)) in enumerate(
        zip(encoding.special_tokens_mask, encoding.offsets, strict=True)
    ):
        if special or start < prefix_chars:
            continue
        best = int(probabilities[index].argmax())
        tokens.append(
            (labels[best], float(probabilities[index, best]), start - prefix_chars, end - prefix_chars)
        )
    groups: list[list[tuple[str, float, int, int]]] = []
    for token in tokens:
        if groups:
            bi, tag = _tag(token[0])
            if tag == _tag(groups[-1][-1][0])[1] and bi != "B":
                groups[-1].append(token)
                continue
        groups.append([token])
    entities = []
    for group in groups:
        label = group[0][0].split("-", 1)[-1]
        if label == OUTSIDE:
            continue
        start, end = group[0][2], group[-1][3]
        score = float(np.mean(np.asarray([token[1] for token in group], dtype=np.float32)))
        entities.append(Entity(label=label, score=score, start=start, end=end, text=text[start:end]))
    return entities
