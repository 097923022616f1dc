"""Abuse test of `langtrim serve`: the requests that once stalled it, end to end against a real server.

Each case runs against a fresh server process (`python -m langtrim.runtime.server BUNDLE`) on a free
127.0.0.1 port; every request loop is bounded in count and time.

* **integers**: one POST /embed of `{"inputs": [0, 0, ...]}` with 16,000 integers (a 32 KB body), while a
  second client asks GET /health every 50 ms: the refusal's status and time, and the slowest /health.
* **stalled uploads**: 64 connections send headers and 5 bytes of body, then stall; meanwhile 200 valid
  POST /embed one after the other: their statuses, then how long the stalled ones waited for their 408.
* **trickled headers**: 64 connections send a header line now and then, never the end of the headers:
  how long until the server closes them, and whether valid requests are served meanwhile.
* **soak**: `--soak` requests (default 10,000) from `--concurrency` (32) clients, `--bad-share` (10%) of
  them bad (malformed JSON, wrong types, too many texts, a text or body over its limit), each expecting its
  own 4xx (`server_load.run_soak`); errors (any other status, no answer) and the server's RSS growth from
  the second fifth of the run to its last fifth.

    python benchmarks/server_abuse.py --bundle /tmp/en-fr-de.bundle --threads 1

Writes benchmarks/results/server_abuse.json and .md. The clients share the machine with the server.
"""

import argparse
import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_load  # noqa: E402

from langtrim.packager.bench.results import machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TIMEOUTS = {"header": 5, "body": 5}  # seconds, passed to the server, so the stalled cases end soon


def start(bundle: Path, threads: int | None) -> tuple[subprocess.Popen[bytes], int]:
    port = server_load.free_port()
    command = [sys.executable, "-m", "langtrim.runtime.server", str(bundle), "--port", str(port)]
    command += ["--log-level", "warning", "--header-timeout-seconds", str(TIMEOUTS["header"])]
    command += ["--body-timeout-seconds", str(TIMEOUTS["body"])]
    command += ["--threads", str(threads)] if threads else []
    process = subprocess.Popen(command)
    server_load.wait_ready("127.0.0.1", port, process)
    return process, port


