"""Bundle format v2: the one contract between `langtrim pack` (writes) and the runtime (reads).

A bundle is a directory:

    manifest.json            what the bundle is (`Manifest`), and size + digest of every other file
    model.onnx               the trimmed (and maybe quantized) graph
    model.onnx.data          its weights (ONNX external data, which onnxruntime maps from the file)
    tokenizer.json           the trimmed tokenizer (new ids)
    id_map.json              new id -> original id, for callers who tokenize with the original tokenizer
    config.json, tokenizer_config.json, special_tokens_map.json
                             Hugging Face ONNX-folder files, so optimum's ORTModelForFeatureExtraction loads
                             the bundle too; tokenizer_config.json holds model_max_length and the pad token
    parity.json              optional: the parity report a later step writes (see `record_parity`)
    modules.json, 1_Pooling/config.json, config_sentence_transformers.json, sentence_bert_config.json
                             embedding bundles only: sentence-transformers' modules (Transformer, Pooling,
                             Normalize when the manifest normalizes), pooling, prompts and max_seq_length,
                             so `SentenceTransformer(bundle, backend="onnx")` makes the Encoder's vectors.
                             Optional: bundles packed before they were added lack them and load as before
                             (the runtime reads the manifest, not these).

Any other file the packager adds (vocab.txt, ...) is listed and verified like these.
Everything here is explicit JSON: no pickle, nothing that runs code when a bundle is read. A newer langtrim
may add manifest fields within the same format version; readers ignore fields they do not know. A change a
reader must understand bumps `FORMAT_VERSION`: format 2 lists each file's BLAKE2b-256 digest where format 1
listed its sha256 (see `FILE_DIGEST`); this langtrim reads both.
"""

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeGuard, get_args

import numpy as np

from langtrim.runtime.errors import BundleError
from langtrim.runtime.version import langtrim_version

try:  # CPython's own BLAKE2, which hashlib.blake2b is: importing hashlib would also load OpenSSL (see FILE_DIGEST)
    from _blake2 import blake2b as _blake2b
except ImportError:  # another Python
    from hashlib import blake2b as _blake2b

FORMAT_VERSION = 2  # the format this langtrim writes, and the newest it reads
OLDEST_READABLE_FORMAT = 1

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
ID_MAP_FILE = "id_map.json"
PARITY_FILE = "parity.json"
HF_CONFIG_FILE = "config.json"
HF_TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
HF_SPECIAL_TOKENS_FILE = "special_tokens_map.json"
# sentence-transformers' folder files (optional: bundles packed before they were written lack them).
ST_MODULES_FILE = "modules.json"
ST_POOLING_FILE = "1_Pooling/config.json"
ST_CONFIG_FILE = "config_sentence_transformers.json"
ST_MODEL_CONFIG_FILE = "sentence_bert_config.json"
# Files every bundle has besides the manifest; write_manifest refuses a directory without them.
REQUIRED_FILES = (
    MODEL_FILE,
    TOKENIZER_FILE,
    ID_MAP_FILE,
    HF_CONFIG_FILE,
    HF_TOKENIZER_CONFIG_FILE,
    HF_SPECIAL_TOKENS_FILE,
)

