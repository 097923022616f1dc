"""Which tokens to keep: the paper's rule (`threshold`) on token statistics (`stats`), per language from the
best source (`choose`: a counted corpus, the paper's lists, wordfreq), plus fallback pieces and kept texts.

Nothing here reads a corpus: counting one, at any size, is `langtrim.packager.counting`'s job.
"""
