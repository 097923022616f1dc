"""Bundle format v2: what write_manifest records, and how read_manifest refuses a bad bundle.

Bundles here are real: tests/support/bundles.py builds a tiny random-weight BERT with a real WordPiece
tokenizer, exported to ONNX with optimum.
"""

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from langtrim.runtime import FORMAT_VERSION, BundleError, LangtrimError, read_manifest
from langtrim.runtime.bundle import (
    FILE_DIGEST,
    MANIFEST_FILE,
    MODEL_FILE,
    PARITY_FILE,
    REQUIRED_FILES,
    TOKENIZER_FILE,
    bundle_digest,
    file_digest,
    record_parity,
    write_manifest,
)
from tests.support.bundles import TinyBundle, copy_bundle, manifest_fields, tiny_bundle


@pytest.fixture(scope="session")
def bert(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    return tiny_bundle(tmp_path_factory, "bert")


@pytest.fixture
def bundle_copy(bert: TinyBundle, tmp_path: Path) -> Path:
    return copy_bundle(bert, tmp_path)


def _edit_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / MANIFEST_FILE
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, **changes}))


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


# --- what write_manifest records ---------------------------------------------------------------------------


def test_manifest_round_trips(bundle_copy: Path) -> None:
    written = write_manifest(bundle_copy, **manifest_fields("bert"))
    assert read_manifest(bundle_copy) == written
    assert written.format_version == FORMAT_VERSION
    assert written.prompts == {"query": "query: ", "passage": "passage: "}
    assert written.selection.settings["keep_texts"] == ["query: "]  # JSON values, as a reader sees them
    assert written.inputs == ("input_ids", "attention_mask", "token_type_ids")  # read from model.onnx
    assert written.outputs == ("last_hidden_state",)
    assert written.parity is None and written.parity_passed is None


def test_manifest_lists_every_file_with_size_and_blake2b(bert: TinyBundle) -> None:
    files = bert.manifest.files
    on_disk = {p.name for p in bert.path.iterdir() if p.name != MANIFEST_FILE}
    assert set(files) == on_disk and set(REQUIRED_FILES) <= on_disk
    model = bert.path / MODEL_FILE
    assert files[MODEL_FILE].size == model.stat().st_size
    assert files[MODEL_FILE].algorithm == FILE_DIGEST == "blake2b-256"
    assert files[MODEL_FILE].digest == hashlib.blake2b(model.read_bytes(), digest_size=32).hexdigest()


@pytest.mark.parametrize(
    "algorithm, reference",
    [("blake2b-256", lambda data: hashlib.blake2b(data, digest_size=32)), ("sha256", hashlib.sha256)],
)
def test_file_digest_is_the_digest_of_the_files_bytes_one_after_the_other(
    tmp_path: Path, algorithm: str, reference
) -> None:
    """Checked against hashlib on the joined bytes, across read chunks (the files are read without readahead
    into one reused buffer, which must not change what is read)."""
    rng = np.random.default_rng(0)
    parts = [rng.bytes(size) for size in (0, 1, 3 * (1 << 18) + 7, 5)]
    paths = []
    for number, part in enumerate(parts):
        paths.append(tmp_path / f"part{number}")
        paths[-1].write_bytes(part)
    assert file_digest(*paths, algorithm=algorithm) == reference(b"".join(parts)).hexdigest()
    assert file_digest(paths[2], algorithm=algorithm) != file_digest(paths[2], paths[1], algorithm=algorithm)


def test_serving_a_bundle_never_loads_openssl(bert: TinyBundle) -> None:
    """hashlib's import initialises OpenSSL, 3.6 MB of a serving process's memory: a load and an embedding
    of a current bundle, with its digest pinned, must not import it."""
    digest = bundle_digest(bert.path)
    code = (
        "import sys; from langtrim.runtime import Encoder; "
        f"Encoder({str(bert.path)!r}, expected_digest={digest!r}).embed(['x']); "
        "print(sorted(m for m in ('hashlib', '_hashlib', 'ssl') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_a_file_system_without_the_readahead_advice_still_verifies(bundle_copy: Path, monkeypatch) -> None:
    def refuse(*args: object) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "posix_fadvise", refuse, raising=False)
    assert read_manifest(bundle_copy, verify="full").files
    data = (bundle_copy / MODEL_FILE).read_bytes()
    (bundle_copy / MODEL_FILE).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(BundleError, match="changed after packing"):
        read_manifest(bundle_copy, verify="full")