Task = Literal["feature-extraction", "text-classification", "token-classification"]
FEATURE_EXTRACTION: Task = "feature-extraction"  # the graph returns last_hidden_state; the runtime pools
TEXT_CLASSIFICATION: Task = "text-classification"  # the graph returns logits over manifest.labels
TOKEN_CLASSIFICATION: Task = "token-classification"  # logits over manifest.labels for every token
# How a text pair over max_length is cut (the tokenizers library's strategies): "only_second" keeps the
# first text (a reranker's query) whole, "longest_first" takes tokens from the longer text first.
PairTruncation = Literal["only_second", "longest_first"]
PAIR_TRUNCATIONS: tuple[str, ...] = get_args(PairTruncation)
Pooling = Literal["mean", "cls"]
Verify = Literal["full", "size", "none"]
TASKS: tuple[str, ...] = get_args(Task)
POOLINGS: tuple[str, ...] = get_args(Pooling)
_VERIFY_MODES: tuple[str, ...] = get_args(Verify)
_HASH_CHUNK = 1 << 18
# The digest of every file, and of the manifest (the bundle digest). Not sha256, which format 1 used: Python's
# sha256 is OpenSSL's, and importing hashlib costs a serving process 3.6 MB of resident memory (~4% of it;
# benchmarks/runtime_profile.py) for OpenSSL's initialisation, while BLAKE2b is built into Python. Where the
# CPU has SHA extensions BLAKE2b hashes ~40% slower (840 against 1,400 MB/s), which the Encoder hides: it
# hashes on a thread while the session loads (DigestCheck). sha256 stays for format-1 bundles and old pins.
FILE_DIGEST = "blake2b-256"
_FORMAT_1_DIGEST = "sha256"
DIGEST_ALGORITHMS = (FILE_DIGEST, _FORMAT_1_DIGEST)
_REPACK = "re-run langtrim pack"


@dataclass(frozen=True)
class SourceModel:
    """The model a bundle was cut from. `revision` (hub commit) or `sha256` (of a local weights file) pins it."""

    name: str  # hub id, local directory, or the default model's name
    description: str  # for people, e.g. "dequantized 4-bit weights of multilingual-e5-small"
    revision: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class SelectionRecord:
    """How the kept tokens were chosen: the settings, and per language where its statistics came from."""

    settings: Mapping[str, Any]  # JSON values, e.g. {"threshold": 0.001, "fallback": true}
    sources: Mapping[str, str]  # language code -> e.g. "corpus fr.txt (120,000 lines)"


@dataclass(frozen=True)
class VocabSizes:
    original_size: int  # rows of the source model's word embeddings
    kept_size: int  # rows of the bundle's; equals the length of id_map.json's kept_original_ids


@dataclass(frozen=True)
class Quantization:
    mode: str  # e.g. "none", "int8-dynamic"
    embeddings: str  # how the word embeddings were stored, e.g. "fp32", "int8"


@dataclass(frozen=True)
class FileEntry:
    """One file of the bundle; in manifest.json `{"size": ..., "<algorithm>": "<digest>"}`."""

    size: int  # bytes
    digest: str  # lowercase hex
    algorithm: str = FILE_DIGEST  # one of DIGEST_ALGORITHMS: "sha256" in format-1 bundles


@dataclass(frozen=True)
class Manifest:
    """manifest.json as read or written. Mapping fields hold plain JSON values; treat them as read-only."""

    format_version: int
    langtrim_version: str
    created: str  # UTC, ISO 8601 with offset, e.g. "2025-05-01T12:00:00+00:00"
    source: SourceModel
    languages: tuple[str, ...]
    selection: SelectionRecord
    vocab: VocabSizes
    quantization: Quantization
    optimization: str  # graph optimisation applied before saving, e.g. "none", "O2"
    task: Task
    inputs: tuple[str, ...]  # the graph's input names, e.g. ("input_ids", "attention_mask")
    outputs: tuple[str, ...]  # the graph's outputs; the first is pooled (embeddings) or read as logits
    pooling: Pooling
    normalize: bool  # L2-normalise embeddings by default
    max_length: int  # tokens per text, special tokens included; longer texts are truncated
    prompts: Mapping[str, str]  # prompt name -> prefix, e.g. {"query": "query: "}; may be empty
    labels: tuple[str, ...]  # class names in logit order (the classification tasks); empty otherwise
    parity: Mapping[str, Any] | None  # summary of the parity check, with a boolean "passed"; None before it
    files: Mapping[str, FileEntry]  # every file but the manifest: relative posix path -> size and digest
    # text-classification bundles that take text pairs (rerankers, NLI): how a long pair is cut. None: the
    # model classifies single texts. Absent from bundles packed before pairs were served (read as None).
    pair_truncation: PairTruncation | None = None
    # the serve-time coverage check's thresholds (`langtrim.runtime.coverage`); None in bundles packed before it
    coverage: Mapping[str, Any] | None = None

    @property
    def parity_passed(self) -> bool | None:
        """True/False once a parity check ran, None before."""
        return None if self.parity is None else bool(self.parity["passed"])


