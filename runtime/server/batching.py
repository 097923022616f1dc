"""Run the server's inference off the event loop, several waiting requests in one onnxruntime call.

Requests are admitted up to `ServerLimits.max_inflight` (then 429 with Retry-After) and queue as jobs; one
inference thread runs them, so the event loop never blocks and onnxruntime's intra-op threads have the
cores to themselves. While it works, new jobs wait; the next round takes every waiting job that asks for
the same output and runs their texts together (each job's texts tokenized with its own prompt and
truncation). That pays because one onnxruntime call has a fixed cost, which a
round shares among its requests; the Encoder sorts the round's texts by length into runs that pad little
(`encoder.length_runs`). benchmarks/server_load.py measures the effect against `--no-batching`.

Each text is tokenized once, by the Encoder (`Encoder.tokenize`): the round refuses over-long texts and
counts tokens from that, then runs the same ids (`Encoder.outputs`).

No web framework here: only asyncio, numpy and the runtime's `Encoder`.
"""

import asyncio
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from langtrim.runtime.bundle import FEATURE_EXTRACTION, TEXT_CLASSIFICATION, TOKEN_CLASSIFICATION
from langtrim.runtime.encoder import Encoder, TruncationSide
from langtrim.runtime.errors import InputError
from langtrim.runtime.pairs import TextPair
from langtrim.runtime.server.limits import ApiError, ServerLimits, unavailable

logger = logging.getLogger(__name__)

_WARM_UP_TEXT = "warm-up"


@dataclass(frozen=True)
class Loaded:
    """A bundle ready to serve: its encoder, warmed up."""

    encoder: Encoder


# What a job asks of the model: its main output (pooled embeddings, or class probabilities), the
# classifier's logits, or every token's hidden state (/embed_all; a token classifier's: its logits).
Output = Literal["main", "logits", "hidden"]


@dataclass(frozen=True)
class Request:
    """What one HTTP request asks the batcher to run."""

    texts: list[str | TextPair]  # (first, second) pairs for a bundle that takes pairs
    prompt: str | None = None
    truncate: bool = False  # cut texts over max_length (else refuse them)
    truncation: TruncationSide = "right"
    output: Output = "main"


@dataclass(frozen=True)
class Result:
    # "main": [texts, dim] pooled embeddings, not normalised, or [texts, labels] probabilities;
    # "logits": [texts, labels]; "hidden": one [tokens, hidden] array per text
    outputs: np.ndarray | list[np.ndarray]
    tokens: int  # tokens the model saw (prompt and special tokens included, after truncation)


@dataclass
class _Job:
    request: Request
    future: "asyncio.Future[Result]"