def test_manifest_json_is_plain_readable_json(bert: TinyBundle) -> None:
    data = json.loads((bert.path / MANIFEST_FILE).read_text())
    assert data["format_version"] == FORMAT_VERSION == 2
    assert set(data["files"][MODEL_FILE]) == {"size", "blake2b-256"}
    assert data["vocab"] == {"original_size": 30_522, "kept_size": 30_522}
    assert data["files"][MODEL_FILE]["size"] > 0
    assert data["created"].endswith("+00:00")


def test_write_manifest_refuses_a_directory_without_the_bundle_files(bundle_copy: Path) -> None:
    (bundle_copy / "config.json").unlink()
    with pytest.raises(BundleError, match=r"config\.json missing"):
        write_manifest(bundle_copy, **manifest_fields("bert"))
    assert json.loads((bundle_copy / MANIFEST_FILE).read_text())["files"]  # the old manifest is untouched


def test_write_manifest_checks_the_id_map_against_the_vocab_sizes(bundle_copy: Path) -> None:
    with pytest.raises(BundleError, match=r"id_map\.json maps 30522 of 30522 ids but the manifest says 1000"):
        write_manifest(bundle_copy, **manifest_fields("bert", kept_size=1000))


def test_write_manifest_rejects_a_bad_value_naming_the_field(bundle_copy: Path) -> None:
    with pytest.raises(BundleError, match=r"field 'pooling' must be one of 'mean', 'cls', got \"max\""):
        write_manifest(bundle_copy, **{**manifest_fields("bert"), "pooling": "max"})


def test_record_parity_adds_the_summary_and_lists_parity_json(bundle_copy: Path) -> None:
    (bundle_copy / PARITY_FILE).write_text(json.dumps({"max_abs_diff": 3e-6}))
    recorded = record_parity(bundle_copy, {"passed": True, "max_abs_diff": 3e-6})
    assert recorded.parity_passed is True
    assert PARITY_FILE in recorded.files
    assert read_manifest(bundle_copy) == recorded


# --- how read_manifest refuses a bad bundle ----------------------------------------------------------------


def test_tampered_model_is_named(bundle_copy: Path) -> None:
    _flip_one_byte(bundle_copy / MODEL_FILE)
    with pytest.raises(BundleError, match=r"model\.onnx has blake2b-256 .* re-run langtrim pack"):
        read_manifest(bundle_copy)


def _as_format_1(bundle: Path) -> None:
    """Rewrite the manifest as langtrim wrote format 1: every file's sha256 in place of its BLAKE2b."""
    data = json.loads((bundle / MANIFEST_FILE).read_text())
    data["format_version"] = 1
    data["files"] = {
        name: {"size": entry["size"], "sha256": hashlib.sha256((bundle / name).read_bytes()).hexdigest()}
        for name, entry in data["files"].items()
    }
    (bundle / MANIFEST_FILE).write_text(json.dumps(data, indent=2))


def test_a_format_1_bundle_still_verifies_with_its_sha256(bundle_copy: Path) -> None:
    from langtrim.runtime import Encoder

    _as_format_1(bundle_copy)
    manifest = read_manifest(bundle_copy)
    assert manifest.format_version == 1 and {e.algorithm for e in manifest.files.values()} == {"sha256"}
    assert Encoder(bundle_copy).embed(["old bundle"]).shape[0] == 1
    _flip_one_byte(bundle_copy / MODEL_FILE)
    with pytest.raises(BundleError, match=r"model\.onnx has sha256 .* changed after packing"):
        read_manifest(bundle_copy)
    with pytest.raises(BundleError, match=r"model\.onnx has sha256 .* changed after packing"):
        Encoder(bundle_copy)


def test_resealing_a_format_1_bundle_writes_the_current_format(bundle_copy: Path) -> None:
    _as_format_1(bundle_copy)
    resealed = record_parity(bundle_copy, {"passed": True})
    assert resealed.format_version == FORMAT_VERSION
    assert {entry.algorithm for entry in resealed.files.values()} == {FILE_DIGEST}
    assert read_manifest(bundle_copy) == resealed


