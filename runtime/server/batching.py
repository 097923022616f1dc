"""Run the server's inference off the event loop, several waiting requests in one onnxruntime call.

Requests are admitted up to `ServerLimits.max_inflight` (then 503 with Retry-After) and queue as jobs; one
inference thread runs them, so the event loop never blocks and onnxruntime's intra-op threads have the
cores to themselves. While it works, new jobs wait; the next round takes every waiting job with the same
prompt and runs their texts together, sorted by length and cut into chunks that pad little. That pays
because one onnxruntime call has a fixed cost (with multilingual-e5-small int8 on 2 cores, a one-word text
takes ~2 ms and a 13-token sentence ~5.5 ms), while padding short texts to a long one costs more than it
saves. benchmarks/server_load.py measures the effect: +16% requests/s at 16 clients on a busy 2-core machine.

No web framework here: only asyncio, numpy, tokenizers and the runtime's `Encoder`.
"""

import asyncio
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from langtrim.runtime.bundle import TEXT_CLASSIFICATION, TOKENIZER_FILE
from langtrim.runtime.encoder import Encoder
from langtrim.runtime.server.limits import ApiError, ServerLimits, unavailable

logger = logging.getLogger(__name__)

_WARM_UP_TEXT = "warm-up"
_CHUNK_TEXTS = 32  # texts per onnxruntime call
_PADDING_SLACK = 0.25  # a chunk may hold 25% more (padded) tokens than its texts really have

# (tokens, job index, text index) of one text in a round
_Item = tuple[int, int, int]


@dataclass(frozen=True)
class Loaded:
    """A bundle ready to serve: its encoder (warmed up) and a tokenizer to count tokens with."""

    encoder: Encoder
    counter: Tokenizer  # the bundle's tokenizer without truncation or padding


@dataclass(frozen=True)
class Result:
    outputs: np.ndarray  # [texts, dim] pooled embeddings, not normalised; or [texts, labels] probabilities
    tokens: int  # tokens the model saw (prompt and special tokens included, after truncation)


@dataclass
class _Job:
    texts: list[str]
    prompt: str | None
    truncate: bool
    future: "asyncio.Future[Result]"


def load(bundle_dir: Path, threads: int | None) -> Loaded:
    """Load and verify the bundle, then run one inference so the first request does not pay for warm-up."""
    encoder = Encoder(bundle_dir, threads=threads)
    if encoder.manifest.task == TEXT_CLASSIFICATION:
        encoder.probabilities([_WARM_UP_TEXT])
    else:
        encoder.embed([_WARM_UP_TEXT])
    counter = Tokenizer.from_file(str(bundle_dir / TOKENIZER_FILE))
    counter.no_truncation()
    counter.no_padding()
    return Loaded(encoder, counter)