def write_manifest(
    directory: str | os.PathLike[str],
    *,
    source: SourceModel,
    languages: Sequence[str],
    selection: SelectionRecord,
    vocab: VocabSizes,
    quantization: Quantization,
    task: Task,
    pooling: Pooling,
    normalize: bool,
    max_length: int,
    optimization: str = "none",
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    prompts: Mapping[str, str] | None = None,
    labels: Sequence[str] = (),
    parity: Mapping[str, Any] | None = None,
    pair_truncation: PairTruncation | None = None,
) -> Manifest:
    """Describe the files in `directory` and write its manifest.json last; return what was written.

    Call it once every other file is in place (it hashes them all; dotfiles are skipped). `inputs` and
    `outputs` default to the names model.onnx declares (read with onnxruntime). The values go through the
    same validation as `read_manifest`, and id_map.json must agree with `vocab`, so a packager bug fails
    here rather than at load time. The returned Manifest equals what `read_manifest` will return.
    """
    root = Path(directory)
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        raise BundleError(
            f"cannot write the manifest of bundle {str(root)!r}: {', '.join(missing)} missing; a bundle needs "
            f"{', '.join(REQUIRED_FILES)}"
        )
    if inputs is None or outputs is None:
        graph_inputs, graph_outputs = graph_io_names(root / MODEL_FILE)
        inputs = graph_inputs if inputs is None else inputs
        outputs = graph_outputs if outputs is None else outputs

    manifest = Manifest(
        format_version=FORMAT_VERSION,
        langtrim_version=langtrim_version(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source=source,
        languages=tuple(languages),
        selection=selection,
        vocab=vocab,
        quantization=quantization,
        optimization=optimization,
        task=task,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        pooling=pooling,
        normalize=normalize,
        max_length=max_length,
        prompts=dict(prompts or {}),
        labels=tuple(labels),
        parity=None if parity is None else dict(parity),
        files={},
        pair_truncation=pair_truncation,
    )
    return _seal(root, manifest)


def record_parity(directory: str | os.PathLike[str], parity: Mapping[str, Any]) -> Manifest:
    """Set the manifest's parity summary (a dict with a boolean "passed") and re-hash the files.

    For the parity step of `langtrim pack`, after it wrote parity.json into a bundle it just built: the
    files are re-hashed without being verified first, so never call it on a bundle you did not write.
    """
    root = Path(directory)
    return _seal(root, replace(read_manifest(root, verify="none"), parity=dict(parity)))


def record_coverage(directory: str | os.PathLike[str], coverage: Mapping[str, Any]) -> Manifest:
    """Set the manifest's coverage thresholds and re-hash the files, as `record_parity` (same caveat)."""
    root = Path(directory)
    return _seal(root, replace(read_manifest(root, verify="none"), coverage=dict(coverage)))


def _seal(root: Path, manifest: Manifest) -> Manifest:
    """List and hash the files, validate as a reader would, check the id map, then write manifest.json.

    Validating the JSON text about to be written (not the dataclass) means a packager bug fails here, not
    at load time, and the returned Manifest equals what `read_manifest` will return.
    """
    # The files' digests are this format's, so the manifest is too (record_parity on an older bundle).
    current = replace(manifest, format_version=FORMAT_VERSION, files=describe_files(root))
    text = json.dumps(
        manifest_to_json(current),
        indent=2,
        ensure_ascii=False,
        allow_nan=False,
    )
    checked = _parse(json.loads(text), str(root), _WRITE_HINT)
    read_id_map(root, checked)  # id_map.json must agree with `vocab`
    _write_atomically(root / MANIFEST_FILE, text + "\n")
    return checked


def bundle_digest(directory: str | os.PathLike[str], algorithm: str = FILE_DIGEST) -> str:
    """The bundle's digest, "blake2b-256:" + the BLAKE2b-256 of manifest.json's bytes.

    The manifest holds the size and digest of every other file, so this one value covers the whole bundle.
    Nothing inside a bundle can vouch for itself: a deployment pins the digest `langtrim inspect` prints
    (`read_manifest(..., expected_digest=...)`, `langtrim serve --bundle-digest`) to refuse any change.
    A "sha256:" pin (what langtrim printed before format 2) is still checked, with sha256.
    """
    return f"{algorithm}:" + file_digest(Path(directory) / MANIFEST_FILE, algorithm=algorithm)


def read_manifest(
    directory: str | os.PathLike[str], *, verify: Verify = "full", expected_digest: str | None = None
) -> Manifest:
    """Read and validate a bundle's manifest; raise BundleError naming the file or field at fault.

    `verify` decides how the listed files are checked:
    - "full" (default): each exists, has the listed size and the listed digest. Catches corruption and
      tampering. Hashing costs ~40 ms per 35 MB from the page cache (BLAKE2b-256, `file_digest`), more
      from a cold disk; creating the onnxruntime session takes longer, and the Encoder hashes while it
      loads (`DigestCheck`), so "full" is the default.
    - "size": each exists and has the listed size; catches truncated and missing files, not a changed
      byte (an `Encoder` loaded so warns that it does). The fast path for a process that loads a
      bundle it verified before (e.g. many workers).
    - "none": read the manifest only, for tools that only show what a bundle is.
    With "full" and "size", a file in the bundle that the manifest does not list is refused too.
    `expected_digest` (see `bundle_digest`) refuses a manifest other than the one pinned.
    """
    if verify not in _VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(_VERIFY_MODES)}, got {verify!r}")
    root = Path(directory)
    label = str(directory)
    if not root.exists():
        raise BundleError(f"bundle {label!r} does not exist: give the directory langtrim pack wrote")
    if not root.is_dir():
        raise BundleError(
            f"bundle {label!r} is a file, not a directory: give the directory langtrim pack wrote"
        )
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(
            f"bundle {label!r} has no {MANIFEST_FILE}: it is not a langtrim bundle or it is incomplete; {_REPACK}"
        )
    if expected_digest is not None:
        _check_digest(root, label, expected_digest)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise BundleError(
            f"bundle {label!r}: {MANIFEST_FILE} is not valid JSON ({str(error)[:200]}); {_REPACK}"
        ) from None
    manifest = _parse(data, label, _REPACK)
    _check_positions(root, label, manifest)
    if verify != "none":
        _verify_files(root, label, manifest, full=verify == "full")
    return manifest


