"""`langtrim pack` as a library call: trim (unless given a trimmed directory), export to ONNX, optimize,
quantize, and write a bundle (format v2, see `langtrim.runtime.bundle`) atomically."""

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langtrim.packager.counting.inputs import CorpusSpec
from langtrim.packager.models.families import PROVENANCE_FILE, architecture, usage_of
from langtrim.packager.models.sources import ModelSource
from langtrim.packager.outputs import atomic_output_dir, check_output_dir, remove_stale, staging_prefix
from langtrim.packager.pack.bitext import DEFAULT_PROBES
from langtrim.packager.pack.calibration import calibration_ids
from langtrim.packager.pack.coverage_check import CoverageCalibration, calibrate_coverage
from langtrim.packager.pack.folder_formats import write_folder_files
from langtrim.packager.pack.heads import head_task, labels_of, pair_truncation_of
from langtrim.packager.pack.parity import GateFailure, Gates, ParityReport, measure_parity, write_parity
from langtrim.packager.pack.piece_tokenizer import write_piece_tokenizer
from langtrim.packager.pack.quantize import VariantSettings
from langtrim.packager.selection.choose import SelectionSettings
from langtrim.packager.selection.languages import Language
from langtrim.packager.trim.job import ID_MAP_FILE, REPORT_FILE, Progress, TrimReport, run_trim
from langtrim.runtime import bundle
from langtrim.runtime.errors import UsageError

# The work directory of a pack (the trimmed model, the fp32 export) under the system's temporary directory.
_WORK_NAME = "langtrim-pack"


@dataclass(frozen=True)
class PackReport:
    trim: TrimReport
    variant: str  # e.g. "int8/emb-per-row/fused"
    trimmed_fp32_onnx_mb: float
    bundle_mb: float
    manifest: dict[str, Any]
    output: str
    parity: ParityReport
    coverage: CoverageCalibration | None = None  # the serve-time coverage check's calibration

    def to_json(self) -> str:
        return json.dumps(
            {**asdict(self), "trim": json.loads(self.trim.to_json())},
            indent=2,
            ensure_ascii=False,
            default=str,
        )


def is_trimmed_directory(path: Path) -> bool:
    """A directory written by `langtrim trim` (it carries the id map and the trim report)."""
    return (path / ID_MAP_FILE).is_file() and (path / REPORT_FILE).is_file()


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _max_length(config: dict[str, Any], tokenizer_config: dict[str, Any]) -> int:
    positions = architecture(config).max_positions(config)
    declared = tokenizer_config.get("model_max_length")
    return (
        min(positions, int(declared)) if isinstance(declared, int | float) and declared < 1e6 else positions
    )


def _source_record(report: TrimReport, source_dir: Path) -> bundle.SourceModel:
    provenance = _read_json(source_dir / PROVENANCE_FILE)
    revision = source_dir.name if source_dir.parent.name == "snapshots" else None  # a hub snapshot
    sha256 = provenance.get("weights_sha256") or bundle.file_digest(
        *sorted(source_dir.glob("*.safetensors")), algorithm="sha256"
    )
    return bundle.SourceModel(report.model, report.model_description, revision=revision, sha256=str(sha256))


def _write_hf_files(staging: Path, trimmed_dir: Path, config: dict[str, Any], max_length: int) -> None:
    """config.json, tokenizer files and the id map: a bundle is also a plain Hugging Face ONNX folder."""
    shutil.copy2(trimmed_dir / "config.json", staging / bundle.HF_CONFIG_FILE)
    shutil.copy2(trimmed_dir / "tokenizer.json", staging / bundle.TOKENIZER_FILE)
    shutil.copy2(trimmed_dir / ID_MAP_FILE, staging / bundle.ID_MAP_FILE)
    tokenizer_config = _read_json(trimmed_dir / "tokenizer_config.json")
    specials = _read_json(trimmed_dir / "special_tokens_map.json")
    tokenizer_json = _read_json(trimmed_dir / "tokenizer.json")
    if "pad_token" not in tokenizer_config:
        padding = tokenizer_json.get("padding") or {}
        pad = specials.get("pad_token") or padding.get("pad_token")
        if pad is None and config.get("pad_token_id") is not None:
            by_id = {token["id"]: token["content"] for token in tokenizer_json.get("added_tokens", [])}
            pad = by_id.get(config["pad_token_id"])
        if pad is not None:
            tokenizer_config["pad_token"] = pad
    tokenizer_config["model_max_length"] = max_length
    (staging / bundle.HF_TOKENIZER_CONFIG_FILE).write_text(
        json.dumps(tokenizer_config, indent=2, ensure_ascii=False)
    )
    if not specials:
        specials = {key: tokenizer_config[key] for key in tokenizer_config if key.endswith("_token")}
    (staging / bundle.HF_SPECIAL_TOKENS_FILE).write_text(json.dumps(specials, indent=2, ensure_ascii=False))


def _original_model_dir(source: ModelSource, report: TrimReport, allow_pickle: bool) -> Path:
    """The untrimmed model to measure parity against (for a trimmed input, the model it was cut from)."""
    if not is_trimmed_directory(source.path):
        return source.path
    from langtrim.packager.models.default_model import DEFAULT_MODEL_NAME
    from langtrim.packager.models.sources import resolve_model

    name = None if report.model == DEFAULT_MODEL_NAME else report.model
    return resolve_model(name, allow_pickle=allow_pickle).path