class Batcher:
    """Admits requests, queues their jobs and runs them on one thread, waiting jobs together when `batching`.

    `admit`, `run` and the counters belong to the event loop's thread; only `_run_round` runs on the
    inference thread, and it touches nothing but its jobs' texts and the loaded model.
    """

    def __init__(self, limits: ServerLimits, batching: bool) -> None:
        self.limits, self.batching = limits, batching
        self.loaded: Loaded | None = None
        self.inflight = 0  # requests admitted and not yet answered
        self.batch_sizes: Counter[int] = Counter()  # jobs per round -> rounds
        self._waiting: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None  # made by serve_forever, in the loop it serves

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold one in-flight place from before the body is read until the answer; 503 if none is free.

        Admission comes before reading the body so the limit also bounds the request bodies held in memory
        (max_inflight x max_body_bytes).
        """
        if self.loaded is None:
            raise unavailable("not ready", "the bundle is still loading: retry after a moment", self.limits)
        if self.inflight >= self.limits.max_inflight:
            raise unavailable(
                "overloaded",
                f"{self.inflight} requests are already waiting or running (the limit is "
                f"{self.limits.max_inflight}): retry later or add replicas",
                self.limits,
            )
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1

    async def run(self, texts: list[str], prompt: str | None, truncate: bool) -> Result:
        """The outputs of `texts`, from the inference thread; call inside `admit`."""
        job = _Job(texts, prompt, truncate, asyncio.get_running_loop().create_future())
        self._waiting.append(job)
        if self._wake is not None:
            self._wake.set()
        return await job.future

    async def serve_forever(self) -> None:
        """Take rounds of waiting jobs and run them off the event loop, until cancelled."""
        loop, wake = asyncio.get_running_loop(), asyncio.Event()
        self._wake = wake
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="langtrim-inference") as executor:
            while True:
                await wake.wait()
                wake.clear()
                while self._waiting:
                    jobs = self._take_round()
                    if not jobs:
                        continue
                    self.batch_sizes[len(jobs)] += 1
                    try:
                        results = await loop.run_in_executor(executor, self._run_round, jobs)
                    except Exception as error:  # a bug: answer these jobs with 500, keep serving others
                        logger.exception("inference failed")
                        results = [error] * len(jobs)
                    for job, result in zip(jobs, results, strict=True):
                        if job.future.done():  # cancelled: the client went away
                            continue
                        if isinstance(result, BaseException):
                            job.future.set_exception(result)
                        else:
                            job.future.set_result(result)

    def _take_round(self) -> list[_Job]:
        """The oldest live job, and when batching the later ones with its prompt, up to max_batch_texts texts.

        Jobs whose request was cancelled are dropped here rather than run.
        """
        live = [job for job in self._waiting if not job.future.done()]
        self._waiting.clear()
        if not live:
            return []
        first = live[0]
        jobs, texts, kept = [first], len(first.texts), deque[_Job]()
        for job in live[1:]:
            fits = texts + len(job.texts) <= self.limits.max_batch_texts
            if self.batching and job.prompt == first.prompt and fits:
                jobs.append(job)
                texts += len(job.texts)
            else:
                kept.append(job)
        self._waiting.extendleft(reversed(kept))
        return jobs

    def _run_round(self, jobs: list[_Job]) -> list[Result | Exception]:
        """On the inference thread: count tokens, refuse over-long texts, infer in chunks, split the results."""
        assert self.loaded is not None
        encoder, max_length = self.loaded.encoder, self.loaded.encoder.manifest.max_length
        prefix = encoder.manifest.prompts.get(jobs[0].prompt or "", "")
        refused: dict[int, Exception] = {}
        tokens: dict[int, int] = {}
        items: list[_Item] = []
        for j, job in enumerate(jobs):
            counts = [len(e.ids) for e in self.loaded.counter.encode_batch([prefix + t for t in job.texts])]
            too_long = [i for i, n in enumerate(counts) if n > max_length]
            if too_long and not job.truncate:
                i = too_long[0]
                refused[j] = ApiError(
                    413,
                    "text too long",
                    f"texts[{i}] has {counts[i]} tokens, more than this model's max_length {max_length}: "
                    'shorten it, or send "truncate": true to keep its first tokens',
                )
                continue
            counts = [min(n, max_length) for n in counts]
            tokens[j] = sum(counts)
            items.extend((n, j, i) for i, n in enumerate(counts))
        outputs: dict[int, np.ndarray] = {}
        for chunk in length_chunks(items):
            texts = [jobs[j].texts[i] for _, j, i in chunk]
            if encoder.manifest.task == TEXT_CLASSIFICATION:
                values = encoder.probabilities(texts, batch_size=len(texts), prompt=jobs[0].prompt)
            else:
                values = encoder.embed(texts, batch_size=len(texts), normalize=False, prompt=jobs[0].prompt)
            for (_, j, i), row in zip(chunk, values, strict=True):
                if j not in outputs:
                    outputs[j] = np.empty((len(jobs[j].texts), values.shape[1]), dtype=np.float32)
                outputs[j][i] = row
        return [refused[j] if j in refused else Result(outputs[j], tokens[j]) for j in range(len(jobs))]


def length_chunks(items: list[_Item]) -> list[list[_Item]]:
    """(tokens, ...) items sorted by length and cut where a chunk would pad more than _PADDING_SLACK."""
    chunks: list[list[_Item]] = []
    current: list[_Item] = []
    real = 0
    for item in sorted(items):
        padded = item[0] * (len(current) + 1)  # the new item is the chunk's longest
        if current and (len(current) == _CHUNK_TEXTS or padded > (1 + _PADDING_SLACK) * (real + item[0])):
            chunks.append(current)
            current, real = [], 0
        current.append(item)
        real += item[0]
    if current:
        chunks.append(current)
    return chunks
