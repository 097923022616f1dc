"""Fuzz the real server from its own OpenAPI schema with schemathesis: no 5xx, and answers as documented.

schemathesis generates valid and invalid requests for every operation of GET /openapi.json (its coverage
and fuzzing phases, fixed seed) and runs all its checks, among them: no server error, responses match the
documented status codes, content types and schemas, invalid data is rejected, valid data is accepted.
Two statuses are told to it because JSON Schema cannot say them: a body may be 413 (over the byte limit:
a text of maxLength characters can take 4 bytes each), and a schema-valid text may still be 422 when it
has more tokens than the model's max_length (documented in the schema), as text-embeddings-inference says.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import SERVER_MODULE, free_port, packed_bundle, running_server
from tests.support.task_models import pack_task_bundle

SCHEMATHESIS_CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "413", "422"]

[checks.positive_data_acceptance]
expected-statuses = ["200", "413", "422"]

# OpenAI's routes say 400 where TEI says 422.
[[operations]]
include-path-regex = "embeddings$"
checks.positive_data_acceptance.expected-statuses = ["200", "400", "413"]
"""
# Generated requests per operation in the fuzzing phase, on top of the coverage phase's boundary cases (every
# documented limit, missing and wrong-typed fields), which find the errors; kept small for CI's time budget.
MAX_EXAMPLES = 30
SMALL_LIMITS = ["--max-texts", "16", "--max-text-chars", "2000", "--max-body-bytes", "65536"]


# kind -> the operations of its OpenAPI document. POST: the task's routes, /tokenize, /decode, / and
# /invocations; GET: /health, /, /ping, /info, /metrics (and /v1/models for embeddings).
OPERATIONS = {"xlmr": 15, "xlmr-classifier": 10, "xlmr-reranker": 11, "xlmr-ner": 10}


@pytest.mark.parametrize(
    ("kind", "api_key"),
    [
        ("xlmr", None),
        ("xlmr-classifier", None),
        ("xlmr", "fuzz-key"),
        ("xlmr-reranker", None),
        ("xlmr-ner", None),
    ],
    ids=["embed", "classify", "api-key", "rerank", "entities"],
)
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    kind, api_key, tiny_models, task_model, sentences, tmp_path_factory, tmp_path: Path
) -> None:
    bundle = (
        packed_bundle(kind, tiny_models, sentences, tmp_path_factory)
        if kind in tiny_models
        else pack_task_bundle(task_model(kind), sentences, tmp_path_factory)
    )
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    port = free_port()
    command = [*SERVER_MODULE, str(bundle), "--port", str(port), "--threads", "1", *SMALL_LIMITS]
    options = []
    if api_key is not None:
        # The same routes as "embed" behind a key: random requests through every operation show the key
        # changes no answer's shape; the boundary cases of the coverage phase were run by "embed".
        command += ["--api-key", api_key]
        options = ["--header", f"Authorization: Bearer {api_key}", "--phases", "fuzzing"]
    with running_server(command, port) as server:
        fuzz = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"),
                f"{server.url}/openapi.json",
                *("--max-examples", str(MAX_EXAMPLES), "--seed", "1"),
                *options,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    summary = fuzz.stdout[fuzz.stdout.find("SUMMARY") :]
    assert fuzz.returncode == 0, fuzz.stdout[-6000:] + fuzz.stderr[-2000:]
    assert f"Tested: {OPERATIONS[kind]}" in summary, summary