def run_pack(
    source: ModelSource,
    languages: Sequence[Language],
    *,
    out: Path,
    corpora: Sequence[CorpusSpec] = (),
    settings: SelectionSettings = SelectionSettings(),
    variant: VariantSettings = VariantSettings(),
    force: bool = False,
    allow_pickle: bool = False,
    gates: Gates = Gates(),
    eval_texts: Mapping[str, Sequence[str]] | None = None,
    allow_parity_failure: bool = False,
    pairs: bool | None = None,
    progress: Progress = lambda step: None,
    eval_pairs: Mapping[str, tuple[Path, Path]] | None = None,
    probes: Sequence[str] = DEFAULT_PROBES,
) -> PackReport:
    """Build the bundle `out` from `source`; a trimmed directory (from `langtrim trim`) is packed as it is.

    The last step measures parity against the original model (see `parity.py`); when a gate fails, nothing
    is written at `out` and GateFailure is raised, unless `allow_parity_failure` (the manifest says failed).
    `pairs` says whether a sequence classifier reads text pairs (None: decide from its labels, `heads.py`).
    """
    from langtrim.packager.pack.export import export_onnx
    from langtrim.packager.pack.quantize import build_onnx_variant

    check_output_dir(out, force=force)
    # A head langtrim cannot keep, or --pairs on a model without pairs, is refused before any work.
    source_config = _read_json(source.path / "config.json")
    pair_truncation_of(source_config, head_task(source_config, source.name), pairs)
    remove_stale(Path(tempfile.gettempdir()), _WORK_NAME)
    with tempfile.TemporaryDirectory(prefix=staging_prefix(_WORK_NAME)) as work_name:
        work = Path(work_name)
        if is_trimmed_directory(source.path):
            if languages or corpora:
                raise UsageError(
                    f"{source.name!r} is already trimmed: drop --languages and --corpus to pack it"
                )
            trimmed_dir = source.path
            report = TrimReport.from_json(_read_json(source.path / REPORT_FILE))
            source_dir = source.path
        else:
            trimmed_dir = work / "trimmed"
            report = run_trim(
                source,
                languages,
                out=trimmed_dir,
                corpora=corpora,
                settings=settings,
                allow_pickle=allow_pickle,
                progress=progress,
            )
            source_dir = source.path
        config = _read_json(trimmed_dir / "config.json")
        progress("exporting to ONNX")
        exported = export_onnx(trimmed_dir, work / "onnx")
        progress(f"optimizing and quantizing ({variant.name})")
        max_length = _max_length(config, _read_json(trimmed_dir / "tokenizer_config.json"))
        usage = usage_of(source_dir, is_default=source.is_default)
        calibration = (
            calibration_ids(
                trimmed_dir / bundle.TOKENIZER_FILE,
                report.languages,
                list(usage.prompts.values()),
                max_length,
                eval_texts,
            )
            if variant.quantize == "int8"
            else []
        )
        with atomic_output_dir(out, force=force) as staging:
            build_onnx_variant(
                exported.onnx_path,
                staging / bundle.MODEL_FILE,
                variant,
                config=config,
                calibration_ids=calibration,
            )
            _write_hf_files(staging, trimmed_dir, config, max_length)
            id_map = json.loads((staging / bundle.ID_MAP_FILE).read_text())
            progress(write_piece_tokenizer(staging, len(id_map["kept_original_ids"]), eval_texts))
            write_folder_files(
                staging,
                task=exported.task,  # type: ignore[arg-type]
                pooling=usage.pooling,
                normalize=usage.normalize,
                max_length=max_length,
                prompts=usage.prompts,
                dimension=int(config[architecture(config).hidden_key]),
            )
            labels = labels_of(config)
            manifest = bundle.write_manifest(
                staging,
                source=_source_record(report, source_dir),
                languages=report.languages,
                selection=bundle.SelectionRecord(settings=report.selection_settings, sources=report.sources),
                vocab=bundle.VocabSizes(id_map["original_vocab_size"], len(id_map["kept_original_ids"])),
                quantization=bundle.Quantization(variant.quantize, variant.embeddings),
                optimization=variant.optimize,
                task=exported.task,  # type: ignore[arg-type]
                pooling=usage.pooling,
                normalize=usage.normalize,
                max_length=max_length,
                prompts=usage.prompts,
                labels=labels if exported.task != bundle.FEATURE_EXTRACTION else (),
                pair_truncation=pair_truncation_of(config, exported.task, pairs),
            )
            original_dir = _original_model_dir(source, report, allow_pickle)
            progress("calibrating the coverage check")
            coverage = calibrate_coverage(
                staging, original_dir / bundle.TOKENIZER_FILE, report.languages, eval_texts
            )
            progress("measuring parity against the original model")
            parity = measure_parity(
                staging,
                original_dir,
                source_model=report.model,
                eval_texts=eval_texts,
                gates=gates,
                eval_pairs=eval_pairs,
                probes=probes,
            )
            write_parity(staging, parity)
            manifest = bundle.read_manifest(staging, verify="none")
            if not parity.passed and not allow_parity_failure:
                raise GateFailure(parity)
            bundle_bytes = sum(entry.size for entry in manifest.files.values())
        return PackReport(
            trim=report,
            variant=variant.name,
            trimmed_fp32_onnx_mb=round(exported.onnx_path.stat().st_size / 1e6, 1),
            bundle_mb=round(bundle_bytes / 1e6, 1),
            manifest=bundle.manifest_to_json(manifest),
            output=str(out),
            parity=parity,
            coverage=coverage,
        )
