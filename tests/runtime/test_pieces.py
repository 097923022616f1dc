"""A Unigram bundle's sentencepiece copy of its pieces gives tokenizers' own ids, and the Encoder runs on it.

Against the real e5 tokenizer (250k pieces) and the default bundle's trimmed one; texts the pack's own check
never saw: the held-out Tatoeba sentences and random strings from another seed.
"""

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from langtrim.packager.pack.piece_tokenizer import write_piece_tokenizer
from langtrim.runtime import BundleError, Encoder
from langtrim.runtime.bundle import TOKENIZER_FILE, read_manifest, record_parity
from langtrim.runtime.pieces import PIECES_CONFIG_FILE, PIECES_MODEL_FILE, PieceTokenizer
from tests.conftest import E5_TOKENIZER, MINILM_DIR

HELD_OUT = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "tatoeba-heldout"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def held_out() -> list[str]:
    return [line for path in sorted(HELD_OUT.glob("*.txt")) for line in path.read_text("utf-8").splitlines()]


def random_texts(tokenizer_file: Path, count: int, seed: int) -> list[str]:
    """Strings of the vocabulary's pieces, its added tokens, odd whitespace and characters of any plane."""
    raw = json.loads(tokenizer_file.read_text("utf-8"))
    words = [piece.replace("\u2581", " ") for piece, _ in raw["model"]["vocab"]]
    added = [token["content"] for token in raw["added_tokens"]]
    odd = [" ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u200b", "\u2581", "e\u0301", "👍🏽", "Ⅻ", "İ"]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rng.choice(words if rng.random() < 0.6 else added + odd) for _ in range(rng.randint(0, 10))]
        parts.append(
            "".join(
                chr(rng.choice([rng.randint(32, 0xD7FF), rng.randint(0xE000, 0x2FFFF)])) for _ in range(3)
            )
        )
        texts.append("".join(p + (" " if rng.random() < 0.3 else "") for p in parts))
    return texts


def tokenizer_folder(tmp_path: Path, tokenizer_file: Path, edit=None) -> Path:
    """A folder with `tokenizer_file` (optionally edited as JSON) and the files pad-token lookup reads."""
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    raw = json.loads(tokenizer_file.read_text("utf-8"))
    if edit is not None:
        edit(raw)
    (folder / TOKENIZER_FILE).write_text(json.dumps(raw, ensure_ascii=False), "utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>"}))
    return folder


@pytest.fixture(scope="module")
def e5_pieces(tmp_path_factory: pytest.TempPathFactory) -> tuple[PieceTokenizer, Tokenizer]:
    folder = tokenizer_folder(tmp_path_factory.mktemp("e5"), E5_TOKENIZER)
    outcome = write_piece_tokenizer(folder, 250002, None)
    assert outcome.startswith("sentencepiece's copy"), outcome
    return PieceTokenizer.load(folder, "e5"), Tokenizer.from_file(str(folder / TOKENIZER_FILE))


def test_the_full_e5_vocabulary_gives_tokenizers_ids(e5_pieces) -> None:
    pieces, tokenizer = e5_pieces
    texts = held_out() + random_texts(E5_TOKENIZER, 3000, seed=7)
    differ = [t for t in texts if pieces.ids(t) != tokenizer.encode(t, add_special_tokens=False).ids]
    assert not differ, f"{len(differ)} of {len(texts)} differ, e.g. {differ[0]!r}"
    assert pieces.with_special_tokens(pieces.ids("Hello")) == tokenizer.encode("Hello").ids


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda raw: raw["pre_tokenizer"].update(prepend_scheme="first"), id="prepend-first"),
        pytest.param(lambda raw: raw["pre_tokenizer"].update(prepend_scheme="never"), id="prepend-never"),
        pytest.param(  # XLM-R's own tokenizer.json: <mask> takes the space before it
            lambda raw: [
                t.update(lstrip=True) for t in raw["added_tokens"] if t["content"] in ("<mask>", "</s>")
            ],
            id="lstrip",
        ),
        pytest.param(
            lambda raw: [t.update(rstrip=True) for t in raw["added_tokens"] if t["content"] == "<s>"],
            id="rstrip",
        ),
    ],
)
def test_tokenizer_variants_give_tokenizers_ids(tmp_path: Path, trimmed_default: Path, edit) -> None:
    folder = tokenizer_folder(tmp_path, trimmed_default / TOKENIZER_FILE, edit)
    kept = Tokenizer.from_file(str(folder / TOKENIZER_FILE)).get_vocab_size()
    assert write_piece_tokenizer(folder, kept, None).startswith("sentencepiece's copy")
    pieces, tokenizer = PieceTokenizer.load(folder, "x"), Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    texts = held_out()[:2000] + random_texts(folder / TOKENIZER_FILE, 2000, seed=11)
    assert all(pieces.ids(t) == tokenizer.encode(t, add_special_tokens=False).ids for t in texts)


