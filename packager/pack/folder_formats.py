"""The files that make a bundle a sentence-transformers folder and a ready-to-use Hugging Face ONNX folder.

The runtime reads the manifest; other libraries read their own files, and without them they guess, silently
wrong: sentence-transformers drops the Normalize module and the prompts, text-embeddings-inference pools a
BERT-type model by its CLS token, and a plain `tokenizers` user gets texts longer than the position table.
So an embedding bundle also carries, all derived from the manifest's fields:

    modules.json                        Transformer (the folder itself), Pooling, and Normalize when the
                                        manifest normalizes; Normalize has no files, so no folder
    1_Pooling/config.json               the manifest's pooling as sentence-transformers' legacy booleans,
                                        which every version of it and TEI read
    config_sentence_transformers.json   the prompts, e.g. {"query": "query: ", "passage": "passage: "}
    sentence_bert_config.json           max_seq_length = the manifest's max_length

and every bundle's tokenizer.json truncates to max_length (and does not pad), so `Tokenizer.from_file`
alone gives input the graph accepts, whatever the text's length. Module names are the `sentence_transformers.models.*`
ones every hub model uses: sentence-transformers 2.x to 5.x resolves them.
"""

import json
from collections.abc import Mapping
from pathlib import Path

from tokenizers import Tokenizer

from langtrim.runtime import bundle

_POOLING_FLAGS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens"}
_OTHER_POOLING_FLAGS = ("pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")


def write_folder_files(
    directory: Path,
    *,
    task: bundle.Task,
    pooling: bundle.Pooling,
    normalize: bool,
    max_length: int,
    prompts: Mapping[str, str],
    dimension: int,
) -> None:
    """Write the files above into a bundle being packed (before its manifest, which lists and hashes them).

    `dimension` is the hidden size (Pooling's word_embedding_dimension). A text-classification bundle gets
    only the tokenizer settings: sentence-transformers' modules describe an embedding model.
    """
    set_tokenizer_limits(directory / bundle.TOKENIZER_FILE, max_length)
    if task != bundle.FEATURE_EXTRACTION:
        return
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
    pooling_config: dict[str, int | bool] = {"word_embedding_dimension": dimension}
    pooling_config |= {flag: mode == pooling for mode, flag in _POOLING_FLAGS.items()}
    pooling_config |= dict.fromkeys(_OTHER_POOLING_FLAGS, False)
    files = {
        bundle.ST_MODULES_FILE: modules,
        bundle.ST_POOLING_FILE: pooling_config,
        bundle.ST_CONFIG_FILE: {
            "model_type": "SentenceTransformer",
            "prompts": dict(prompts),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        bundle.ST_MODEL_CONFIG_FILE: {"max_seq_length": max_length, "do_lower_case": False},
    }
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def set_tokenizer_limits(path: Path, max_length: int) -> None:
    """Make tokenizer.json truncate to `max_length` (keeping its direction) and not pad.

    A source's own settings may be for another length (all-MiniLM-L6-v2's pads every text to 128 and cuts
    at 128, where the bundle takes 512). No padding, as the Encoder tokenizes: `encode_batch` then gives each
    text's true token count, which callers count usage with; who batches pads with the pad token of
    tokenizer_config.json. Libraries that set their own limits (transformers, fastembed, the Encoder)
    override both, so this changes nothing for them.
    """
    tokenizer = Tokenizer.from_file(str(path))
    direction = (tokenizer.truncation or {}).get("direction", "right")
    tokenizer.enable_truncation(max_length=max_length, direction=direction)
    tokenizer.no_padding()
    tokenizer.save(str(path))
