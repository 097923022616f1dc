"""The sentences and the ranges `--quantize int8` fixes its activation scales from, at pack time.

The first `CALIBRATION_SENTENCES` shipped Tatoeba sentences of each of the bundle's languages (or, for a
language langtrim ships none for, the first lines of its `--eval-text`), with the model's prompts, run one at a time through the float graph (alone, so no padding widens a range): the largest
|value| each quantized MatMul input takes is its range. benchmarks/exact_quantization.py measures quality on
the shipped sentences after these, which the ranges never saw.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from langtrim.packager.errors import SelectionError
from langtrim.packager.shipped_text import shipped_sentences

logger = logging.getLogger(__name__)

# Sentences per language the ranges are measured on; the shipped files hold 500 for most languages and the
# benchmark measures quality on the lines after these.
CALIBRATION_SENTENCES = 200


def calibration_texts(
    languages: Sequence[str], eval_texts: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """The first CALIBRATION_SENTENCES shipped sentences of each language, in language order; for a language
    langtrim ships none for, the first lines of its `--eval-text` files (LANG -> paths), if given."""
    from langtrim.packager.counting.inputs import iter_lines

    texts: list[str] = []
    missing = []
    for language in languages:
        sentences = (shipped_sentences(language) or [])[:CALIBRATION_SENTENCES]
        if not sentences and language in (eval_texts or {}):
            lines = (line.strip() for line in iter_lines((eval_texts or {})[language]))
            sentences = list(islice((line for line in lines if line), CALIBRATION_SENTENCES))
        if not sentences:
            missing.append(language)
        texts.extend(sentences)
    if not texts:
        raise SelectionError(
            f"--quantize int8 measures activation ranges on real sentences, and langtrim ships none for "
            f"{', '.join(missing)}: give some with --eval-text LANG=PATH, or use --quantize int8-dynamic "
            "(vectors then depend on their batch)"
        )
    if missing:
        logger.warning("no sentences for %s: calibrating on the other languages'", ", ".join(missing))
    return texts


def calibration_ids(
    tokenizer_file: Path,
    languages: Sequence[str],
    prompts: Sequence[str],
    max_length: int,
    eval_texts: Mapping[str, Sequence[str]] | None = None,
) -> list[np.ndarray]:
    """Token ids (special tokens included, cut to `max_length`) of the calibration sentences, each with one
    of the model's `prompts` in turn (e5's "query: " and "passage: "), as the served bundle will see them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    prefixes = list(prompts) or [""]
    texts = [
        prefixes[i % len(prefixes)] + text for i, text in enumerate(calibration_texts(languages, eval_texts))
    ]
    return [np.asarray(encoding.ids, dtype=np.int64) for encoding in tokenizer.encode_batch(texts)]


def largest_values(
    model: Any, tensors: Sequence[str], ids: Sequence[np.ndarray], work: Path
) -> dict[str, float]:
    """The largest |value| each of `tensors` (float tensors of `model`, an onnx ModelProto) takes when the
    calibration `ids` run through it one text at a time."""
    import onnx
    import onnxruntime

    if not ids:
        raise SelectionError("--quantize int8 needs calibration sentences, got none")
    if not tensors:
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {output.name for output in probe.graph.output}
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        for name in tensors
        if name not in known
    )
    path = work / "calibration.onnx"
    onnx.save_model(
        probe, str(path), save_as_external_data=True, location=f"{path.name}.data", size_threshold=1024
    )
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = {value.name for value in session.get_inputs()}
    largest = dict.fromkeys(tensors, 0.0)
    for sequence in ids:
        row = np.asarray(sequence, dtype=np.int64)[None, :]
        feed = {"input_ids": row, "attention_mask": np.ones_like(row), "token_type_ids": np.zeros_like(row)}
        values = session.run(list(tensors), {name: value for name, value in feed.items() if name in names})
        for name, value in zip(tensors, values, strict=True):
            largest[name] = max(largest[name], float(np.abs(value).max()))
    return largest