def test_a_wordpiece_tokenizer_keeps_tokenizers(tmp_path: Path) -> None:
    folder = tmp_path / "minilm"
    folder.mkdir()
    for name in TOKENIZER_FILES:
        shutil.copy2(MINILM_DIR / name, folder / name)
    kept = Tokenizer.from_file(str(folder / TOKENIZER_FILE)).get_vocab_size()
    assert write_piece_tokenizer(folder, kept, None) == "tokenizers alone: a WordPiece model, not Unigram"
    assert not (folder / PIECES_MODEL_FILE).exists() and not (folder / PIECES_CONFIG_FILE).exists()


def test_pieces_that_would_give_other_ids_are_not_shipped(
    tmp_path: Path, trimmed_default: Path, monkeypatch
) -> None:
    """The check can fail: scores turned upside down make sentencepiece pick other pieces."""
    from langtrim.packager.pack import piece_tokenizer

    folder = tokenizer_folder(tmp_path, trimmed_default / TOKENIZER_FILE)
    real = piece_tokenizer.sentencepiece_model

    def upside_down(raw):
        flipped = {
            **raw,
            "model": {**raw["model"], "vocab": [[p, -10 - s] for p, s in raw["model"]["vocab"]]},
        }
        return real(flipped)

    monkeypatch.setattr(piece_tokenizer, "sentencepiece_model", upside_down)
    kept = Tokenizer.from_file(str(folder / TOKENIZER_FILE)).get_vocab_size()
    outcome = write_piece_tokenizer(folder, kept, None)
    assert outcome.startswith("tokenizers alone: sentencepiece's ids differ for "), outcome
    assert not (folder / PIECES_MODEL_FILE).exists() and not (folder / PIECES_CONFIG_FILE).exists()


def test_a_piece_with_an_inner_space_mark_keeps_tokenizers(tmp_path: Path, trimmed_default: Path) -> None:
    def inner(raw):
        raw["model"]["vocab"][-2][0] = "a\u2581b"

    folder = tokenizer_folder(tmp_path, trimmed_default / TOKENIZER_FILE, inner)
    kept = Tokenizer.from_file(str(folder / TOKENIZER_FILE)).get_vocab_size()
    assert (
        write_piece_tokenizer(folder, kept, None) == "tokenizers alone: a piece holds '\u2581' past its start"
    )


def test_the_default_bundle_runs_on_the_pieces(default_bundle, tmp_path: Path) -> None:
    """Packed bundles carry the pieces; an Encoder on them embeds, tokenizes and checks coverage exactly as
    one on tokenizers alone (the same bundle without the two files), and loads tokenizers only for what
    needs it."""
    bundle, _ = default_bundle
    assert {PIECES_MODEL_FILE, PIECES_CONFIG_FILE} <= set(read_manifest(bundle).files)
    plain = tmp_path / "plain"
    shutil.copytree(bundle, plain)
    (plain / PIECES_MODEL_FILE).unlink()
    (plain / PIECES_CONFIG_FILE).unlink()
    record_parity(plain, read_manifest(plain, verify="none").parity)
    on_pieces, on_tokenizers = Encoder(bundle, threads=1), Encoder(plain, threads=1)
    assert on_pieces._pieces is not None and on_pieces._loaded_tokenizer is None
    assert on_tokenizers._pieces is None
    texts = held_out()[::7] + random_texts(bundle / TOKENIZER_FILE, 200, seed=3) + ["word " * 600]
    for side in ("right", "left"):
        a, b = on_pieces.tokenize(texts, truncation=side), on_tokenizers.tokenize(texts, truncation=side)
        assert a.lengths == b.lengths and all(np.array_equal(x, y) for x, y in zip(a.ids, b.ids, strict=True))
    assert np.array_equal(on_pieces.embed(texts[:64]), on_tokenizers.embed(texts[:64]))
    assert on_pieces.coverage(texts) == on_tokenizers.coverage(texts)
    assert on_pieces._loaded_tokenizer is None  # all of the above ran on the pieces
    assert on_pieces.decode([[0, 100, 2]]) == on_tokenizers.decode([[0, 100, 2]])
    assert on_pieces._loaded_tokenizer is not None


def test_a_bad_pieces_file_is_a_bundle_error(default_bundle, tmp_path: Path) -> None:
    bundle, _ = default_bundle
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    config = json.loads((broken / PIECES_CONFIG_FILE).read_text())
    (broken / PIECES_CONFIG_FILE).write_text(json.dumps({**config, "format": 99}))
    record_parity(broken, read_manifest(broken, verify="none").parity)
    with pytest.raises(
        BundleError, match=r"tokenizer\.pieces\.json or tokenizer\.pieces\.model cannot be read"
    ):
        Encoder(broken)