def post(port: int, body: bytes, path: str = "/embed") -> tuple[int, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    connection.request("POST", path, body, server_load.JSON_HEADERS)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, time.perf_counter() - started


def integers(port: int) -> dict[str, object]:
    health_seconds: list[float] = []
    done = threading.Event()

    def poll_health() -> None:
        while not done.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            started = time.perf_counter()
            connection.request("GET", "/health")
            connection.getresponse().read()
            connection.close()
            health_seconds.append(time.perf_counter() - started)
            time.sleep(0.05)

    poller = threading.Thread(target=poll_health)
    poller.start()
    body = json.dumps({"inputs": [0] * 16_000}, separators=(",", ":")).encode()
    status, seconds = post(port, body)
    time.sleep(0.2)
    done.set()
    poller.join()
    return {
        "body_bytes": len(body),
        "status": status,
        "refused_in_s": round(seconds, 4),
        "health_max_s": round(max(health_seconds), 4),
        "health_checks": len(health_seconds),
    }


def _open(port: int, first_bytes: bytes) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    connection.sendall(first_bytes)
    return connection


def _answer(connection: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := connection.recv(4096):
            received += chunk
            if received.endswith(b"}"):
                break
    except OSError:
        pass
    return received


def stalled_uploads(port: int, sentences: list[str]) -> dict[str, object]:
    head = (
        b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    stalled = [_open(port, head + b'{"inp') for _ in range(64)]
    started = time.monotonic()
    statuses: dict[int, int] = {}
    for sentence in sentences[:200]:
        status, _ = post(port, json.dumps({"inputs": sentence}).encode())
        statuses[status] = statuses.get(status, 0) + 1
    answers = [_answer(connection) for connection in stalled]
    waited = time.monotonic() - started
    for connection in stalled:
        connection.close()
    return {
        "stalled_connections": len(stalled),
        "valid_statuses": statuses,
        "stalled_answered_408": sum(answer.startswith(b"HTTP/1.1 408") for answer in answers),
        "stalled_done_after_s": round(waited, 2),
        "body_timeout_s": TIMEOUTS["body"],
    }


def trickled_headers(port: int, sentences: list[str]) -> dict[str, object]:
    trickling = [_open(port, b"POST /embed HTTP/1.1\r\nHost: x\r\n") for _ in range(64)]
    started = time.monotonic()
    statuses: dict[int, int] = {}
    for sentence in sentences[:50]:
        for connection in trickling:
            with contextlib.suppress(OSError):  # closed by the server already
                connection.sendall(b"X-Slow: 1\r\n")
        status, _ = post(port, json.dumps({"inputs": sentence}).encode())
        statuses[status] = statuses.get(status, 0) + 1
    closed = sum(_answer(connection) == b"" for connection in trickling)
    waited = time.monotonic() - started
    for connection in trickling:
        connection.close()
    return {
        "trickling_connections": len(trickling),
        "valid_statuses": statuses,
        "closed_by_server": closed,
        "all_closed_after_s": round(waited, 2),
        "header_timeout_s": TIMEOUTS["header"],
    }


def soak(port: int, pid: int, sentences: list[str], count: int, concurrency: int, bad_share: float) -> dict:
    result = server_load.run_soak("127.0.0.1", port, sentences, count, concurrency, bad_share, pid=pid)
    fifth = len(result.rss_mb) // 5
    after_warm = max(mb for _, mb in result.rss_mb[fifth : 2 * fifth]) if fifth else None
    late = max(mb for _, mb in result.rss_mb[-fifth:]) if fifth else None
    five_xx = sum(n for counts in result.statuses.values() for status, n in counts.items() if status >= 500)
    return {
        "requests": count,
        "concurrency": concurrency,
        "bad_share": bad_share,
        "statuses": {kind: dict(counts) for kind, counts in result.statuses.items()},
        "errors": len(result.errors),
        "first_errors": result.errors[:5],
        "5xx": five_xx,
        "rss_after_warmup_mb": after_warm,
        "rss_end_mb": late,
        "rss_growth_percent": None if not after_warm else round(100 * (late - after_warm) / after_warm, 2),
        "wall_s": round(result.wall_seconds, 1),
    }


def markdown(result: dict) -> str:
    integer, stall, trickle, run = result["integers"], result["stalled"], result["trickled"], result["soak"]
    return "\n".join(
        [
            f"# Server abuse test ({result['machine']['cpu']}, {result['machine']['usable_cores']} cores, "
            f"flags {' '.join(result['machine']['cpu_flags'])})",
            "",
            f"`{result['command']}`",
            "",
            "| case | figure |",
            "|---|---|",
            f"| 16,000 integers ({integer['body_bytes']:,} B body) | {integer['status']} in "
            f"{integer['refused_in_s']} s; slowest of {integer['health_checks']} /health meanwhile "
            f"{integer['health_max_s']} s |",
            f"| {stall['stalled_connections']} stalled uploads | valid requests: {stall['valid_statuses']}; "
            f"{stall['stalled_answered_408']} stalled answered 408 after {stall['stalled_done_after_s']} s "
            f"(body timeout {stall['body_timeout_s']} s) |",
            f"| {trickle['trickling_connections']} trickled headers | valid requests: {trickle['valid_statuses']}; "
            f"{trickle['closed_by_server']} closed by the server after {trickle['all_closed_after_s']} s "
            f"(header timeout {trickle['header_timeout_s']} s) |",
            f"| soak: {run['requests']:,} requests, {run['concurrency']} clients, {run['bad_share']:.0%} bad | "
            f"{run['errors']} errors, {run['5xx']} 5xx; RSS {run['rss_after_warmup_mb']:.1f} -> {run['rss_end_mb']:.1f} MB "
            f"({run['rss_growth_percent']}%) in {run['wall_s']} s |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--soak", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--bad-share", type=float, default=0.10)
    parser.add_argument("--out", type=Path, default=RESULTS / "server_abuse.json")
    args = parser.parse_args()
    sentences = server_load.tatoeba_sentences()
    result: dict = {
        "command": " ".join(["python", "benchmarks/server_abuse.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    for case, run in [
        ("integers", lambda port, pid: integers(port)),
        ("stalled", lambda port, pid: stalled_uploads(port, sentences)),
        ("trickled", lambda port, pid: trickled_headers(port, sentences)),
        ("soak", lambda port, pid: soak(port, pid, sentences, args.soak, args.concurrency, args.bad_share)),
    ]:
        process, port = start(args.bundle, args.threads)
        try:
            result[case] = run(port, process.pid)
        finally:
            server_load.stop_server(process)
        print(case, json.dumps(result[case]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
