"""Trim exactness in PyTorch: the last hidden states of a trimmed model against its original, on the
texts both tokenize identically (the original's ids, remapped)."""

from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer

from langtrim.packager.trim.job import ID_MAP_FILE
from langtrim.packager.trim.tokenizer_remap import IdMap


def _hidden(model, ids: list[list[int]], pad_id: int) -> torch.Tensor:
    """Last hidden states of a padded batch, zeroed at padding positions."""
    length = max(map(len, ids))
    input_ids = torch.tensor([row + [pad_id] * (length - len(row)) for row in ids])
    mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in ids])
    with torch.no_grad():
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    return hidden * mask[..., None]


def max_hidden_difference(original_dir: Path, trimmed_dir: Path, texts: list[str]) -> tuple[float, int]:
    """Largest |last hidden state difference| over the texts whose tokens are all kept, and their count."""
    original = transformers.AutoModel.from_pretrained(original_dir).eval()
    trimmed = transformers.AutoModel.from_pretrained(trimmed_dir).eval()
    before_tokenizer = Tokenizer.from_file(str(original_dir / "tokenizer.json"))
    after_tokenizer = Tokenizer.from_file(str(trimmed_dir / "tokenizer.json"))
    for tokenizer in (before_tokenizer, after_tokenizer):
        tokenizer.no_padding()
        tokenizer.no_truncation()
    id_map = IdMap.from_json((trimmed_dir / ID_MAP_FILE).read_text())
    before_ids = [e.ids for e in before_tokenizer.encode_batch(texts)]
    after_ids = [e.ids for e in after_tokenizer.encode_batch(texts)]
    covered = [i for i, ids in enumerate(before_ids) if id_map.is_kept(ids).all()]
    for i in covered:
        assert after_ids[i] == id_map.to_new(before_ids[i]).tolist(), texts[i]
    pad = original.config.pad_token_id or 0
    new_pad = int(id_map.to_new([pad])[0])
    worst = 0.0
    for start in range(0, len(covered), 32):
        batch = covered[start : start + 32]
        before = _hidden(original, [before_ids[i] for i in batch], pad)
        after = _hidden(trimmed, [after_ids[i] for i in batch], new_pad)
        worst = max(worst, (before - after).abs().max().item())
    return worst, len(covered)