def load(bundle_dir: Path, threads: int | None, expected_digest: str | None = None) -> Loaded:
    """Load and verify the bundle, then run one inference so the first request does not pay for warm-up."""
    encoder = Encoder(bundle_dir, threads=threads, expected_digest=expected_digest)
    encoder.coverage([_WARM_UP_TEXT])  # loads the coverage check every request runs (`uncovered`)
    if encoder.manifest.task == TEXT_CLASSIFICATION:
        encoder.probabilities([_WARM_UP_TEXT])
    elif encoder.manifest.task == TOKEN_CLASSIFICATION:
        encoder.entities([_WARM_UP_TEXT])
    else:
        encoder.embed([_WARM_UP_TEXT])
    return Loaded(encoder)


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
        """Hold one in-flight place from after the body is read until the answer; 503 if none is free.

        Admission comes after the body (read within `body_timeout_seconds`), so uploads that stall hold a
        connection for that long at most and never an in-flight place.
        """
        if self.loaded is None:
            raise unavailable("not ready", "the bundle is still loading: retry after a moment", self.limits)
        if self.inflight >= self.limits.max_inflight:
            raise unavailable(
                "overloaded",
                f"Model is overloaded: {self.inflight} requests are already waiting or running (the limit "
                f"is {self.limits.max_inflight}): retry later or add replicas",
                self.limits,
                status=429,
            )
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1

    async def run(self, request: Request) -> Result:
        """The outputs of the request's texts, from the inference thread; call inside `admit`."""
        job = _Job(request, asyncio.get_running_loop().create_future())
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
        """The oldest live job, and when batching the later ones that ask for the same output, up to
        max_batch_texts texts.

        Jobs whose request was cancelled are dropped here rather than run.
        """
        live = [job for job in self._waiting if not job.future.done()]
        self._waiting.clear()
        if not live:
            return []
        first = live[0]
        jobs, texts, kept = [first], len(first.request.texts), deque[_Job]()
        for job in live[1:]:
            fits = texts + len(job.request.texts) <= self.limits.max_batch_texts
            if self.batching and job.request.output == first.request.output and fits:
                jobs.append(job)
                texts += len(job.request.texts)
            else:
                kept.append(job)
        self._waiting.extendleft(reversed(kept))
        return jobs

    def _run_round(self, jobs: list[_Job]) -> list[Result | Exception]:
        """On the inference thread: tokenize, refuse over-long texts, run the rest together, split the results.

        The jobs of a round ask for the same output (`_take_round`).
        """
        assert self.loaded is not None
        encoder, max_length = self.loaded.encoder, self.loaded.encoder.manifest.max_length
        refused: dict[int, Exception] = {}
        tokens: dict[int, int] = {}
        ids: list[np.ndarray] = []
        types: list[np.ndarray] = []  # token types: a pair's segments, zeros for a single text
        pairs = False  # whether any job has pairs (else the model's token types stay all 0, as before)
        starts: dict[int, int] = {}  # job -> where its texts start in `ids`
        for j, job in enumerate(jobs):
            request = job.request
            try:
                tokenized = encoder.tokenize(
                    request.texts, prompt=request.prompt, truncation=request.truncation
                )
            except InputError as error:  # a pair whose first text leaves its second no room
                refused[j] = ApiError(422, "text too long", str(error))
                continue
            too_long = [i for i, n in enumerate(tokenized.lengths) if n > max_length]
            if too_long and not request.truncate:
                i = too_long[0]
                refused[j] = ApiError(
                    422,
                    "text too long",
                    f"`inputs` must have less than {max_length} tokens. Given: {tokenized.lengths[i]} "
                    f'(text {i}): shorten it, or send "truncate": true to cut it to max_length',
                )
                continue
            tokens[j] = sum(len(text_ids) for text_ids in tokenized.ids)
            if tokens[j] > self.limits.max_batch_tokens:
                refused[j] = ApiError(
                    422,
                    "too many tokens",
                    f"the request has {tokens[j]} tokens for the model to run; the limit is "
                    f"{self.limits.max_batch_tokens} per request: send fewer or shorter texts",
                )
                continue
            starts[j] = len(ids)
            ids += tokenized.ids
            types += tokenized.type_ids or [np.zeros_like(text_ids) for text_ids in tokenized.ids]
            pairs = pairs or tokenized.type_ids is not None
        outputs = _outputs(encoder, ids, jobs[0].request.output, types if pairs else None)
        results: list[Result | Exception] = []
        for j in range(len(jobs)):
            if j in refused:
                results.append(refused[j])
            else:
                start = starts[j]
                results.append(Result(outputs[start : start + len(jobs[j].request.texts)], tokens[j]))
        return results


def _outputs(
    encoder: Encoder, ids: list[np.ndarray], output: Output, types: list[np.ndarray] | None
) -> np.ndarray | list[np.ndarray]:
    if not ids:
        return []
    if output == "hidden":
        if encoder.manifest.task == FEATURE_EXTRACTION:
            return encoder.hidden_states(ids)
        return encoder.token_logits(ids)
    return encoder.outputs(ids, logits=output == "logits", type_ids=types)
