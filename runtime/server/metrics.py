"""The server's counters and their Prometheus text form (GET /metrics), and the middleware that times requests.

Written by hand rather than with prometheus_client: a dozen lines of text format do not justify a
dependency in the container. Only the event loop's thread touches the counters, so they need no lock.
"""

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from langtrim.runtime.server.batching import Batcher

logger = logging.getLogger("langtrim.access")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Metrics:
    """Counts by endpoint; `endpoints` are the paths that get their own label, all others share "other"."""

    endpoints: frozenset[str]
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (endpoint, status)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, error)
    texts: Counter[str] = field(default_factory=Counter)
    tokens: Counter[str] = field(default_factory=Counter)
    uncovered: Counter[str] = field(default_factory=Counter)  # texts the bundle does not cover (`uncovered`)
    latency: dict[str, list[float]] = field(default_factory=dict)  # endpoint -> bucket counts, sum, count

    def label(self, path: str) -> str:
        """The endpoint label of a path; unknown paths share one label so scanners cannot grow the metrics."""
        return path if path in self.endpoints else "other"

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[endpoint, status] += 1
        counts = self.latency.setdefault(endpoint, [0.0] * (len(LATENCY_BUCKETS) + 2))
        for b, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                counts[b] += 1
        counts[-2] += seconds
        counts[-1] += 1

    def render(self, batcher: Batcher) -> str:
        """Prometheus text exposition format 0.0.4."""
        lines = [
            *_family("langtrim_requests_total", "counter", "HTTP requests by endpoint and status code."),
            *(
                f'langtrim_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                for (e, s), n in sorted(self.requests.items())
            ),
            *_family(
                "langtrim_request_errors_total", "counter", "Requests answered with an error, by error."
            ),
            *(
                f'langtrim_request_errors_total{{endpoint="{e}",error="{k}"}} {n}'
                for (e, k), n in sorted(self.errors.items())
            ),
            *_family("langtrim_texts_total", "counter", "Texts encoded."),
            *(f'langtrim_texts_total{{endpoint="{e}"}} {n}' for e, n in sorted(self.texts.items())),
            *_family(
                "langtrim_tokens_total",
                "counter",
                "Tokens the model saw (special tokens included, after truncation).",
            ),
            *(f'langtrim_tokens_total{{endpoint="{e}"}} {n}' for e, n in sorted(self.tokens.items())),
            *_family(
                "langtrim_uncovered_texts_total", "counter", "Texts not in a language the bundle covers."
            ),
            *(
                f'langtrim_uncovered_texts_total{{endpoint="{e}"}} {n}'
                for e, n in sorted(self.uncovered.items())
            ),
            *_family("langtrim_request_duration_seconds", "histogram", "Time from request to response."),
        ]
        for endpoint, counts in sorted(self.latency.items()):
            name = f'langtrim_request_duration_seconds_bucket{{endpoint="{endpoint}"'
            lines += [f'{name},le="{b}"}} {int(n)}' for b, n in zip(LATENCY_BUCKETS, counts, strict=False)]
            lines.append(f'{name},le="+Inf"}} {int(counts[-1])}')
            lines.append(f'langtrim_request_duration_seconds_sum{{endpoint="{endpoint}"}} {counts[-2]:.6f}')
            lines.append(
                f'langtrim_request_duration_seconds_count{{endpoint="{endpoint}"}} {int(counts[-1])}'
            )
        lines += [
            *_family("langtrim_inflight_requests", "gauge", "Requests admitted and not yet answered."),
            f"langtrim_inflight_requests {batcher.inflight}",
            *_family(
                "langtrim_inference_rounds_total",
                "counter",
                "Inference rounds, by how many requests each ran together.",
            ),
            *(
                f'langtrim_inference_rounds_total{{requests="{k}"}} {n}'
                for k, n in sorted(batcher.batch_sizes.items())
            ),
            *_family("langtrim_ready", "gauge", "1 once the bundle is loaded and warmed up."),
            f"langtrim_ready {int(batcher.loaded is not None)}",
        ]
        return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


class MetricsMiddleware:
    """Times every HTTP request and counts it by endpoint and status code (500 if no response started)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool = False) -> None:
        self.app, self.metrics, self.access_log = app, metrics, access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe(self.metrics.label(scope["path"]), status, seconds)
            if self.access_log:
                request_id = scope.get("state", {}).get("request_id", "-")
                client = scope.get("client") or ("-", 0)
                logger.info(
                    "%s %s %s %d %.1f ms request_id=%s",
                    client[0],
                    scope["method"],
                    scope["path"],
                    status,
                    seconds * 1000,
                    request_id,
                )