def _check_digest(root: Path, label: str, expected: str) -> None:
    algorithm, _, hex_part = expected.partition(":")
    if algorithm not in DIGEST_ALGORITHMS or not _is_hex_digest(hex_part):
        raise BundleError(
            f"{expected!r} is not a bundle digest: pin the {FILE_DIGEST}:<64 hex digits> that `langtrim inspect` "
            "prints"
        )
    found = bundle_digest(root, algorithm)
    if found != expected:
        shown = len(algorithm) + 13
        raise BundleError(
            f"bundle {label!r} has digest {found[:shown]}… but {expected[:shown]}… was pinned: it was changed "
            "after packing, or pin the digest `langtrim inspect` prints for the bundle you mean to serve"
        )


def _is_hex_digest(value: object) -> bool:
    """64 lowercase hex digits: a 256-bit digest as every algorithm here writes it."""
    return isinstance(value, str) and len(value) == 64 and not value.strip("0123456789abcdef")


def _check_positions(root: Path, label: str, manifest: Manifest) -> None:
    """max_length must fit the model's position table (config.json), or long texts fail at run time."""
    try:
        config = json.loads((root / HF_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return  # a missing or broken config.json is reported by the file checks
    positions = config.get("max_position_embeddings") if isinstance(config, dict) else None
    if _is_int(positions) and manifest.max_length > positions:
        raise BundleError(
            f"bundle {label!r}: {MANIFEST_FILE} says max_length {manifest.max_length}, more than the model's "
            f"{positions} positions ({HF_CONFIG_FILE} max_position_embeddings); {_REPACK}"
        )


def manifest_to_json(manifest: Manifest) -> dict[str, Any]:
    """The JSON object of manifest.json: the dataclasses' fields, nested, in declaration order; a file entry
    names its digest's algorithm as its key (see `FileEntry`)."""
    data = asdict(manifest)
    data["files"] = {name: {"size": e.size, e.algorithm: e.digest} for name, e in manifest.files.items()}
    return data


def regular_files(directory: Path) -> dict[str, Path]:
    """Every regular file under `directory` (links followed, as in a hub snapshot) by relative posix path,
    sorted, except dotfiles and what lies in dot-folders (temporary and hidden files are no part of a model)."""
    found: dict[str, Path] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found[relative.as_posix()] = path
    return found


def describe_files(directory: Path) -> dict[str, FileEntry]:
    """Size and digest of every file under `directory` except the manifest and dotfiles, sorted by path."""
    return {
        relative: FileEntry(size=path.stat().st_size, digest=file_digest(path))
        for relative, path in regular_files(directory).items()
        if relative != MANIFEST_FILE
    }


def file_digest(*paths: Path, algorithm: str = FILE_DIGEST) -> str:
    """The digest (lowercase hex) of the files' bytes, one file after the other, read in chunks into one
    buffer (a new chunk each read would leave the hashing thread's allocator holding them).

    The files are read without readahead (POSIX_FADV_RANDOM, where the OS has it). A load hashes the
    weights before onnxruntime maps them, so when the page cache was cold this read decides its layout:
    readahead fills it with large folios, and the kernel then maps a whole folio (up to megabytes) for each
    embedding row a request reads, where base pages map only 64 KB around it: most of the weights file's
    share of resident memory after the first request (benchmarks/runtime_profile.py, RESIDENT). Hashing
    from the page cache costs the same either way.
    """
    digest = _new_digest(algorithm)
    buffer = bytearray(_HASH_CHUNK)
    view = memoryview(buffer)
    for path in paths:
        with path.open("rb", buffering=0) as stream:
            _advise_no_readahead(stream.fileno())
            while read := stream.readinto(buffer):
                digest.update(view[:read])
    return digest.hexdigest()


def _new_digest(algorithm: str) -> Any:
    if algorithm == FILE_DIGEST:
        return _blake2b(digest_size=32)
    if algorithm == _FORMAT_1_DIGEST:
        import hashlib  # here: only format-1 bundles, sha256 pins and the packager pay for OpenSSL

        return hashlib.sha256()
    raise ValueError(f"digest algorithm must be one of {', '.join(DIGEST_ALGORITHMS)}, got {algorithm!r}")


def _advise_no_readahead(descriptor: int) -> None:
    """Advice only: where the OS or the file system has no such advice, the file is read as usual."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_RANDOM)


def graph_io_names(model_path: Path) -> tuple[list[str], list[str]]:
    """Input and output names an ONNX graph declares, in graph order."""
    import onnxruntime  # here, not at the top: importing it costs ~0.2 s and most readers never need it

    try:
        session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        raise BundleError(f"{str(model_path)!r} is not a model onnxruntime can load: {error}") from error
    return [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]


def read_id_map(directory: str | os.PathLike[str], manifest: Manifest) -> np.ndarray:
    """Original id -> new id, as a lookup table [original_size] int64; dropped ids map to the unknown token.

    id_map.json (written by the packager's IdMap.to_json) is {"format": 1, "original_vocab_size": int,
    "unk_id": int (new id), "kept_original_ids": [ascending original ids; index = new id]}.
    """
    root = Path(directory)
    label = str(directory)

    def bad(problem: str) -> BundleError:
        return BundleError(f"bundle {label!r}: {ID_MAP_FILE} {problem}; {_REPACK}")

    try:
        data = json.loads((root / ID_MAP_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise bad("is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad(f"is not valid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("format") != 1:
        raise bad('is not an id map of format 1 (expected {"format": 1, ...})')
    kept_list, original_size, unk_id = (
        data.get("kept_original_ids"),
        data.get("original_vocab_size"),
        data.get("unk_id"),
    )
    if not isinstance(kept_list, list) or not all(_is_int(i) for i in kept_list):
        raise bad("field 'kept_original_ids' must be a list of integers")
    if not _is_int(original_size) or not _is_int(unk_id):
        raise bad("fields 'original_vocab_size' and 'unk_id' must be integers")
    kept = np.asarray(kept_list, dtype=np.int64)
    if len(kept) != manifest.vocab.kept_size or original_size != manifest.vocab.original_size:
        raise bad(
            f"maps {len(kept)} of {original_size} ids but the manifest says {manifest.vocab.kept_size} of "
            f"{manifest.vocab.original_size}"
        )
    if len(kept) and (kept[0] < 0 or kept[-1] >= original_size or np.any(np.diff(kept) <= 0)):
        raise bad(f"kept_original_ids must be ascending, unique and within [0, {original_size})")
    if not 0 <= unk_id < len(kept):
        raise bad(f"unk_id {unk_id} is not a new id (0 to {len(kept) - 1})")
    lookup = np.full(original_size, unk_id, dtype=np.int64)
    lookup[kept] = np.arange(len(kept), dtype=np.int64)
    return lookup


# --- parsing -----------------------------------------------------------------------------------------------

_WRITE_HINT = "write_manifest was given a bad value (a bug in the caller)"


class _Fields:
    """Typed access to one JSON object of the manifest; errors name the field by its dotted path."""

    def __init__(self, data: object, path: str, bundle: str, hint: str) -> None:
        self.bundle, self.path, self.hint = bundle, path, hint
        if not isinstance(data, dict):
            raise self.error(f"{path or MANIFEST_FILE} must be a JSON object, got {_json_type(data)}")
        self.data: dict[str, Any] = data

    def error(self, problem: str) -> BundleError:
        return BundleError(f"bundle {self.bundle!r}: {MANIFEST_FILE} {problem}; {self.hint}")

    def _get(self, name: str, check: Any, what: str, *, optional: bool = False) -> Any:
        where = f"field '{self.path}{name}'"
        if name not in self.data:
            raise self.error(f"{where} is missing")
        value = self.data[name]
        if optional and value is None:
            return None
        if not check(value):
            raise self.error(f"{where} must be {what}, got {json.dumps(value)[:80]}")
        return value

    def obj(self, name: str) -> "_Fields":
        value = self._get(name, lambda v: isinstance(v, dict), "an object")
        return _Fields(value, f"{self.path}{name}.", self.bundle, self.hint)

    def text(self, name: str) -> str:
        return str(self._get(name, lambda v: isinstance(v, str) and v != "", "a non-empty string"))

    def optional_text(self, name: str) -> str | None:
        return self._get(
            name, lambda v: isinstance(v, str) and v != "", "a non-empty string or null", optional=True
        )

    def integer(self, name: str, minimum: int) -> int:
        return int(self._get(name, lambda v: _is_int(v) and v >= minimum, f"an integer >= {minimum}"))

    def boolean(self, name: str) -> bool:
        return bool(self._get(name, lambda v: isinstance(v, bool), "true or false"))

    def choice(self, name: str, choices: tuple[str, ...]) -> Any:
        return self._get(name, lambda v: v in choices, f"one of {', '.join(map(repr, choices))}")

    def texts(self, name: str, *, non_empty: bool = False) -> tuple[str, ...]:
        what = "a list of non-empty strings" + (" with at least one item" if non_empty else "")
        value = self._get(
            name,
            lambda v: (
                isinstance(v, list)
                and all(isinstance(i, str) and i for i in v)
                and (bool(v) or not non_empty)
            ),
            what,
        )
        return tuple(value)

    def text_map(self, name: str) -> dict[str, str]:
        return dict(
            self._get(
                name,
                lambda v: isinstance(v, dict) and all(isinstance(i, str) for i in v.values()),
                "an object of strings",
            )
        )


def _parse(data: object, bundle: str, hint: str) -> Manifest:
    top = _Fields(data, "", bundle, hint)
    _check_format(top)
    source, selection, vocab, quantization = (
        top.obj("source"),
        top.obj("selection"),
        top.obj("vocab"),
        top.obj("quantization"),
    )
    task = top.choice("task", TASKS)
    manifest = Manifest(
        format_version=top.integer("format_version", OLDEST_READABLE_FORMAT),
        langtrim_version=top.text("langtrim_version"),
        created=_created(top),
        source=SourceModel(
            name=source.text("name"),
            description=source.text("description"),
            revision=source.optional_text("revision"),
            sha256=source.optional_text("sha256"),
        ),
        languages=top.texts("languages", non_empty=True),
        selection=SelectionRecord(
            settings=dict(selection.obj("settings").data), sources=selection.text_map("sources")
        ),
        vocab=VocabSizes(
            original_size=vocab.integer("original_size", 1), kept_size=vocab.integer("kept_size", 1)
        ),
        quantization=Quantization(mode=quantization.text("mode"), embeddings=quantization.text("embeddings")),
        optimization=top.text("optimization"),
        task=task,
        inputs=top.texts("inputs", non_empty=True),
        outputs=top.texts("outputs", non_empty=True),
        pooling=top.choice("pooling", POOLINGS),
        normalize=top.boolean("normalize"),
        max_length=top.integer("max_length", 2),
        prompts=top.text_map("prompts"),
        labels=top.texts("labels", non_empty=task in (TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION)),
        parity=_parity(top),
        files=_files(top),
        pair_truncation=_pair_truncation(top, task),
        coverage=_coverage(top),
    )
    if manifest.vocab.kept_size > manifest.vocab.original_size:
        raise top.error(
            f"field 'vocab.kept_size' ({manifest.vocab.kept_size}) is larger than 'vocab.original_size' "
            f"({manifest.vocab.original_size})"
        )
    return manifest


def _pair_truncation(top: _Fields, task: str) -> Any:
    """Optional: bundles packed before pairs were served lack the field."""
    if top.data.get("pair_truncation") is None:
        return None
    value = top.choice("pair_truncation", PAIR_TRUNCATIONS)
    if task != TEXT_CLASSIFICATION:
        raise top.error(
            f"field 'pair_truncation' is set, but only a {TEXT_CLASSIFICATION} bundle takes text pairs"
        )
    return value


def _check_format(top: _Fields) -> None:
    """Check the version before anything else: a newer format may have a different shape."""
    version = top._get("format_version", _is_int, "an integer")
    if OLDEST_READABLE_FORMAT <= version <= FORMAT_VERSION:
        return
    written_by = top.data.get("langtrim_version")
    by = f"langtrim {written_by}" if isinstance(written_by, str) else "an unknown langtrim"
    readable = f"this langtrim reads format {OLDEST_READABLE_FORMAT}-{FORMAT_VERSION}"
    fix = "upgrade langtrim" if version > FORMAT_VERSION else f"{_REPACK} with this langtrim"
    raise BundleError(f"bundle {top.bundle!r} was written by {by} (format {version}); {readable}: {fix}")


def _created(top: _Fields) -> str:
    created = top.text("created")
    try:
        parsed = datetime.fromisoformat(created)
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() != timezone.utc.utcoffset(None):
        raise top.error(
            f"field 'created' must be a UTC ISO 8601 time like 2025-05-01T12:00:00+00:00, got {created!r}"
        )
    return created


def _parity(top: _Fields) -> dict[str, Any] | None:
    if top._get("parity", lambda v: isinstance(v, dict), "an object or null", optional=True) is None:
        return None
    parity = top.obj("parity")
    parity.boolean("passed")
    return dict(parity.data)


def _coverage(top: _Fields) -> dict[str, Any] | None:
    """Optional: bundles packed before the coverage check lack it (`langtrim.runtime.coverage` reads it)."""
    value = top.data.get("coverage")
    if value is not None and not isinstance(value, dict):
        raise top.error(f"field 'coverage' must be an object or null, got {_json_type(value)}")
    return value


def _files(top: _Fields) -> dict[str, FileEntry]:
    listed = top.obj("files")
    algorithm = _FORMAT_1_DIGEST if top.data["format_version"] == 1 else FILE_DIGEST
    entries: dict[str, FileEntry] = {}
    for name in listed.data:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or "\\" in name or name in ("", "."):
            raise top.error(f"lists file {name!r}, which is not a path inside the bundle")
        entry = listed.obj(name)
        entries[name] = FileEntry(
            size=entry.integer("size", 0),
            digest=entry._get(algorithm, _is_hex_digest, "64 lowercase hex digits"),
            algorithm=algorithm,
        )
    unlisted = [name for name in REQUIRED_FILES if name not in entries]
    if unlisted:
        raise top.error(f"does not list {', '.join(unlisted)}, which every bundle has")
    return entries


def _verify_files(root: Path, label: str, manifest: Manifest, *, full: bool) -> None:
    unlisted = [name for name in regular_files(root) if name != MANIFEST_FILE and name not in manifest.files]
    if unlisted:
        raise BundleError(
            f"bundle {label!r}: {unlisted[0]} is not listed in {MANIFEST_FILE}"
            f"{f' (nor {len(unlisted) - 1} more files)' if len(unlisted) > 1 else ''}: a bundle holds only the "
            f"files it lists; remove it, or {_REPACK}"
        )
    for name, entry in manifest.files.items():
        path = root / name
        if not path.is_file():
            raise BundleError(f"bundle {label!r}: {name} is missing; {_REPACK}")
        size = path.stat().st_size
        if size != entry.size:
            raise BundleError(
                f"bundle {label!r}: {name} has {size} bytes but the manifest says {entry.size}: the file is "
                f"truncated, corrupt or was replaced; {_REPACK}"
            )
    if full:
        _verify_digests(root, label, manifest)


def _verify_digests(root: Path, label: str, manifest: Manifest) -> None:
    for name, entry in manifest.files.items():
        if (digest := file_digest(root / name, algorithm=entry.algorithm)) != entry.digest:
            raise BundleError(
                f"bundle {label!r}: {name} has {entry.algorithm} {digest[:12]}… but the manifest says "
                f"{entry.digest[:12]}…: "
                f"the file is corrupt or was changed after packing; {_REPACK}"
            )


class DigestCheck:
    """The digest checks of verify="full" on a thread of their own, started once the cheap checks passed
    (`read_manifest(verify="size")`), while the caller loads the files; `wait` raises what they found.

    Python's hashing and onnxruntime's session creation both release the GIL, so on two cores or more a load costs
    the longer of the two instead of their sum (measured in docs/results.md). Nothing may be served before
    `wait` returns.
    """

    def __init__(self, root: Path, label: str, manifest: Manifest) -> None:
        import threading  # here: only a full load needs it

        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(root, label, manifest), name="langtrim-digests", daemon=True
        )
        self._thread.start()

    def _run(self, root: Path, label: str, manifest: Manifest) -> None:
        try:
            _verify_digests(root, label, manifest)
        except OSError as error:  # removed or unreadable since its size was checked
            self._error = BundleError(
                f"bundle {label!r}: cannot read a file to check it ({error}); {_REPACK}"
            )
        except BaseException as error:  # re-raised by wait(), in the caller's thread
            self._error = error

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def _write_atomically(path: Path, text: str) -> None:
    """Write to a dotfile sibling, then rename: a reader never sees half a manifest."""
    import tempfile  # here: only writers need it, and it costs readers ~1 MB of RSS

    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(staging, 0o666 & ~_umask())
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
