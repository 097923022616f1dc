"""Export a Hugging Face encoder directory to one ONNX graph with optimum's exporter.

The graph has dynamic batch and sequence axes and takes the inputs the model's forward takes
(`input_ids`, `attention_mask`, and `token_type_ids` for BERT-family models, which the runtime feeds as zeros
when the tokenizer gives none). It returns `last_hidden_state` [batch, seq, hidden] for a plain encoder
(task "feature-extraction"), `logits` [batch, labels] when the directory holds a sequence-classification
head (task "text-classification"), or `logits` [batch, seq, labels] for a token-classification head
("token-classification"); a head langtrim cannot keep is refused (`heads.py`). Pooling and normalisation stay in the runtime, outside the graph, so one
graph serves every pooling a model card asks for.

Only the `.onnx` file (plus `model.onnx_data` for a graph over 2 GB) lands in the output directory: optimum
also writes config and tokenizer copies, but the bundle format owns those files, so they are left behind in
a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from langtrim.packager.errors import ModelSourceError, UnsupportedModelError
from langtrim.packager.pack.heads import head_task
from langtrim.runtime.bundle import FEATURE_EXTRACTION, TASKS, TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION
from langtrim.runtime.errors import UsageError

logger = logging.getLogger(__name__)

# Names people use for the classification task; optimum calls it "text-classification".
_TASK_SYNONYMS = {"sequence-classification": TEXT_CLASSIFICATION, "default": FEATURE_EXTRACTION}
_HEAD_NAMES = {TEXT_CLASSIFICATION: "sequence-classification", TOKEN_CLASSIFICATION: "token-classification"}
ONNX_FILE = "model.onnx"
ONNX_DATA_FILE = "model.onnx_data"  # optimum's name for the external weights of a graph over 2 GB
# Libraries that log to their own stderr handlers while exporting; we route them to our logger at DEBUG.
_CHATTY_LOGGERS = ("optimum", "transformers", "torch.onnx", "onnxruntime", "onnx")


@dataclass(frozen=True)
class ExportResult:
    onnx_path: Path
    input_names: tuple[str, ...]  # in graph order, e.g. ("input_ids", "attention_mask", "token_type_ids")
    output_names: tuple[str, ...]  # ("last_hidden_state",) or ("logits",)
    task: str  # one of TASKS
    opset: int


def _read_config(model_dir: Path) -> dict:
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ModelSourceError(
            f"no config.json in {str(model_dir)!r}: give a Hugging Face model directory (e.g. one written by langtrim trim)"
        )
    if not any(model_dir.glob("*.safetensors")):
        raise ModelSourceError(
            f"no .safetensors weights in {str(model_dir)!r}: langtrim loads safetensors only; re-save the model with save_pretrained(dir, safe_serialization=True)"
        )
    config: dict = json.loads(config_path.read_text(encoding="utf-8"))
    return config


def detect_task(config: dict) -> str:
    """The export task a config implies (the head its architectures name; see `heads.head_task`)."""
    return head_task(config)


def _resolve_task(task: str | None, config: dict, model_dir: Path) -> str:
    detected = detect_task(config)
    if task is None:
        return detected
    task = _TASK_SYNONYMS.get(task, task)
    if task not in TASKS:
        raise UsageError(f"unknown export task {task!r}: use one of {', '.join(TASKS)}")
    if task != FEATURE_EXTRACTION and detected != task:
        architectures = ", ".join(config.get("architectures") or ["none"])
        raise UnsupportedModelError(
            f"{str(model_dir)!r} has no {_HEAD_NAMES[task]} head (config.architectures: {architectures}): export it with task {detected!r}"
        )
    return task


class _ToDebug(logging.Handler):
    """Re-emits a library's log records on our logger at DEBUG, so `-v` shows them and the default is quiet."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("%s: %s", record.name, record.getMessage())


class _FromLibraries(logging.Filter):
    """Diverts records that library code logs straight on the root logger (onnxruntime's quantizer does)."""

    def __init__(self, handler: logging.Handler, folders: tuple[str, ...]) -> None:
        super().__init__()
        self.handler, self.folders = handler, folders

    def filter(self, record: logging.LogRecord) -> bool:
        if any(folder in record.pathname for folder in self.folders):
            self.handler.handle(record)
            return False
        return True


