"""Load and fault test of `langtrim serve`: latency, throughput, errors and memory under concurrent clients.

Two measurements, each on a fresh server process (`python -m langtrim.runtime.server BUNDLE`) on a free
127.0.0.1 port, or on a running server given `--url` (and `--pid` for its memory):

* **soak** (`--soak N`): N requests from `--concurrency` client threads, each with its own keep-alive
  connection, in a fixed pseudo-random order: POST /embed of 1-4 real Tatoeba sentences (en/fr/de), POST
  /v1/embeddings, and a share (`--bad-share`) of bad requests, each of which must get its own status:
  malformed JSON (400), wrong types (422), too many texts (422), a text over the character limit (400 on
  the OpenAI route, OpenAI's status for an invalid request), a body over the size limit (413). The
  limits are read from the server's GET /info. A request that gets any other status, or no response, is
  an error. The server's RSS is sampled every `--rss-every` requests.
* **compare** (`--compare`): POST /embed of one sentence at 1, 4 and 16 concurrent clients, with request
  batching on and off (two server processes), `--repeats` times: median p50 (min-max), p95, requests/s.

    python benchmarks/server_load.py --bundle /tmp/en-fr-de.bundle --threads 2 --soak 5000 --compare
    python benchmarks/server_load.py --url http://127.0.0.1:8080 --pid 1234 --soak 2000

Writes JSON to benchmarks/results/server_load.json, a Markdown table (.md) and plots (.png). The client
threads share the machine with the server: on a 2-core machine they take CPU from it. `run_soak` is also
the engine of tests/test_server_load.py.
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
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LANGUAGES = ("en", "fr", "de")
CONCURRENCY = (1, 4, 16)
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Planned:
    """One request of a load run and the only status code that counts as handled."""

    kind: str  # "embed", "openai", or the fault: "malformed JSON", "wrong type", ...
    path: str
    body: bytes
    expected: int


@dataclass
class LoadResult:
    concurrency: int
    wall_seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)  # kind -> seconds, in completion order
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # kind -> status -> count
    errors: list[str] = field(default_factory=list)  # unexpected statuses and transport failures
    rss_mb: list[tuple[int, float]] = field(default_factory=list)  # (requests done, server RSS)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(
            e.startswith("transport") for e in self.errors
        )

    def ok_latencies(self) -> list[float]:
        return [s for kind in ("embed", "openai") for s in self.latencies.get(kind, [])]

    def summary(self) -> dict[str, object]:
        ok = sorted(self.ok_latencies())
        bad = sorted(s for kind, v in self.latencies.items() if kind not in ("embed", "openai") for s in v)
        return {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "valid_requests": len(ok),
            "bad_requests": len(bad),
            "errors": len(self.errors),
            "error_examples": self.errors[:5],
            "p50_ms": _ms(percentile(ok, 50)),
            "p95_ms": _ms(percentile(ok, 95)),
            "bad_p50_ms": _ms(percentile(bad, 50)),
            "throughput_rps": round(self.requests / self.wall_seconds, 1) if self.wall_seconds else None,
            "statuses": {kind: dict(sorted(c.items())) for kind, c in sorted(self.statuses.items())},
            "rss_mb": [(n, round(mb, 1)) for n, mb in self.rss_mb],
            **rss_growth(self.rss_mb),
        }


def percentile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank percentile of sorted values (None if empty)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def rss_growth(samples: list[tuple[int, float]]) -> dict[str, float | None]:
    """RSS after the first fifth of the run (allocators and arenas warmed) and at the end, and the growth.

    Growth is measured from the maximum over the run's second fifth to the maximum over its last fifth, so
    one transient peak does not count, but memory that keeps growing does.
    """
    if len(samples) < 5:
        return {"rss_start_mb": None, "rss_end_mb": None, "rss_growth_mb": None}
    fifth = len(samples) // 5
    early = max(mb for _, mb in samples[fifth : 2 * fifth])
    late = max(mb for _, mb in samples[-fifth:])
    return {
        "rss_start_mb": round(early, 1),
        "rss_end_mb": round(late, 1),
        "rss_growth_mb": round(late - early, 1),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 2)


def read_limits(host: str, port: int) -> dict[str, int]:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.request("GET", "/info")
    limits: dict[str, int] = json.loads(connection.getresponse().read())["langtrim"]["limits"]
    connection.close()
    return limits


def plan_requests(
    sentences: list[str], count: int, bad_share: float, limits: dict[str, int]
) -> list[Planned]:
    """`count` requests in a fixed pseudo-random order; a `bad_share` of them are faults, in turn."""
    rng = random.Random(0)
    faults = [
        Planned("malformed JSON", "/embed", b'{"inputs": ["unterminated', 400),
        Planned("wrong type", "/embed", json.dumps({"inputs": [1, 2], "normalize": "yes"}).encode(), 422),
        Planned(
            "too many texts",
            "/embed",
            json.dumps({"inputs": ["a"] * (limits["max_texts"] + 1)}).encode(),
            422,
        ),
        Planned(
            "text too long",
            "/v1/embeddings",
            json.dumps({"input": "a" * (limits["max_text_chars"] + 1)}).encode(),
            400,
        ),
        Planned("body too large", "/embed", b'{"inputs": "' + b"a" * limits["max_body_bytes"] + b'"}', 413),
    ]
    planned = []
    for i in range(count):
        if rng.random() < bad_share:
            planned.append(faults[i % len(faults)])
        elif rng.random() < 0.8:
            texts = rng.sample(sentences, rng.randint(1, 4))
            planned.append(Planned("embed", "/embed", json.dumps({"inputs": texts}).encode(), 200))
        else:
            body = json.dumps({"input": rng.choice(sentences), "model": "load"}).encode()
            planned.append(Planned("openai", "/v1/embeddings", body, 200))
    return planned


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kilobytes / 1024


def run_load(
    host: str,
    port: int,
    planned: list[Planned],
    concurrency: int,
    pid: int | None = None,
    rss_every: int = 250,
) -> LoadResult:
    """Send every planned request once from `concurrency` threads; a thread reconnects after a failure."""
    result = LoadResult(concurrency)
    lock = threading.Lock()
    next_index = iter(range(len(planned)))
    done = 0

    def client() -> None:
        nonlocal done
        connection = http.client.HTTPConnection(host, port, timeout=120)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            request = planned[index]
            start = time.perf_counter()
            try:
                connection.request("POST", request.path, request.body, JSON_HEADERS)
                response = connection.getresponse()
                response.read()
                status: int | str = response.status
            except (OSError, http.client.HTTPException) as error:
                status = f"transport: {type(error).__name__}: {error}"
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=120)
            elapsed = time.perf_counter() - start
            with lock:
                done += 1
                if isinstance(status, int):
                    result.latencies.setdefault(request.kind, []).append(elapsed)
                    counts = result.statuses.setdefault(request.kind, {})
                    counts[status] = counts.get(status, 0) + 1
                    if status != request.expected:
                        result.errors.append(f"{request.kind}: {status}, expected {request.expected}")
                else:
                    result.errors.append(f"{status} ({request.kind})")
                if pid is not None and done % rss_every == 0:
                    result.rss_mb.append((done, rss_mb(pid)))
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_seconds = time.perf_counter() - start
    return result


def run_soak(
    host: str,
    port: int,
    sentences: list[str],
    count: int,
    concurrency: int,
    bad_share: float,
    pid: int | None = None,
    rss_every: int = 250,
) -> LoadResult:
    """A warm-up of 100 valid requests, then the mixed run of `count` requests."""
    limits = read_limits(host, port)
    run_load(host, port, plan_requests(sentences, 100, 0.0, limits), concurrency)
    if pid is not None:
        rss_every = max(1, min(rss_every, count // 10))
    return run_load(
        host, port, plan_requests(sentences, count, bad_share, limits), concurrency, pid, rss_every
    )


def compare(
    host: str, port: int, sentences: list[str], count: int, repeats: int
) -> dict[str, dict[str, float | None]]:
    """Single-sentence /embed at each concurrency level: median over `repeats` runs."""
    bodies = [Planned("embed", "/embed", json.dumps({"inputs": s}).encode(), 200) for s in sentences[:count]]
    run_load(host, port, bodies[:32], 4)  # warm-up: connections, allocator, onnxruntime's arenas
    levels = {}
    for concurrency in CONCURRENCY:
        runs = [run_load(host, port, bodies, concurrency) for _ in range(repeats)]
        p50s = [percentile(sorted(r.ok_latencies()), 50) or 0.0 for r in runs]
        levels[str(concurrency)] = {
            "p50_ms": _ms(statistics.median(p50s)),
            "p50_ms_min": _ms(min(p50s)),
            "p50_ms_max": _ms(max(p50s)),
            "p95_ms": _ms(statistics.median(percentile(sorted(r.ok_latencies()), 95) or 0.0 for r in runs)),
            "throughput_rps": round(
                statistics.median(len(r.ok_latencies()) / r.wall_seconds for r in runs), 1
            ),
            "errors": sum(len(r.errors) for r in runs),
        }
    return levels


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            connection = http.client.HTTPConnection(host, port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server on {host}:{port} not ready after {timeout} s")


def start_server(bundle: Path, threads: int | None, batching: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "langtrim.runtime.server", str(bundle), "--port", str(port)]
    command += ["--log-level", "warning"] + (["--threads", str(threads)] if threads else [])
    command += [] if batching else ["--no-batching"]
    process = subprocess.Popen(command)
    try:
        wait_ready("127.0.0.1", port, process)
    except BaseException:
        process.kill()
        raise
    return process, port


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def tatoeba_sentences() -> list[str]:
    from langtrim.packager.shipped_text import shipped_sentences

    sentences = [s for language in LANGUAGES for s in (shipped_sentences(language) or [])]
    random.Random(0).shuffle(sentences)
    return sentences


def markdown(result: dict[str, object]) -> str:
    lines = []
    soak = result.get("soak")
    if isinstance(soak, dict):
        lines += [
            "| requests | clients | valid / bad | errors | p50 ms | p95 ms | bad p50 ms | requests/s | RSS MB after 1/5 -> end |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {soak['requests']} | {soak['concurrency']} | {soak['valid_requests']} / {soak['bad_requests']} "
            f"| {soak['errors']} | {soak['p50_ms']} | {soak['p95_ms']} | {soak['bad_p50_ms']} "
            f"| {soak['throughput_rps']} | {soak['rss_start_mb']} -> {soak['rss_end_mb']} |",
            "",
        ]
    comparison = result.get("compare")
    if isinstance(comparison, dict):
        lines += [
            "| server | clients | p50 ms (min-max) | p95 ms | requests/s | errors |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, levels in comparison.items():
            for concurrency, level in levels.items():
                lines.append(
                    f"| {name} | {concurrency} | {level['p50_ms']} ({level['p50_ms_min']}-{level['p50_ms_max']}) "
                    f"| {level['p95_ms']} | {level['throughput_rps']} | {level['errors']} |"
                )
        lines.append("")
    machine = result.get("machine", {})
    load = machine.get("load_average_1min_before_after") if isinstance(machine, dict) else None
    return "\n".join(lines) + f"\n`{result['command']}` (1-minute load average before/after: {load})\n"


def plot(result: dict[str, object], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are a convenience; the JSON and the table hold the figures
        return
    panels = [key for key in ("soak", "compare") if isinstance(result.get(key), dict)]
    if not panels:
        return
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for axis, key in zip(axes[0], panels, strict=True):
        if key == "soak":
            samples = result["soak"]["rss_mb"]  # type: ignore[index]
            axis.plot([n for n, _ in samples], [mb for _, mb in samples], marker=".")
            axis.set(xlabel="requests done", ylabel="server RSS (MB)", title="memory over the soak run")
        else:
            for name, levels in result["compare"].items():  # type: ignore[attr-defined]
                axis.plot(
                    [int(c) for c in levels],
                    [v["throughput_rps"] for v in levels.values()],
                    marker="o",
                    label=name,
                )
            axis.set(xlabel="concurrent clients", ylabel="requests/s", title="single-sentence /embed")
            axis.legend()
    figure.tight_layout()
    figure.savefig(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--bundle", type=Path, help="start servers on this bundle")
    target.add_argument("--url", help="measure this running server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, to sample its RSS")
    parser.add_argument("--threads", type=int, default=None, help="the started servers' onnxruntime threads")
    parser.add_argument(
        "--soak", type=int, default=0, metavar="N", help="mixed requests in the soak run (0: none)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="client threads of the soak run")
    parser.add_argument("--bad-share", type=float, default=0.1, help="share of bad requests in the soak run")
    parser.add_argument("--compare", action="store_true", help="batching on/off at 1, 4, 16 clients")
    parser.add_argument("--requests", type=int, default=400, help="requests per level and run of --compare")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/server_load.json"))
    args = parser.parse_args()
    if not args.soak and not args.compare:
        parser.error("give --soak N, --compare, or both")

    from importlib.metadata import version

    sentences = tatoeba_sentences()
    load_before = os.getloadavg()[0]  # other work on the machine takes CPU from the server and clients
    result: dict[str, object] = {"command": " ".join(["python", *sys.argv])}
    if args.soak:
        if args.url:
            parts = urlsplit(args.url)
            host, port, pid = parts.hostname or "127.0.0.1", parts.port or 80, args.pid
            soak = run_soak(host, port, sentences, args.soak, args.concurrency, args.bad_share, pid)
        else:
            process, port = start_server(args.bundle, args.threads, batching=True)
            try:
                soak = run_soak(
                    "127.0.0.1", port, sentences, args.soak, args.concurrency, args.bad_share, process.pid
                )
            finally:
                stop_server(process)
        result["soak"] = soak.summary()
    if args.compare:
        comparison = {}
        if args.url:
            parts = urlsplit(args.url)
            comparison["running server"] = compare(
                parts.hostname or "127.0.0.1", parts.port or 80, sentences, args.requests, args.repeats
            )
        else:
            for name, batching in (("batching", True), ("no batching", False)):
                process, port = start_server(args.bundle, args.threads, batching)
                try:
                    comparison[name] = compare("127.0.0.1", port, sentences, args.requests, args.repeats)
                finally:
                    stop_server(process)
        result["compare"] = comparison
    result.update(
        bundle=str(args.bundle or args.url),
        server_threads=args.threads,
        machine={
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        versions={"langtrim": version("langtrim"), "onnxruntime": version("onnxruntime")},
    )
    table = markdown(result)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table)
    plot(result, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
