"""Token statistics counted the plain way, as a reference for the fast counters and as selection input."""

from collections import Counter

import numpy as np
from tokenizers import Tokenizer

from langtrim.packager.selection.stats import TokenStats, tokenizer_sha256


def line_statistics(tokenizer: Tokenizer, language: str, lines: list[str]) -> TokenStats:
    """Per token, the lines it occurs in: one set of ids per line, every line counted."""
    per_line: Counter[int] = Counter()
    for line in lines:
        per_line.update(set(tokenizer.encode(line, add_special_tokens=False).ids))
    line_counts = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    line_counts[list(per_line)] = list(per_line.values())
    return TokenStats(
        tokenizer_sha256(tokenizer), language, len(lines), line_counts, line_counts, 0, ("test",)
    )
