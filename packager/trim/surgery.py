"""Embedding surgery: keep only the selected rows of the word embeddings and of a tied output layer.

Nothing else changes: position and token-type embeddings, the encoder and any task head keep their
weights, so on text whose tokens are all kept the trimmed model computes exactly what the original did.
"""

import torch
from torch import nn
from transformers import PreTrainedModel

from langtrim.packager.errors import UnsupportedModelError
from langtrim.packager.models.families import ARCHITECTURES
from langtrim.packager.trim.tokenizer_remap import IdMap

_TOKEN_ID_FIELDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id")


def _rows(weight: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    return weight.detach().index_select(0, kept).clone()


def _positions_follow_pad(model_type: str) -> bool:
    known = ARCHITECTURES.get(model_type)
    return known is not None and known.positions_follow_pad


def _remap_config_ids(model: PreTrainedModel, id_map: IdMap) -> None:
    config = model.config
    for field in _TOKEN_ID_FIELDS:
        original = getattr(config, field, None)
        if original is None:
            continue
        new = int(id_map.to_new([original])[0])
        if not bool(id_map.is_kept([original])[0]):
            raise UnsupportedModelError(
                f"config.{field}={original} is not among the kept tokens: this is a bug"
            )
        if field == "pad_token_id" and _positions_follow_pad(config.model_type) and new != original:
            raise UnsupportedModelError(
                f"{config.model_type} counts positions from the pad id, which would move from {original} to {new}"
            )
        setattr(config, field, new)


def trim_model(model: PreTrainedModel, id_map: IdMap) -> PreTrainedModel:
    """Cut `model`'s vocabulary to `id_map.kept_ids` in place and return it.

    The input embedding keeps rows `kept_ids` in that order; an output layer over the vocabulary (masked-LM
    decoder and its bias) is cut the same way and stays tied when it was. Raises UnsupportedModelError if any
    other weight is indexed by the vocabulary, since cutting it blindly could change the model's meaning.
    """
    old_input = model.get_input_embeddings()
    if not isinstance(old_input, nn.Embedding):
        raise UnsupportedModelError(f"{type(model).__name__} has no nn.Embedding input layer: cannot trim it")
    old_vocab = old_input.num_embeddings
    if int(id_map.kept_ids[-1]) >= old_vocab:
        raise UnsupportedModelError(
            f"the tokenizer has ids up to {int(id_map.kept_ids[-1])} but the model only {old_vocab} embedding "
            "rows: tokenizer and model do not belong together"
        )
    kept = torch.as_tensor(id_map.kept_ids, dtype=torch.long)
    _remap_config_ids(model, id_map)
    pad = getattr(model.config, "pad_token_id", None)

    new_input = nn.Embedding(
        len(kept), old_input.embedding_dim, padding_idx=pad, dtype=old_input.weight.dtype
    )
    new_input.weight = nn.Parameter(
        _rows(old_input.weight, kept), requires_grad=old_input.weight.requires_grad
    )
    model.set_input_embeddings(new_input)

    old_output = model.get_output_embeddings()
    if isinstance(old_output, nn.Linear) and old_output.out_features == old_vocab:
        new_output = nn.Linear(old_output.in_features, len(kept), bias=old_output.bias is not None)
        new_output.weight = nn.Parameter(_rows(old_output.weight, kept))
        if old_output.bias is not None:
            new_output.bias = nn.Parameter(_rows(old_output.bias, kept))
        model.set_output_embeddings(new_output)
        # Heads that hold the decoder bias as their own attribute too (BERT's, XLM-R's LM heads).
        for module in model.modules():
            bias = getattr(module, "bias", None)
            if module is not new_output and isinstance(bias, nn.Parameter) and bias.shape == (old_vocab,):
                module.bias = new_output.bias

    model.config.vocab_size = len(kept)
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if old_vocab in tensor.shape and old_vocab != len(kept):
            raise UnsupportedModelError(
                f"{name} {tuple(tensor.shape)} is indexed by the vocabulary and langtrim does not know how to "
                "cut it: trimming this architecture is not supported"
            )
    embeddings = getattr(model.base_model, "embeddings", None)
    if embeddings is not None and hasattr(embeddings, "padding_idx") and pad is not None:
        embeddings.padding_idx = pad
    return model
