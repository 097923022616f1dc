"""The runtime's calls into `tokenizers`: a request's few texts on the caller's thread.

`Tokenizer.encode_batch` hands the texts to a thread pool whose workers sleep between calls. For a request's
few texts, waking them costs more than it saves, and while onnxruntime's threads still spin after a run (as in
a server) it took ~15x longer for 32 sentences on 2 cores (benchmarks/coverage_detection.py). Many texts (an
`embed` call indexing documents) go to the pool, which tokenizes them on every core while the caller waits.
docs/results.md ("Tokenizing") has the figures.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Encoding, Tokenizer

# Up to this many texts are encoded on the caller's thread: as fast as the pool at 32 on 2 cores, and a
# 64-text window's tokenization is small next to its run even when more cores would share it.
CALLER_THREAD_TEXTS = 64


def encode_each(tokenizer: Tokenizer, texts: Sequence[str], *, add_special_tokens: bool) -> list[Encoding]:
    """`tokenizer.encode_batch(texts)`'s encodings; on this thread for up to `CALLER_THREAD_TEXTS` texts."""
    if len(texts) > CALLER_THREAD_TEXTS:
        return tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)
    return [tokenizer.encode(text, add_special_tokens=add_special_tokens) for text in texts]


def special_tokens_added(tokenizer: Tokenizer, pair: bool = False) -> int:
    """How many special tokens the post-processor adds to a text (or a pair): [CLS] and [SEP] make 2."""
    processor = tokenizer.post_processor
    return processor.num_special_tokens_to_add(pair) if processor is not None else 0
