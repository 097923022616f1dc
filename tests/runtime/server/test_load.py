"""A short load and fault run against a real server process on loopback (CI runs it; ~1 min).

The engine is benchmarks/server_load.py's `run_soak`: concurrent keep-alive clients send a fixed number of
requests, valid ones and faults mixed (malformed JSON, wrong types, too many texts, a text too long, a body
too large), and every request must get exactly its own status code. The server is the tiny fp32 bundle of
tests/support/server.py with small limits, so the faults are cheap and the run is bounded in time.
"""

import httpx
import pytest

from benchmarks.server_load import run_soak
from tests.support.server import SERVER_MODULE, free_port, packed_bundle, running_server

REQUESTS = 3000
CLIENTS = 8
SMALL_LIMITS = ["--max-texts", "16", "--max-text-chars", "2000", "--max-body-bytes", "65536"]
# The RSS the server may gain from the run's second fifth to its last fifth. Measured on this bundle over
# 3000 requests: clean runs grew 0.1-0.9 MB; with a leak injected into every request, 1 KB a request grew
# 2.7 MB and 4 KB a request 7.9 MB. Over 15000 requests a clean run grew 0.7 MB, flattening.
MAX_RSS_GROWTH_MB = 2.5


@pytest.fixture(scope="module")
def bundle(tiny_models, sentences, tmp_path_factory):
    return packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)


def test_concurrent_clients_get_every_answer_right_and_memory_stays_flat(bundle, sentences) -> None:
    port = free_port()
    command = [*SERVER_MODULE, str(bundle), "--port", str(port), "--threads", "1", *SMALL_LIMITS]
    with running_server(command, port) as server:
        result = run_soak(
            "127.0.0.1",
            port,
            sentences("fr"),
            REQUESTS,
            CLIENTS,
            bad_share=0.15,
            pid=server.pid,
            rss_every=100,
        )
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    summary = result.summary()
    print(
        f"\n{summary['requests']} requests, {CLIENTS} clients: {summary['valid_requests']} valid, "
        f"{summary['bad_requests']} bad, {summary['errors']} errors; p50 {summary['p50_ms']} ms, "
        f"p95 {summary['p95_ms']} ms; RSS {summary['rss_start_mb']} -> {summary['rss_end_mb']} MB"
    )
    assert result.errors == []
    assert summary["requests"] == REQUESTS
    assert set(summary["statuses"]) == {  # type: ignore[arg-type]
        "embed",
        "openai",
        "malformed JSON",
        "wrong type",
        "too many texts",
        "text too long",
        "body too large",
    }
    assert summary["rss_growth_mb"] is not None
    assert summary["rss_growth_mb"] <= MAX_RSS_GROWTH_MB, summary["rss_mb"]


def test_overload_is_429_and_the_server_recovers(bundle, sentences) -> None:
    """More clients than in-flight places: some requests get 429, none fails otherwise, the server lives."""
    port = free_port()
    command = [*SERVER_MODULE, str(bundle), "--port", str(port), "--threads", "1", "--max-inflight", "2"]
    with running_server(command, port) as server:
        result = run_soak("127.0.0.1", port, sentences("fr"), 600, 16, bad_share=0.0)
        after = httpx.post(f"{server.url}/embed", json={"inputs": "Bonjour"}, timeout=10)
    statuses = {status for counts in result.statuses.values() for status in counts}
    assert statuses == {200, 429}, result.statuses
    assert all(error.endswith(": 429, expected 200") for error in result.errors), result.errors[:5]
    assert after.status_code == 200