def test_a_format_1_manifest_must_list_sha256_and_a_format_2_one_blake2b(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, format_version=1)  # still BLAKE2b entries: not what format 1 holds
    with pytest.raises(BundleError, match=r"field 'files\.config\.json\.sha256' is missing"):
        read_manifest(bundle_copy, verify="none")


def test_size_check_is_a_fast_path_that_misses_a_changed_byte(bundle_copy: Path) -> None:
    _flip_one_byte(bundle_copy / MODEL_FILE)
    assert read_manifest(bundle_copy, verify="size").files  # same size: only "full" notices
    with (bundle_copy / MODEL_FILE).open("ab") as stream:
        stream.write(b"\0")
    with pytest.raises(BundleError, match=r"model\.onnx has \d+ bytes but the manifest says \d+"):
        read_manifest(bundle_copy, verify="size")


def test_verify_none_reads_the_manifest_only(bundle_copy: Path) -> None:
    (bundle_copy / MODEL_FILE).unlink()
    assert read_manifest(bundle_copy, verify="none").task == "feature-extraction"


def test_missing_file_is_named(bundle_copy: Path) -> None:
    (bundle_copy / TOKENIZER_FILE).unlink()
    with pytest.raises(BundleError, match=r"tokenizer\.json is missing; re-run langtrim pack"):
        read_manifest(bundle_copy, verify="size")


def test_missing_bundle_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"bundle '.*nowhere' does not exist"):
        read_manifest(tmp_path / "nowhere")


def test_directory_without_manifest_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"has no manifest\.json: it is not a langtrim bundle"):
        read_manifest(tmp_path)


def test_manifest_that_is_not_json(bundle_copy: Path) -> None:
    (bundle_copy / MANIFEST_FILE).write_text("{ not json")
    with pytest.raises(BundleError, match=r"manifest\.json is not valid JSON"):
        read_manifest(bundle_copy)


def test_newer_format_asks_to_upgrade_langtrim(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, format_version=3, langtrim_version="2.1", vocab="a different shape")
    with pytest.raises(BundleError) as raised:
        read_manifest(bundle_copy)
    assert str(raised.value) == (
        f"bundle '{bundle_copy}' was written by langtrim 2.1 (format 3); this langtrim reads format 1-2: "
        "upgrade langtrim"
    )


def test_older_format_asks_to_repack(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, format_version=0)
    with pytest.raises(
        BundleError, match=r"\(format 0\); this langtrim reads format 1-2: re-run langtrim pack"
    ):
        read_manifest(bundle_copy)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": "1"}, r"field 'format_version' must be an integer, got \"1\""),
        ({"task": None}, r"field 'task' must be one of 'feature-extraction', 'text-classification'"),
        (
            {"vocab": {"original_size": 30522, "kept_size": "12"}},
            r"field 'vocab\.kept_size' must be an integer",
        ),
        ({"normalize": "yes"}, r"field 'normalize' must be true or false"),
        ({"max_length": 0}, r"field 'max_length' must be an integer >= 2"),
        ({"created": "2025-05-01T12:00:00"}, r"field 'created' must be a UTC ISO 8601 time"),
        ({"parity": {"max_abs_diff": 0.1}}, r"field 'parity\.passed' is missing"),
        ({"labels": []}, None),  # fine for feature-extraction
    ],
)
def test_bad_manifest_field_is_named(bundle_copy: Path, changes: dict, message: str | None) -> None:
    _edit_manifest(bundle_copy, **changes)
    if message is None:
        read_manifest(bundle_copy)
        return
    with pytest.raises(BundleError, match=message):
        read_manifest(bundle_copy)


def test_missing_manifest_field_is_named(bundle_copy: Path) -> None:
    data = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    del data["pooling"]
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"field 'pooling' is missing; re-run langtrim pack"):
        read_manifest(bundle_copy)


def test_listed_file_outside_the_bundle_is_refused(bundle_copy: Path) -> None:
    data = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    data["files"]["../secret"] = {"size": 1, "blake2b-256": "0" * 64}
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"lists file '\.\./secret', which is not a path inside the bundle"):
        read_manifest(bundle_copy)


def test_classifier_manifest_needs_labels(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, task="text-classification", labels=[])
    with pytest.raises(
        BundleError, match=r"field 'labels' must be a list of non-empty strings with at least one"
    ):
        read_manifest(bundle_copy)


def test_bundle_errors_are_langtrim_errors() -> None:
    assert issubclass(BundleError, LangtrimError)


