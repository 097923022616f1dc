"""Latency and throughput of `langtrim serve` at 1, 4 and 16 concurrent clients, with and without batching.

For each server setting (request batching on, off) the script starts a fresh server process on a free
127.0.0.1 port (`python -m langtrim.runtime.server BUNDLE --threads N`), waits for /health, warms up, then
for each concurrency sends a fixed number of POST /embed requests of one real Tatoeba sentence each
(en/fr/de, in a fixed shuffled order) from that many client threads, each with its own keep-alive
connection. It reports p50/p95 latency (ms, over all requests) and throughput (requests/s), repeated
`--repeats` times in the same server (median, with min-max of the p50s), and the server's RSS at the end.
Given `--url`, it measures that running server instead (one setting, labelled "running server").

    python benchmarks/server_load.py --bundle /tmp/srv-bundle --threads 2
    python benchmarks/server_load.py --url http://127.0.0.1:8080

Writes JSON to benchmarks/results/server_load.json and prints a Markdown table (also written as .md).
The client threads share the machine with the server: on a 2-core machine they take CPU from it.
"""

import argparse
import http.client
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import onnxruntime

from langtrim.packager.coverage import shipped_sentences
from langtrim.runtime import __version__

CONCURRENCY = (1, 4, 16)
LANGUAGES = ("en", "fr", "de")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(host: str, port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection(host, port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server on {host}:{port} not ready after {timeout} s")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kilobytes / 1024


def run_level(host: str, port: int, bodies: list[bytes], concurrency: int) -> dict[str, float]:
    """Send every body once from `concurrency` threads; latencies of all, throughput, failures."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    next_index = iter(range(len(bodies)))

    def client() -> None:
        nonlocal failures
        connection = http.client.HTTPConnection(host, port, timeout=60)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            start = time.perf_counter()
            connection.request("POST", "/embed", bodies[index], {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                failures += response.status != 200
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
        "throughput_rps": len(ordered) / wall,
        "failures": failures,
    }


def measure(host: str, port: int, bodies: list[bytes], repeats: int) -> dict[str, dict[str, float]]:
    run_level(host, port, bodies[:32], 4)  # warm-up: connections, allocator, onnxruntime's arenas
    levels = {}
    for concurrency in CONCURRENCY:
        runs = [run_level(host, port, bodies, concurrency) for _ in range(repeats)]
        p50s = [r["p50_ms"] for r in runs]
        levels[str(concurrency)] = {
            "p50_ms": round(statistics.median(p50s), 2),
            "p50_ms_min": round(min(p50s), 2),
            "p50_ms_max": round(max(p50s), 2),
            "p95_ms": round(statistics.median(r["p95_ms"] for r in runs), 2),
            "throughput_rps": round(statistics.median(r["throughput_rps"] for r in runs), 1),
            "failures": sum(int(r["failures"]) for r in runs),
        }
    return levels


def start_server(bundle: Path, threads: int | None, batching: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "langtrim.runtime.server", str(bundle), "--port", str(port)]
    command += ["--log-level", "warning"] + (["--threads", str(threads)] if threads else [])
    command += [] if batching else ["--no-batching"]
    process = subprocess.Popen(command)
    try:
        wait_ready("127.0.0.1", port)
    except BaseException:
        process.kill()
        raise
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--bundle", type=Path, help="start servers on this bundle (batching on and off)")
    target.add_argument("--url", help="measure this running server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--threads", type=int, default=None, help="the servers' onnxruntime threads")
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level and run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/server_load.json"))
    args = parser.parse_args()

    sentences = [s for language in LANGUAGES for s in (shipped_sentences(language) or [])]
    random.Random(0).shuffle(sentences)
    bodies = [json.dumps({"inputs": s}).encode() for s in sentences[: args.requests]]
    settings: dict[str, dict[str, object]] = {}
    if args.url:
        parts = urlsplit(args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        settings["running server"] = {"levels": measure(host, port, bodies, args.repeats)}
    else:
        for name, batching in (("batching", True), ("no batching", False)):
            process, port = start_server(args.bundle, args.threads, batching)
            try:
                levels = measure("127.0.0.1", port, bodies, args.repeats)
                settings[name] = {"levels": levels, "server_rss_mb": round(rss_mb(process.pid), 1)}
            finally:
                process.terminate()
                process.wait(timeout=30)

    result = {
        "command": " ".join(["python", *sys.argv]),
        "requests_per_level": len(bodies),
        "repeats": args.repeats,
        "texts_per_request": 1,
        "server_threads": args.threads,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "versions": {"langtrim": __version__, "onnxruntime": onnxruntime.__version__},
        "settings": settings,
    }
    lines = [
        "| server | clients | p50 ms (min-max) | p95 ms | requests/s | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, setting in settings.items():
        for concurrency, level in setting["levels"].items():  # type: ignore[attr-defined]
            lines.append(
                f"| {name} | {concurrency} | {level['p50_ms']} ({level['p50_ms_min']}-{level['p50_ms_max']}) "
                f"| {level['p95_ms']} | {level['throughput_rps']} | {level['failures']} |"
            )
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(f"{table}\n\n`{result['command']}`\n")


if __name__ == "__main__":
    main()
