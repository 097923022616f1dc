"""The paper's two models at full size with random weights: bert-base-multilingual-cased (mBERT) and
distilbert-base-multilingual-cased (DistilmBERT), built offline from their published configurations
(`tests/data/paper-models/`) and the real mBERT vocabulary (`tests/data/`).

Everything the paper's Table 3 measures (size on disk, memory, loading and inference time) depends on the
shapes, not on the weights' values, so these stand in for the real checkpoints there. Their outputs mean
nothing: no quality figure may come from them, and every report that shows them says the weights are random.
Trimming exactness and the parity gates can still be checked on them, against their own outputs.
"""

import json
import os
import shutil
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
CONFIGS = DATA / "paper-models"
MBERT_VOCAB = DATA / "bert-base-multilingual-cased-vocab.txt"
PAPER_MODELS = {  # our short name -> the hub id whose published configuration we copy
    "mbert": "bert-base-multilingual-cased",
    "distilmbert": "distilbert-base-multilingual-cased",
}
SEED = 0


def describe(name: str, seed: int = SEED) -> str:
    """What a model built here is, for every report that names it."""
    return f"RANDOM weights (seed {seed}) in the shape of {PAPER_MODELS[name]}: real config and vocabulary"


def paper_config(name: str) -> dict:
    """The published config.json of one of the paper's models."""
    return json.loads((CONFIGS / f"{PAPER_MODELS[name]}.json").read_text(encoding="utf-8"))


def build_paper_model(name: str, out: Path, *, seed: int = SEED) -> Path:
    """Write `name` ("mbert" or "distilmbert") with weights drawn from `seed` as a Hugging Face directory:
    config.json, model.safetensors, the mBERT cased tokenizer files. Reused when already built."""
    if (out / "model.safetensors").is_file():
        return out
    import torch
    import transformers
    from transformers import BertTokenizerFast

    config_data = paper_config(name)
    architecture = config_data["architectures"][0]
    config_class = transformers.AutoConfig.for_model(config_data["model_type"]).__class__
    config = config_class(**{k: v for k, v in config_data.items() if k != "model_type"})
    torch.manual_seed(seed)
    model = getattr(transformers, architecture)(config).eval()
    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer = BertTokenizerFast(
        vocab_file=str(MBERT_VOCAB), do_lower_case=False, strip_accents=False, model_max_length=512
    )
    tokenizer.save_pretrained(staging)
    (staging / "RANDOM_WEIGHTS.txt").write_text(describe(name, seed) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)
    return out
