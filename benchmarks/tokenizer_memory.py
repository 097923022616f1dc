"""What a Unigram bundle's tokenizer costs in memory: tokenizers' Unigram model against langtrim's
sentencepiece copy of the same pieces (`langtrim.runtime.pieces`), which the Encoder runs when the bundle has it.

tokenizers keeps a Unigram vocabulary (multilingual-e5, XLM-R) in a byte trie with a std HashMap in every
node. Each engine loads in fresh processes, the libraries imported before: RSS growth after loading, peak
RSS growth, load time, and time per text encoded one by one (ids without special tokens); and whether the
two give the same ids, over the held-out Tatoeba sentences (`benchmarks/data/tatoeba-heldout/`) and edge
cases. A bundle packed before the pieces files existed gets them in a temporary copy, written as `langtrim
pack` writes them (`packager/pack/piece_tokenizer.py`, which also checks them).

    python benchmarks/tokenizer_memory.py --bundle en-fr-de.bundle

Writes benchmarks/results/tokenizer_memory.json and .md. Medians over --rounds fresh processes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = ROOT / "benchmarks" / "data" / "tatoeba-heldout"
EDGE_CASES = [
    "",
    " ",
    "  leading spaces",
    "trailing spaces  ",
    "a  b   c",
    "\ttab\tseparated",
    "new\nline",
    "ﬁ ligature ①②",
    "Ｆｕｌｌｗｉｄｔｈ",
    "e\u0301 combining accent",
    "emoji 😀👍🏽 ☃☃☃",
    "<s> literal special tokens </s>",
    "<mask> x",
    "\u200bzero width",
    "x" * 300,
    "日本語のテキスト",
]
ENGINES = {
    "tokenizers": "tokenizers, tokenizer.json (Unigram)",
    "pieces": "langtrim's PieceTokenizer (sentencepiece), tokenizer.pieces.*",
}
# The files the tokenizers of a bundle are made of (what write_piece_tokenizer reads).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

CHILD = r"""
import json, sys, time
from pathlib import Path
def rss():
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["VmRSS"].split()[0]) * 1024 / 1e6, int(fields["VmHWM"].split()[0]) * 1024 / 1e6
engine, folder, texts_file, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
import tokenizers, sentencepiece
from langtrim.runtime.pieces import PieceTokenizer
texts = json.load(open(texts_file))
before, start = rss(), time.perf_counter()
if engine == "tokenizers":
    tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False).ids
else:
    encode = PieceTokenizer.load(folder, str(folder)).ids
loaded, after = time.perf_counter() - start, rss()
start = time.perf_counter()
ids = [encode(text) for text in texts]
per_text = (time.perf_counter() - start) / len(texts)
json.dump(ids, open(out, "w"))
print(json.dumps({"load_ms": loaded * 1e3, "rss_mb": after[0] - before[0], "peak_mb": after[1] - before[0],
                  "us_per_text": per_text * 1e6}))
"""


def pieces_folder(bundle: Path, folder: Path) -> Path:
    """The bundle itself when it has the pieces files, else `folder` with its tokenizer files and them."""
    from langtrim.runtime.pieces import PIECES_MODEL_FILE

    if (bundle / PIECES_MODEL_FILE).is_file():
        return bundle
    from langtrim.packager.pack.piece_tokenizer import write_piece_tokenizer
    from langtrim.runtime.bundle import read_manifest

    for name in TOKENIZER_FILES:
        if (bundle / name).is_file():
            shutil.copy2(bundle / name, folder / name)
    outcome = write_piece_tokenizer(folder, read_manifest(bundle, verify="none").vocab.kept_size, None)
    if not (folder / PIECES_MODEL_FILE).is_file():
        raise SystemExit(f"{bundle}: {outcome}")
    return folder


def trie_nodes(tokenizer_file: Path) -> tuple[int, int]:
    """(pieces, nodes of their byte trie: one per distinct prefix)."""
    pieces = [piece for piece, _ in json.loads(tokenizer_file.read_text(encoding="utf-8"))["model"]["vocab"]]
    return len(pieces), len(
        {piece.encode()[:end] for piece in pieces for end in range(1, len(piece.encode()) + 1)}
    )


def run(engine: str, folder: Path, texts_file: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, engine, str(folder), str(texts_file), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(result: dict) -> str:
    rows = [
        "| tokenizer | RSS growth, MB | peak growth, MB | load, ms | µs per text |",
        "|---|---:|---:|---:|---:|",
    ]
    for engine, figures in result["engines"].items():
        rows.append(
            f"| {ENGINES[engine]} | {figures['rss_mb']:.1f} | {figures['peak_mb']:.1f} | {figures['load_ms']:.1f} "
            f"| {figures['us_per_text']:.1f} |"
        )
    trie, texts = result["trie"], result["texts"]
    return (
        "\n\n".join(
            [
                f"# Tokenizer memory: {result['bundle']}",
                f"`{result['command']}`; {result['machine']['cpu']} ({', '.join(result['machine']['cpu_flags'])}), "
                f"{result['machine']['logical_cores']} cores; "
                f"tokenizers {result['versions']['tokenizers']}, sentencepiece {result['versions']['sentencepiece']}. "
                f"Medians of {result['rounds']} fresh processes; {texts:,} texts (held-out Tatoeba and edge cases), "
                "encoded one by one, ids without special tokens.",
                "\n".join(rows),
                f"Texts whose ids differ between the two: {result['differ']} of {texts:,}. {trie['pieces']:,} pieces "
                f"make a byte trie of {trie['nodes']:,} nodes: tokenizers takes "
                f"{result['engines']['tokenizers']['rss_mb'] * 1e6 / trie['nodes']:.0f} bytes per node, the whole "
                "tokenizer counted.",
            ]
        )
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bundle",
        type=Path,
        default=Path("/tmp/langtrim-bench/full/multilingual-e5-small/en-fr-de-int8"),
        help="a bundle with a Unigram tokenizer (side_by_side.py builds this one)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    import sentencepiece
    import tokenizers

    from langtrim.packager.bench.results import machine

    texts = EDGE_CASES + [
        line
        for path in sorted(HELD_OUT.glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    with tempfile.TemporaryDirectory(prefix="langtrim-tokenizer-memory-") as name:
        work = Path(name)
        folder = pieces_folder(args.bundle, work)
        texts_file = work / "texts.json"
        texts_file.write_text(json.dumps(texts))
        raw: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
        for _ in range(args.rounds):  # rounds go over both engines in turn: a busy spell hits both alike
            for engine in ENGINES:
                raw[engine].append(run(engine, folder, texts_file, work / f"{engine}.ids.json"))
        reference, pieces = (json.loads((work / f"{e}.ids.json").read_text()) for e in ENGINES)
    pieces_count, nodes = trie_nodes(args.bundle / "tokenizer.json")
    result = {
        "command": " ".join(["python benchmarks/tokenizer_memory.py", *sys.argv[1:]]),
        "bundle": str(args.bundle),
        "rounds": args.rounds,
        "machine": machine(),
        "versions": {"tokenizers": tokenizers.__version__, "sentencepiece": sentencepiece.__version__},
        "trie": {"pieces": pieces_count, "nodes": nodes},
        "engines": {
            e: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for e, runs in raw.items()
        },
        "texts": len(texts),
        "differ": sum(a != b for a, b in zip(reference, pieces, strict=True)),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tokenizer_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (args.out / "tokenizer_memory.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
