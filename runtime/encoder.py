"""Serve a bundle on CPU: tokenize, run the ONNX graph, pool, normalise. No torch: onnxruntime, tokenizers,
sentencepiece and numpy only.

The steps are small functions (`mean_pool`, `cls_pool`, `l2_normalize`, `softmax`) so each can be tested
alone; `Encoder` only wires them to a bundle.
"""

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar, cast

import numpy as np
import onnxruntime
from tokenizers import Encoding, Tokenizer

from langtrim.runtime.bundle import (
    FEATURE_EXTRACTION,
    MODEL_FILE,
    TEXT_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    DigestCheck,
    Manifest,
    PairTruncation,
    Verify,
    read_id_map,
    read_manifest,
)
from langtrim.runtime.coverage import CoverageCheck, TextCoverage, plain_ids
from langtrim.runtime.entities import Entity, cut_encodings, group_simple
from langtrim.runtime.errors import BundleError, InputError
from langtrim.runtime.pairs import TextPair, check_strategy, encode_items, is_pair, sigmoid
from langtrim.runtime.pieces import PIECES_MODEL_FILE, PieceTokenizer
from langtrim.runtime.tokenizing import check_unicode, encode_each, load_tokenizer, special_tokens_added

# The inputs langtrim knows how to fill; a graph that declares any other cannot be served.
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_Item = TypeVar("_Item")
# Which end of a text over max_length is cut: "right" keeps its first tokens (the Hugging Face default),
# "left" its last (text-embeddings-inference's `truncation_direction`).
TruncationSide = Literal["right", "left"]
TRUNCATION_SIDES: tuple[TruncationSide, ...] = ("right", "left")
_INTEGER_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
# Graph rewrites onnxruntime must not apply when it loads a bundle. Its CPU SkipLayerNormalization kernel is
# slower than the Add + LayerNormalization it replaces (benchmarks/runtime_profile.py). Bundles packed now
# write those Adds as Sums, which the fusion does not match, so a default session elsewhere computes what
# the Encoder computes (packager/pack/default_session.py); this keeps bundles packed before that fast and
# their vectors as measured. A bundle packed with --optimize fused has the fused nodes in its file: this
# cannot undo them.
_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]
# Most padded positions (texts x longest) one onnxruntime run takes. Texts are sorted by length and cut into
# runs of similar length, so padding costs almost nothing, and no run is so large that its activations spill
# out of the CPU caches: the cost per position rises past about a thousand positions a run
# (benchmarks/length_runs.py measures runs against one padded batch).
RUN_TOKENS = 1024
# What one more run costs, in padded positions: onnxruntime's fixed cost per call, about as much as a dozen
# positions of e5-small int8. It keeps `length_runs` from cutting a batch into tiny runs.
RUN_OVERHEAD_TOKENS = 16
# Texts tokenized, sorted and run together: enough for sorting to find similar lengths, few enough that a call
# with millions of texts holds one window's ids at a time.
WINDOW_TEXTS = 2048


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of `hidden` [batch, seq, dim] over the positions where `mask` [batch, seq] is 1 -> [batch, dim].

    Padding never counts, which makes a text's vector independent of what it is batched with. A row with
    no position (all-zero mask) gives zeros rather than NaN.
    """
    weights = mask.astype(hidden.dtype)[:, :, None]
    counts = np.maximum(weights.sum(axis=1), 1e-9)
    return np.asarray((hidden * weights).sum(axis=1) / counts, dtype=hidden.dtype)


def cls_pool(hidden: np.ndarray) -> np.ndarray:
    """The first position's hidden state ([CLS] / <s>): [batch, seq, dim] -> [batch, dim]."""
    return hidden[:, 0, :]


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row [n, dim] to unit length, so dot products are cosine similarities; zero rows stay zero.

    The floor 1e-12 on the norm is torch.nn.functional.normalize's, so results match sentence-transformers.
    """
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=vectors.dtype)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis; subtracting the row maximum keeps exp() from overflowing."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True), dtype=logits.dtype)


def class_probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the labels, or the sigmoid of a one-label model's logit (a reranker's relevance; a
    softmax over one label would always be 1), as text-embeddings-inference scores them."""
    return sigmoid(logits) if logits.shape[-1] == 1 else softmax(logits)