def test_manifest_is_frozen(bert: TinyBundle) -> None:
    with pytest.raises(AttributeError):
        bert.manifest.max_length = 4  # type: ignore[misc]
    assert replace(bert.manifest, max_length=4).max_length == 4


# --- the bundle is also a Hugging Face ONNX folder ---------------------------------------------------------


def test_optimum_loads_the_bundle(bert: TinyBundle) -> None:
    from optimum.onnxruntime import ORTModelForFeatureExtraction
    from transformers import AutoTokenizer

    from langtrim.runtime import Encoder

    model = ORTModelForFeatureExtraction.from_pretrained(bert.path)
    tokenizer = AutoTokenizer.from_pretrained(bert.path)
    assert tokenizer.model_max_length == 512 and tokenizer.pad_token == "[PAD]"
    text = "The bundle is also a Hugging Face ONNX folder."
    hidden = model(**tokenizer([text], return_tensors="pt")).last_hidden_state.detach().numpy()
    ours = Encoder(bert.path).embed([text], normalize=False)
    assert np.abs(hidden.mean(axis=1) - ours).max() <= 1e-5


# --- a bundle changed after packing does not load -------------------------------------------------------------


def test_a_file_the_manifest_does_not_list_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "model.onnx.data").write_bytes(b"\0" * 64)  # e.g. weights an attacker slipped in
    for verify in ("full", "size"):
        with pytest.raises(BundleError, match=r"model\.onnx\.data is not listed in manifest\.json"):
            read_manifest(bundle_copy, verify=verify)


def test_a_listed_file_whose_entry_was_removed_is_refused(bundle_copy: Path) -> None:
    data = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    optional = next(name for name in data["files"] if name not in REQUIRED_FILES)
    del data["files"][optional]
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=f"{optional} is not listed in manifest.json"):
        read_manifest(bundle_copy)


def test_a_pinned_digest_catches_any_change_to_the_manifest(bundle_copy: Path) -> None:
    digest = bundle_digest(bundle_copy)
    assert read_manifest(bundle_copy, expected_digest=digest).files
    _edit_manifest(bundle_copy, max_length=64)  # consistent with every file, but not what was pinned
    with pytest.raises(BundleError, match="digest .* but .* pinned"):
        read_manifest(bundle_copy, expected_digest=digest)
    for malformed in ("abc", "md5:" + "0" * 64, digest.upper(), digest[:-1]):
        with pytest.raises(BundleError, match="not a bundle digest: pin the blake2b-256:<64 hex digits>"):
            read_manifest(bundle_copy, expected_digest=malformed)


def test_a_sha256_pin_from_before_format_2_is_still_checked(bundle_copy: Path) -> None:
    old_pin = "sha256:" + hashlib.sha256((bundle_copy / MANIFEST_FILE).read_bytes()).hexdigest()
    assert (
        bundle_digest(bundle_copy).startswith("blake2b-256:")
        and bundle_digest(bundle_copy, "sha256") == old_pin
    )
    assert read_manifest(bundle_copy, expected_digest=old_pin).files
    _edit_manifest(bundle_copy, max_length=64)
    with pytest.raises(BundleError, match=r"has digest sha256:.* but sha256:.* was pinned"):
        read_manifest(bundle_copy, expected_digest=old_pin)


def test_max_length_beyond_the_models_positions_is_refused(bundle_copy: Path) -> None:
    _edit_manifest(bundle_copy, max_length=10**12)
    with pytest.raises(BundleError, match=r"max_length 1000000000000, more than the model.s 512 positions"):
        read_manifest(bundle_copy, verify="none")


def test_a_deeply_nested_manifest_is_one_clear_error(bundle_copy: Path) -> None:
    (bundle_copy / MANIFEST_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleError, match="manifest.json is not valid JSON"):
        read_manifest(bundle_copy)


def test_the_size_only_check_says_it_does_not_look_at_the_bytes(bundle_copy: Path) -> None:
    """An Encoder loaded so warns, at the caller's line; the packager's own reads of a bundle it just wrote
    stay quiet."""
    import warnings

    from langtrim.runtime import Encoder

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_manifest(bundle_copy, verify="size")
        assert not caught
        Encoder(bundle_copy, verify="size")
    assert len(caught) == 1 and caught[0].filename == __file__
    assert "verify='size'" in str(caught[0].message) and "changed byte" in str(caught[0].message)
