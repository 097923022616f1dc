"""What the fallback pieces cost in rows and gain in cosine, on real sentences the selection does not cover.

For the offline default model and each language, select tokens with and without the fallback pieces
(single characters of the language's scripts, digits, punctuation), trim the PyTorch model in memory both
ways, and compare mean-pooled, normalised embeddings ("query: " prefix) with the original model's on the
Tatoeba sentences that the selection without fallback does not cover.

    python benchmarks/fallback_effect.py --languages en,fr,de --out benchmarks/results/fallback_effect.json
"""

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from langtrim.packager.models.default_model import default_model_dir
from langtrim.packager.models.families import MULTILINGUAL_E5
from langtrim.packager.models.sources import ModelSource, load_model
from langtrim.packager.selection.choose import SelectionSettings, choose_tokens
from langtrim.packager.selection.languages import parse_languages
from langtrim.packager.shipped_text import shipped_sentences
from langtrim.packager.trim.surgery import trim_model
from langtrim.packager.trim.tokenizer_remap import IdMap, remap_tokenizer

PROMPT = "query: "


def embed(model, tokenizer: Tokenizer, texts: list[str]) -> np.ndarray:
    tokenizer.enable_padding(pad_id=int(model.config.pad_token_id))
    tokenizer.enable_truncation(512)
    vectors = []
    with torch.no_grad():
        for start in range(0, len(texts), 32):
            encodings = tokenizer.encode_batch(texts[start : start + 32])
            mask = torch.tensor([e.attention_mask for e in encodings])
            hidden = model(
                input_ids=torch.tensor([e.ids for e in encodings]), attention_mask=mask
            ).last_hidden_state
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            vectors.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(vectors)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--languages", default="en,fr,de")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fallback_effect.json"))
    args = parser.parse_args()

    model_dir = default_model_dir()
    original = load_model(ModelSource(model_dir, "multilingual-e5-small", "", is_default=True))
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    rows = []
    for language in parse_languages(args.languages):
        sentences = [PROMPT + s for s in shipped_sentences(language.code) or []]
        trimmed = {}
        for fallback in (False, True):
            settings = SelectionSettings(fallback=fallback, keep_texts=MULTILINGUAL_E5.keep_texts)
            selection = choose_tokens(tokenizer, [language], settings=settings)
            trimmed_tokenizer, id_map = remap_tokenizer(tokenizer, selection.kept_ids)
            trimmed[fallback] = (selection, trimmed_tokenizer, id_map)
        id_map_without: IdMap = trimmed[False][2]
        uncovered = [s for s in sentences if not id_map_without.is_kept(tokenizer.encode(s).ids).all()]
        reference = embed(original, Tokenizer.from_str(tokenizer.to_str()), uncovered)
        row = {
            "language": language.code,
            "sentences": len(sentences),
            "uncovered_without_fallback": len(uncovered),
        }
        for fallback, (selection, trimmed_tokenizer, id_map) in trimmed.items():
            model = trim_model(copy.deepcopy(original), id_map)
            vectors = embed(model, trimmed_tokenizer, uncovered)
            cosines = np.sum(vectors * reference, axis=1)
            key = "with_fallback" if fallback else "without_fallback"
            unk = sum(e.ids.count(id_map.unk_id) for e in trimmed_tokenizer.encode_batch(uncovered))
            row[key] = {
                "tokens_kept": len(selection.kept_ids),
                "cosine_mean": float(cosines.mean()),
                "cosine_min": float(cosines.min()),
                "unk_tokens": unk,
            }
        rows.append(row)
        print(json.dumps(row))

    print(
        "\n| language | uncovered sentences | rows without -> with fallback | cosine mean without -> with | cosine min without -> with | unknown tokens without -> with |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["without_fallback"], r["with_fallback"]
        print(
            f"| {r['language']} | {r['uncovered_without_fallback']} of {r['sentences']} | {a['tokens_kept']:,} -> "
            f"{b['tokens_kept']:,} (+{b['tokens_kept'] - a['tokens_kept']:,}) | {a['cosine_mean']:.4f} -> "
            f"{b['cosine_mean']:.4f} | {a['cosine_min']:.4f} -> {b['cosine_min']:.4f} | {a['unk_tokens']} -> {b['unk_tokens']} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "machine": platform.machine(), "torch": torch.__version__}
    args.out.write_text(json.dumps({"rows": rows, "machine": machine, "time": time.time()}, indent=2))


if __name__ == "__main__":
    main()