@dataclass(frozen=True)
class Tokenized:
    """Texts as the model sees them, tokenized once: what `Encoder.outputs` runs and what a server counts."""

    ids: list[np.ndarray]  # per text: int64 ids, prompt and special tokens included, cut to max_length
    lengths: list[int]  # per text: tokens before the cut; above max_length means the text was truncated
    type_ids: list[np.ndarray] | None = None  # text pairs: per pair, each token's segment (0 first, 1 second)


@dataclass(frozen=True)
class Prediction:
    label: str  # the most probable class
    score: float  # its probability (softmax over the classifier's logits)


class Encoder:
    """A loaded bundle: `embed` texts (feature-extraction bundles) or `classify` them (text-classification).

    Loading validates the manifest (`verify` and a pinned `expected_digest`, see `read_manifest`), creates one
    onnxruntime CPU session and loads the bundle's trimmed tokenizer; texts are cut to the manifest's
    max_length. Texts run sorted by length in runs of at most `batch_size` texts (see `length_runs`). One
    Encoder may serve several threads: onnxruntime sessions and `tokenizers` are thread-safe for inference.
    `threads` is onnxruntime's intra-op thread count (None: one per core).
    """

    def __init__(
        self,
        bundle: str | os.PathLike[str],
        *,
        threads: int | None = None,
        verify: Verify = "full",
        expected_digest: str | None = None,
    ) -> None:
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise InputError(f"threads must be a positive integer or None, got {threads!r}")
        self.directory = Path(bundle)
        self._label = str(bundle)
        # "full": the sizes now, the digests on a thread while the files load (DigestCheck).
        self.manifest: Manifest = read_manifest(
            self.directory, verify="size" if verify == "full" else verify, expected_digest=expected_digest
        )
        digests = DigestCheck(self.directory, self._label, self.manifest) if verify == "full" else None
        if (
            verify == "size"
        ):  # a caller's choice it can change: a warning, not a log line (and no logging import)
            warnings.warn(
                f"bundle {self._label!r} loaded with verify='size': a changed byte in a file of the right size "
                "goes unnoticed",
                stacklevel=2,
            )
        try:
            # The tokenizer first: the memory its loading frees is then reused by the session (a lower peak RSS).
            # A Unigram bundle packed with sentencepiece's copy of its pieces runs on that (langtrim.runtime.
            # pieces: the same ids in a third of the memory); tokenizers then loads only for what needs it.
            self._pieces: PieceTokenizer | None = None
            self._loaded_tokenizer: Tokenizer | None = None
            if PIECES_MODEL_FILE in self.manifest.files:
                self._pieces = PieceTokenizer.load(self.directory, self._label)
                self._pad_id, self._special_per_text = (
                    self._pieces.config.pad_id,
                    self._pieces.special_per_text,
                )
            else:
                self._pad_id = self._load_tokenizer()
                self._special_per_text = special_tokens_added(self._tokenizer)
            self._session = _create_session(self.directory / MODEL_FILE, self._label, threads)
            self._input_types = _check_graph(self._session, self.manifest, self._label)
        finally:
            if digests is not None:
                digests.wait()  # a changed file's error wins over what loading it made of it
        # id_map.json is read on the first embed_ids() call, the only one that needs it: parsing and checking
        # it would cost every load time and memory that grow with the vocabulary.
        self._id_lookup: np.ndarray | None = None
        self._coverage: CoverageCheck | None = None  # loaded on the first coverage() call

    @property
    def _to_new(self) -> np.ndarray:
        """Original id -> new id [original_size] int64, read from id_map.json once (two threads racing
        here both read it; either result is the same)."""
        if self._id_lookup is None:
            self._id_lookup = read_id_map(self.directory, self.manifest)
        return self._id_lookup

    @property
    def _tokenizer(self) -> Tokenizer:
        """The bundle's tokenizers tokenizer: loaded with the Encoder, or on first use when `_pieces` runs the
        texts (offsets, text pairs and decoding need it; two threads racing here both load it, either wins)."""
        if self._loaded_tokenizer is None:
            self._load_tokenizer()
        assert self._loaded_tokenizer is not None
        return self._loaded_tokenizer

    def _load_tokenizer(self) -> int:
        """Load the tokenizer into `_loaded_tokenizer`; its pad id."""
        self._loaded_tokenizer, pad_id = load_tokenizer(
            self.directory, self.manifest.vocab.kept_size, self._label
        )
        return pad_id

    def _plain_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's ids without special tokens, not truncated."""
        if self._pieces is not None:
            return [self._pieces.ids(text) for text in texts]
        return plain_ids(self._tokenizer, texts)

    def _vocab(self) -> Mapping[str, int]:
        """Piece -> id of the model's vocabulary (added tokens that are no pieces left out)."""
        if self._pieces is not None:
            return self._pieces.vocab()
        return self._tokenizer.get_vocab(with_added_tokens=False)

    def __repr__(self) -> str:
        return f"Encoder({self._label!r}, task={self.manifest.task!r}, languages={list(self.manifest.languages)})"

    @property
    def dimension(self) -> int | None:
        """Embedding size (or number of labels), when the graph declares it."""
        size = self._session.get_outputs()[0].shape[-1]
        return size if isinstance(size, int) else None

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        normalize: bool | None = None,
        prompt: str | None = None,
    ) -> np.ndarray:
        """Embeddings [len(texts), dim] float32, in input order.

        `prompt` names one of the manifest's prompts (e.g. "query" for multilingual-e5's "query: "); its
        prefix is put before every text. `normalize` overrides the manifest's L2 normalisation.
        """
        self._require_task(FEATURE_EXTRACTION, "embed")
        normalized = self._normalized(normalize)
        vectors = self._each_text_run(texts, prompt, batch_size, self._pooled)
        return l2_normalize(vectors) if normalized else vectors

    def embed_ids(
        self, original_ids: Sequence[Sequence[int]], *, batch_size: int = 32, normalize: bool | None = None
    ) -> np.ndarray:
        """Embeddings [n, dim] float32 for ids from the ORIGINAL model's tokenizer, special tokens included.

        For callers who already tokenize with the source model's tokenizer: the ids are mapped through
        id_map.json and tokens the trim dropped become the unknown token. On text whose original tokens
        were all kept this equals `embed`; on other text `embed` does better, since the trimmed tokenizer
        splits a word whose piece was dropped into kept pieces where it can. Each sequence must fit
        max_length (truncate when tokenizing); no prompt is added.
        """
        self._require_task(FEATURE_EXTRACTION, "embed_ids")
        sequences, normalized = self._check_ids(original_ids), self._normalized(normalize)
        _check_batch_size(batch_size)
        vectors = self._each_run(
            sequences,
            lambda window: [self._to_new[original] for original in window],
            batch_size,
            self._pooled,
        )
        return l2_normalize(vectors) if normalized else vectors

    def probabilities(
        self,
        texts: Sequence[str | TextPair],
        *,
        batch_size: int = 32,
        prompt: str | None = None,
        raw_scores: bool = False,
    ) -> np.ndarray:
        """Class probabilities [len(texts), len(labels)] float32, columns in `manifest.labels` order (a
        one-label model's: the sigmoid of its logit); `raw_scores`: the logits.

        A bundle that takes pairs (`manifest.pair_truncation`) classifies (first, second) pairs.
        """
        self._require_task(TEXT_CLASSIFICATION, "classify")
        if self.manifest.pair_truncation is not None and any(
            map(is_pair, _as_list(texts, "texts", "strings"))
        ):
            tokenized = self.tokenize(texts)
            return self.outputs(
                tokenized.ids, type_ids=tokenized.type_ids, batch_size=batch_size, logits=raw_scores
            )
        logits = self._each_text_run(cast(Sequence[str], texts), prompt, batch_size, self._run).astype(
            np.float32
        )
        return logits if raw_scores else class_probabilities(logits)

    def rerank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        raw_scores: bool = False,
        truncation: TruncationSide = "right",
    ) -> np.ndarray:
        """Relevance of each text to `query` [len(texts)] float32, in input order (best first:
        `np.argsort(-scores)`): a one-label pair classifier's sigmoid, or its logit with `raw_scores`."""
        self._require_task(TEXT_CLASSIFICATION, "rerank")
        if self.manifest.pair_truncation is None or len(self.manifest.labels) != 1:
            raise BundleError(
                f"bundle {self._label!r} is not a reranker (a one-label classifier of text pairs): use classify()"
            )
        if not isinstance(query, str):
            raise InputError(f"query is {type(query).__name__}, not str")
        check_unicode(query, "query")
        tokenized = self.tokenize([(query, text) for text in _check_texts(texts)], truncation=truncation)
        scores = self.outputs(tokenized.ids, type_ids=tokenized.type_ids, batch_size=batch_size, logits=True)
        return scores[:, 0] if raw_scores else sigmoid(scores[:, 0])

    def entities(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        prompt: str | None = None,
        truncation: TruncationSide = "right",
    ) -> list[list[Entity]]:
        """Each text's entities (token-classification bundles), grouped as the transformers pipeline's
        aggregation_strategy="simple" does, with character offsets into the text as given."""
        self._require_task(TOKEN_CLASSIFICATION, "entities")
        items = _check_texts(texts)
        prefix = self._prompt_prefix(prompt)
        encodings = cut_encodings(
            self._tokenizer, [prefix + text for text in items], self.manifest.max_length, truncation
        )
        logits = self.token_logits(
            [np.asarray(e.ids, dtype=np.int64) for e in encodings], batch_size=batch_size
        )
        return self.spans(items, logits, prompt=prompt, truncation=truncation, encodings=encodings)

    def spans(
        self,
        texts: Sequence[str],
        token_logits: Sequence[np.ndarray],
        *,
        prompt: str | None = None,
        truncation: TruncationSide = "right",
        encodings: Sequence[Encoding] | None = None,
    ) -> list[list[Entity]]:
        """The entities of texts whose per-token logits `token_logits` (from `tokenize` + `token_logits`)
        are known; the texts are tokenized again for their offsets unless `encodings` are given."""
        prefix = self._prompt_prefix(prompt)
        if encodings is None:
            encodings = cut_encodings(
                self._tokenizer, [prefix + text for text in texts], self.manifest.max_length, truncation
            )
        labels = self.manifest.labels
        return [
            group_simple(text, encoding, softmax(logits.astype(np.float32)), labels, len(prefix))
            for text, encoding, logits in zip(texts, encodings, token_logits, strict=True)
        ]

    def classify(
        self, texts: Sequence[str | TextPair], *, batch_size: int = 32, prompt: str | None = None
    ) -> list[Prediction]:
        """The most probable label of each text (or pair, for a bundle that takes pairs), with its probability."""
        probabilities = self.probabilities(texts, batch_size=batch_size, prompt=prompt)
        best = probabilities.argmax(axis=1)
        return [
            Prediction(label=self.manifest.labels[int(i)], score=float(row[i]))
            for i, row in zip(best, probabilities, strict=True)
        ]

    def coverage(self, texts: Sequence[str]) -> list[TextCoverage]:
        """Whether the bundle covers each text (its languages), with the shares that decide it, in order.

        Cheap next to `embed` (one more tokenization, no model run); the signals and the thresholds are
        described in `langtrim.runtime.coverage`.
        """
        items = _check_texts(texts)
        if self._coverage is None:
            check = CoverageCheck.load(self.directory, self.manifest, self._label)
            self._coverage = check.with_vocab(self._vocab)
        return self._coverage.measure(self._plain_ids(items), items)

    def tokenize(
        self,
        texts: Sequence[str | TextPair],
        *,
        prompt: str | None = None,
        truncation: TruncationSide = "right",
        pair_truncation: PairTruncation | None = None,
    ) -> Tokenized:
        """The texts' ids as `embed` and `probabilities` run them, and each text's length before truncation.

        For callers that must look at the tokens before running them (a server refusing over-long texts,
        counting tokens for usage): `outputs(tokenized.ids)` then runs them without tokenizing again.
        `truncation` is the end a text over max_length loses ("left" keeps its last tokens). A bundle that
        takes pairs also tokenizes (first, second) pairs with the tokenizer's pair template, cut by
        `pair_truncation` (default: the manifest's); their `type_ids` are the segments.
        """
        if truncation not in TRUNCATION_SIDES:
            raise InputError(f"truncation must be 'right' or 'left', got {truncation!r}")
        listed = _as_list(texts, "texts", "strings")
        if self.manifest.pair_truncation is not None and any(map(is_pair, listed)):
            strategy = check_strategy(pair_truncation or self.manifest.pair_truncation)

            def singles(texts: list[object]) -> tuple[list[np.ndarray], list[int]]:
                tokenized = self._tokenize(_check_texts(texts), truncation)
                return tokenized.ids, tokenized.lengths

            ids, lengths, type_ids = encode_items(
                self._tokenizer, listed, self.manifest.max_length, strategy, truncation, singles
            )
            return Tokenized(ids, lengths, type_ids)
        items = _check_texts(listed)
        return self._tokenize([self._prompt_prefix(prompt) + text for text in items], truncation)

    def encodings(
        self, texts: Sequence[str], *, prompt: str | None = None, add_special_tokens: bool = True
    ) -> list[Encoding]:
        """The tokenizer's full encodings (tokens, offsets, special-token mask), not truncated: what the
        bundle's tokenizer makes of each text, prompt included, for callers that show tokens."""
        items = _check_texts(texts)
        prefix = self._prompt_prefix(prompt)
        return encode_each(
            self._tokenizer, [prefix + text for text in items], add_special_tokens=add_special_tokens
        )

    def decode(self, ids: Sequence[Sequence[int]], *, skip_special_tokens: bool = True) -> list[str]:
        """Texts of id sequences of this bundle's (trimmed) vocabulary, e.g. from `tokenize`."""
        sequences = _as_list(ids, "ids", "lists of token ids")
        size = self.manifest.vocab.kept_size
        for i, item in enumerate(sequences):
            values = np.asarray(item)
            if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
                raise InputError(f"ids[{i}] must be a flat list of integers")
            if values.size and (values.min() < 0 or values.max() >= size):
                raise InputError(f"ids[{i}] holds an id outside this bundle's vocabulary (0 to {size - 1})")
        lists = [[int(value) for value in cast(Iterable[int], item)] for item in sequences]
        return self._tokenizer.decode_batch(lists, skip_special_tokens=skip_special_tokens)

    def outputs(
        self,
        ids: Sequence[np.ndarray],
        *,
        batch_size: int = 32,
        logits: bool = False,
        type_ids: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """The model's answer for ids from `tokenize`, in order: pooled embeddings [n, dim] float32, not
        normalised (feature-extraction bundles), or class probabilities [n, labels] (text-classification;
        `logits=True`: the classifier's raw scores). `type_ids`: `tokenize`'s, for text pairs."""
        sequences = self._id_arrays(ids)
        _check_batch_size(batch_size)
        types = None if type_ids is None else self._id_arrays(type_ids)

        def as_given(window: Sequence[int]) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
            return [sequences[i] for i in window], None if types is None else [types[i] for i in window]

        indices = range(len(sequences))
        if self.manifest.task == TEXT_CLASSIFICATION:
            scores = self._each_run(indices, as_given, batch_size, self._run).astype(np.float32)
            return scores if logits else class_probabilities(scores)
        self._require_task(FEATURE_EXTRACTION, "outputs")
        return self._each_run(indices, as_given, batch_size, self._pooled)

    def hidden_states(self, ids: Sequence[np.ndarray], *, batch_size: int = 32) -> list[np.ndarray]:
        """Each text's last hidden state [its tokens, hidden] float32 before pooling, for ids from `tokenize`
        (text-embeddings-inference's /embed_all)."""
        self._require_task(FEATURE_EXTRACTION, "hidden_states")
        return self._per_token(ids, batch_size)

    def token_logits(self, ids: Sequence[np.ndarray], *, batch_size: int = 32) -> list[np.ndarray]:
        """Each text's logits [its tokens, labels] float32 (token-classification), for ids from `tokenize`."""
        self._require_task(TOKEN_CLASSIFICATION, "token_logits")
        return self._per_token(ids, batch_size)

    def _per_token(self, ids: Sequence[np.ndarray], batch_size: int) -> list[np.ndarray]:
        sequences = self._id_arrays(ids)
        _check_batch_size(batch_size)
        states: list[np.ndarray] = [np.empty(0)] * len(sequences)
        lengths = [len(sequence) for sequence in sequences]
        for run in length_runs(lengths, batch_size, RUN_TOKENS, RUN_OVERHEAD_TOKENS):
            hidden = self._run(*_pad([sequences[i] for i in run], self._pad_id)).astype(np.float32)
            for row, i in zip(hidden, run, strict=True):
                states[i] = row[: lengths[i]]
        return states

    # --- steps --------------------------------------------------------------------------------------------

    def _tokenize(self, texts: list[str], truncation: TruncationSide = "right") -> Tokenized:
        """Each text's ids (special tokens included, cut to max_length at the `truncation` end), unpadded, and
        its full length.

        The text is encoded without special tokens, cut, then given its special tokens by the tokenizer's
        post-processor: the same ids as the tokenizer's own truncation, with the full length known for free
        and either end cut.
        """
        room = self.manifest.max_length - self._special_per_text
        ids, lengths = [], []
        if self._pieces is not None:
            for plain in self._plain_ids(texts):
                lengths.append(len(plain) + self._special_per_text)
                if len(plain) > room:  # Encoding.truncate without a stride: a slice at that end
                    plain = plain[:room] if truncation == "right" else plain[len(plain) - room :]
                ids.append(np.asarray(self._pieces.with_special_tokens(plain), dtype=np.int64))
            return Tokenized(ids, lengths)
        for encoding in encode_each(self._tokenizer, texts, add_special_tokens=False):
            lengths.append(len(encoding.ids) + self._special_per_text)
            if len(encoding.ids) > room:
                encoding.truncate(room, direction=truncation)
            ids.append(np.asarray(self._tokenizer.post_process(encoding).ids, dtype=np.int64))
        return Tokenized(ids, lengths)

    def _each_text_run(
        self,
        texts: Sequence[str],
        prompt: str | None,
        batch_size: int,
        step: Callable[[np.ndarray, np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """`step` over the texts, each with the prompt's prefix, tokenized a window at a time (`_each_run`)."""
        items = _check_texts(texts)
        _check_batch_size(batch_size)
        prefix = self._prompt_prefix(prompt)
        return self._each_run(
            items, lambda window: self._tokenize([prefix + text for text in window]).ids, batch_size, step
        )

    def _each_run(
        self,
        items: Sequence[_Item],
        to_ids: Callable[
            [Sequence[_Item]], list[np.ndarray] | tuple[list[np.ndarray], list[np.ndarray] | None]
        ],
        batch_size: int,
        step: Callable[..., np.ndarray],
    ) -> np.ndarray:
        """`step(ids, mask)` over runs of similar-length sequences (see `length_runs`), rows in input order;
        `step(ids, mask, type_ids)` when `to_ids` gives (ids, type ids).

        Items are turned into ids `WINDOW_TEXTS` at a time, so a call with millions of texts holds the ids
        of one window, not of all; sorting by length happens within a window.
        """
        rows: np.ndarray | None = None
        for start in range(0, len(items), WINDOW_TEXTS):
            window = to_ids(items[start : start + WINDOW_TEXTS])
            sequences, types = window if isinstance(window, tuple) else (window, None)
            lengths = [len(ids) for ids in sequences]
            for run in length_runs(lengths, batch_size, RUN_TOKENS, RUN_OVERHEAD_TOKENS):
                padded = _pad([sequences[i] for i in run], self._pad_id)
                values = (
                    step(*padded) if types is None else step(*padded, _pad([types[i] for i in run], 0)[0])
                )
                if rows is None:
                    rows = np.empty((len(items), *values.shape[1:]), dtype=values.dtype)
                rows[start + run] = values
        assert rows is not None  # _check_texts and _check_ids refuse empty input
        return rows

    def _pooled(self, ids: np.ndarray, mask: np.ndarray, type_ids: np.ndarray | None = None) -> np.ndarray:
        return self._pool(self._run(ids, mask, type_ids), mask)

    def _run(self, ids: np.ndarray, mask: np.ndarray, type_ids: np.ndarray | None = None) -> np.ndarray:
        """The graph's first output, fed exactly the inputs the graph declares (token types all 0 but for pairs)."""
        types = np.zeros_like(ids) if type_ids is None else type_ids
        available = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feed: dict[str, np.ndarray] = {
            name: available[name].astype(dtype, copy=False) for name, dtype in self._input_types.items()
        }
        (output,) = self._session.run([self.manifest.outputs[0]], feed)
        return np.asarray(output)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        pooled = mean_pool(hidden, mask) if self.manifest.pooling == "mean" else cls_pool(hidden)
        return pooled.astype(np.float32, copy=False)

    def _normalized(self, normalize: bool | None) -> bool:
        if normalize is not None and not isinstance(normalize, bool):
            raise InputError(f"normalize must be True, False or None, got {normalize!r}")
        return self.manifest.normalize if normalize is None else normalize

    def _require_task(self, task: str, method: str) -> None:
        if self.manifest.task != task:
            other = {TEXT_CLASSIFICATION: "classify", TOKEN_CLASSIFICATION: "entities"}.get(
                self.manifest.task, "embed"
            )
            raise BundleError(
                f"bundle {self._label!r} is a {self.manifest.task} model, so {method}() does not apply: use "
                f"{other}(), or pack the model with task {task}"
            )

    def _prompt_prefix(self, prompt: str | None) -> str:
        if prompt is None:
            return ""
        if prompt not in self.manifest.prompts:
            known = ", ".join(map(repr, self.manifest.prompts)) or "none"
            raise InputError(
                f"prompt {prompt!r} is not one of this bundle's prompts ({known}); to add another prefix, "
                "put it in front of the texts yourself"
            )
        return self.manifest.prompts[prompt]

    @staticmethod
    def _id_arrays(ids: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [
            np.asarray(item, dtype=np.int64) for item in _as_list(ids, "ids", "id arrays from tokenize()")
        ]

    def _check_ids(self, original_ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        items = _as_list(original_ids, "original_ids", "lists of token ids")
        size, limit = self.manifest.vocab.original_size, self.manifest.max_length
        sequences = []
        for i, item in enumerate(items):
            if isinstance(item, (str, bytes)) or not isinstance(item, Iterable):
                raise InputError(f"original_ids[{i}] is {type(item).__name__}, not a list of token ids")
            ids = np.asarray(list(item))
            if ids.size == 0:
                raise InputError(
                    f"original_ids[{i}] is empty: tokenize with special tokens ([CLS] ... [SEP])"
                )
            if ids.ndim != 1 or ids.dtype.kind not in "iu":
                raise InputError(f"original_ids[{i}] must be a flat list of integers, got dtype {ids.dtype}")
            if len(ids) > limit:
                raise InputError(
                    f"original_ids[{i}] has {len(ids)} ids, more than this bundle's max_length {limit}: "
                    f"tokenize with truncation to {limit}"
                )
            if ids.min() < 0 or ids.max() >= size:
                raise InputError(
                    f"original_ids[{i}] holds id {int(ids.max() if ids.max() >= size else ids.min())}, outside the "
                    f"original vocabulary (0 to {size - 1}): were these ids made by another model's tokenizer?"
                )
            sequences.append(ids.astype(np.int64))
        return sequences


# --- loading ------------------------------------------------------------------------------------------------


def _create_session(path: Path, label: str, threads: int | None) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default, one thread per physical core
    options.log_severity_level = 3  # errors only: its warnings are about graph details users cannot act on
    try:
        return onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=_DISABLED_OPTIMIZERS
        )
    except Exception as error:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        raise BundleError(
            f"bundle {label!r}: onnxruntime {onnxruntime.__version__} cannot load {MODEL_FILE} ({error}); "
            "re-run langtrim pack"
        ) from error


def _check_graph(session: onnxruntime.InferenceSession, manifest: Manifest, label: str) -> dict[str, type]:
    """The graph's inputs with their numpy dtypes, after checking the graph is one langtrim can serve."""
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    unknown = [name for name in inputs if name not in KNOWN_INPUTS or inputs[name] not in _INTEGER_TYPES]
    if unknown or "input_ids" not in inputs:
        raise BundleError(
            f"bundle {label!r}: {MODEL_FILE} takes inputs {dict(inputs)}, but langtrim can only fill "
            f"{', '.join(KNOWN_INPUTS)} (integer tensors) and needs input_ids"
        )
    if set(inputs) != set(manifest.inputs) or manifest.outputs[0] not in outputs:
        raise BundleError(
            f"bundle {label!r}: the manifest says inputs {list(manifest.inputs)} and outputs "
            f"{list(manifest.outputs)}, but {MODEL_FILE} has {list(inputs)} and {list(outputs)}; re-run langtrim pack"
        )
    rank = 2 if manifest.task == TEXT_CLASSIFICATION else 3
    shape = outputs[manifest.outputs[0]]
    if shape is not None and len(shape) != rank:
        raise BundleError(
            f"bundle {label!r}: output {manifest.outputs[0]!r} has rank {len(shape)}, but a "
            f"{manifest.task} model needs rank {rank}"
        )
    classes = shape[-1] if shape else None
    if manifest.task != FEATURE_EXTRACTION and isinstance(classes, int) and classes != len(manifest.labels):
        raise BundleError(
            f"bundle {label!r}: the model has {classes} logits but the manifest {len(manifest.labels)} labels"
        )
    return {name: _INTEGER_TYPES[kind] for name, kind in inputs.items()}


# --- input checks --------------------------------------------------------------------------------------------


def _as_list(items: object, name: str, what: str) -> list[object]:
    if isinstance(items, (str, bytes)):
        raise InputError(
            f"{name} must be a list of {what}, got a single {type(items).__name__}: wrap it in a list, e.g. [text]"
        )
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise InputError(f"{name} must be a list of {what}, got {type(items).__name__}")
    listed = list(items)
    if not listed:
        raise InputError(f"{name} is empty: give at least one item to encode")
    return listed


def _check_texts(texts: object) -> list[str]:
    items = _as_list(texts, "texts", "strings")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InputError(f"texts[{i}] is {type(item).__name__}, not str: every text must be a string")
        check_unicode(item, f"texts[{i}]")
    return cast(list[str], items)


def _check_batch_size(batch_size: object) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")


def length_runs(
    lengths: Sequence[int], batch_size: int, run_tokens: int, run_overhead: int = RUN_OVERHEAD_TOKENS
) -> list[np.ndarray]:
    """Indices into `lengths` cut into onnxruntime runs, each at most `batch_size` texts and `run_tokens`
    padded positions (a longer text runs alone), chosen to cost the least.

    A run costs about `run_overhead` + texts x longest positions, so one padded batch of mixed lengths costs
    as if every text were as long as its longest. Sorted by length, the cheapest cut into runs is a shortest
    path over the sorted texts (O(texts x batch_size)). Results do not depend on the cut: padding is masked
    out of attention and pooling.
    """
    if len(lengths) == 1:  # a server's usual request: nothing to choose, and the search costs ~30 us
        return [np.zeros(1, dtype=np.intp)]
    order = np.argsort(np.asarray(lengths), kind="stable")
    ordered = [int(lengths[i]) for i in order]
    best = [0.0] + [float("inf")] * len(ordered)  # best[j]: the cheapest cost of the first j sorted texts
    cut = [0] * (len(ordered) + 1)  # where the last run of that cheapest cost starts
    for end in range(1, len(ordered) + 1):
        longest = ordered[end - 1]
        for start in range(end - 1, max(end - batch_size, 0) - 1, -1):
            texts = end - start
            if texts > 1 and texts * longest > run_tokens:
                break
            cost = best[start] + run_overhead + texts * longest
            if cost < best[end]:
                best[end], cut[end] = cost, start
    runs, end = [], len(ordered)
    while end > 0:
        runs.append(order[cut[end] : end])
        end = cut[end]
    return runs[::-1]


def _pad(sequences: list[np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences to the longest: (ids [batch, seq], attention mask [batch, seq]) int64."""
    longest = max(len(ids) for ids in sequences)
    ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return ids, mask
