"""Line frequencies: for one language and one tokenizer, how many lines each token occurs in.

This is the statistic of the paper ("Load What You Need", Abdaoui et al. 2020): a token is kept for a
language when it occurs in at least a threshold fraction of that language's lines. Every selection source
(a user's corpus, the offline word-frequency approximation) produces one `LineFrequencies`.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LineFrequencies:
    language: str
    n_lines: int
    line_counts: np.ndarray  # [vocab_size] int64: number of lines each token id occurs in
    source: str  # one line a person reads, e.g. "corpus fr.txt.gz (1,204,311 lines)"

    def line_fraction(self) -> np.ndarray:
        """[vocab_size] float64: share of lines each token occurs in (0 where no line was counted)."""
        if self.n_lines == 0:
            return np.zeros(len(self.line_counts), dtype=np.float64)
        return self.line_counts / float(self.n_lines)