def _chatty_loggers() -> tuple[str, ...]:
    """Our list plus the top-level module names under onnxruntime/transformers, which puts its own folder on
    sys.path and so logs as "fusion_attention", "onnx_model_bert" and the like."""
    spec = find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return _CHATTY_LOGGERS
    folder = Path(next(iter(spec.submodule_search_locations))) / "transformers"
    return _CHATTY_LOGGERS + tuple(sorted(path.stem for path in folder.glob("*.py")))


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Route the build libraries' logging and all Python warnings to our logger at DEBUG, then restore.

    optimum and transformers install their own stderr handlers, onnxruntime's quantizer logs on the root
    logger, and the ONNX tracer raises TracerWarnings that are expected for these models; a user running
    `langtrim pack` should see none of it by default, and all of it with -v.
    """
    handler = _ToDebug()
    saved = []
    for name in _chatty_loggers():
        library = logging.getLogger(name)
        saved.append((library, library.handlers[:], library.propagate, library.level))
        library.handlers = [handler]
        library.propagate = False
        library.setLevel(logging.INFO)
    root_filter = _FromLibraries(handler, (f"{os.sep}onnxruntime{os.sep}", f"{os.sep}optimum{os.sep}"))
    logging.getLogger().addFilter(root_filter)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for warning in caught:
            logger.debug("%s: %s", warning.category.__name__, warning.message)
    finally:
        logging.getLogger().removeFilter(root_filter)
        for library, handlers, propagate, level in saved:
            library.handlers = handlers
            library.propagate = propagate
            library.setLevel(level)


def _load_model(model_dir: Path, task: str):  # -> PreTrainedModel
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

    loaders = {
        TEXT_CLASSIFICATION: AutoModelForSequenceClassification,
        TOKEN_CLASSIFICATION: AutoModelForTokenClassification,
    }
    loader = loaders.get(task, AutoModel)
    try:
        # Eager attention traces to the plain MatMul/Softmax pattern that onnxruntime's fusions recognise
        # on every architecture; the result is the same as SDPA's to float precision.
        model = loader.from_pretrained(model_dir, use_safetensors=True, attn_implementation="eager")
    except (OSError, ValueError) as error:
        raise ModelSourceError(
            f"cannot load {str(model_dir)!r} with transformers: {str(error).splitlines()[0]}"
        ) from error
    return model.eval()


def _check_graph(onnx_path: Path, model_dir: Path) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    import onnx

    try:
        # The path-based check reads external data itself, so it also works for graphs over 2 GB.
        onnx.checker.check_model(str(onnx_path), full_check=True)
    except onnx.checker.ValidationError as error:
        raise UnsupportedModelError(
            f"the ONNX graph exported from {str(model_dir)!r} fails onnx.checker ({str(error).splitlines()[0]}): this architecture does not export cleanly"
        ) from error
    graph_model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {tensor.name for tensor in graph_model.graph.initializer}
    inputs = tuple(value.name for value in graph_model.graph.input if value.name not in initializers)
    outputs = tuple(value.name for value in graph_model.graph.output)
    opset = next(entry.version for entry in graph_model.opset_import if entry.domain in ("", "ai.onnx"))
    return inputs, outputs, opset


def export_onnx(
    model_dir: Path, out_dir: Path, *, task: str | None = None, opset: int | None = None
) -> ExportResult:
    """Export `model_dir` to `out_dir/model.onnx` (fp32) and check the graph with onnx.checker.

    `task` is detected from config.architectures when None: a `*ForSequenceClassification` head exports
    `logits`, anything else the encoder's `last_hidden_state` (an LM head is dropped). `opset` defaults to
    optimum's choice for the architecture. Weights are read from safetensors only. An existing
    `out_dir/model.onnx` is replaced; other files in `out_dir` are left alone.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not model_dir.is_dir():
        raise ModelSourceError(f"model directory {str(model_dir)!r} does not exist: run langtrim trim first")
    config = _read_config(model_dir)
    task = _resolve_task(task, config, model_dir)
    # Imported before quiet_libraries(): importing optimum installs its stderr handler, which the
    # context manager must find in place to take it away.
    from optimum.exporters.onnx import onnx_export_from_model

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        with quiet_libraries():
            model = _load_model(model_dir, task)
            # optimum re-loads the tokenizer (twice, via AutoTokenizer and AutoProcessor) from the directory
            # the model came from, only to save copies we do not ship; for a 250k-piece Unigram tokenizer that
            # is most of the export's time. Pointing it at an empty directory makes it find nothing.
            no_preprocessors = staging / "no-preprocessors"
            no_preprocessors.mkdir()
            model.config._name_or_path = str(no_preprocessors)
            try:
                # Parity is measured by the caller on real text with stated tolerances; optimum's own check
                # on random inputs would only add time.
                onnx_export_from_model(model, staging, task=task, opset=opset, do_validation=False)
            except ValueError as error:
                raise UnsupportedModelError(
                    f"optimum cannot export {config.get('model_type')!r} models for {task!r}: {str(error).splitlines()[0]}"
                ) from error
        input_names, output_names, used_opset = _check_graph(staging / ONNX_FILE, model_dir)
        for name in (ONNX_FILE, ONNX_DATA_FILE):
            if (staging / name).exists():
                os.replace(staging / name, out_dir / name)
            elif name == ONNX_DATA_FILE and (out_dir / name).exists():
                (out_dir / name).unlink()  # left over from an earlier, larger export
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    onnx_path = out_dir / ONNX_FILE
    logger.info(
        "exported %s (%s, opset %d): inputs %s, outputs %s",
        onnx_path,
        task,
        used_opset,
        input_names,
        output_names,
    )
    return ExportResult(
        onnx_path=onnx_path,
        input_names=input_names,
        output_names=output_names,
        task=task,
        opset=used_opset,
    )
