"""The same bundle's vectors on two CPU kinds: how many rows are bit-identical, how far the others are, and
whether bitext F1 moves.

`embed` writes a bundle's vectors of the shipped Tatoeba pairs (the bundle's languages' sides and their
English translations, "query: " before every text) and prints their F1; run it on each CPU kind (or under
`qemu-x86_64 -cpu EPYC-Milan`, which makes onnxruntime take its AVX2 kernels on any x86 host), then
`compare` the two files:

    python benchmarks/cross_cpu_vectors.py embed BUNDLE /tmp/native.npz
    qemu-x86_64 -cpu EPYC-Milan .venv/bin/python benchmarks/cross_cpu_vectors.py embed BUNDLE /tmp/avx2.npz
    python benchmarks/cross_cpu_vectors.py compare /tmp/native.npz /tmp/avx2.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from langtrim.packager.pack.bitext import bitext_score, nearest
from langtrim.packager.shipped_text import shipped_pairs
from langtrim.runtime import Encoder, read_manifest


def embed(bundle: Path, out: Path) -> None:
    encoder = Encoder(bundle)
    prompt = "query: "
    vectors: dict[str, np.ndarray] = {}
    for language in read_manifest(bundle).languages:
        if (pairs := shipped_pairs(language)) is None:
            continue
        sides = [encoder.embed([prompt + text for text in side], normalize=False) for side in pairs]
        vectors[f"{language}"], vectors[f"{language}_en"] = sides
        print(
            f"{language}: F1 {bitext_score(nearest(*sides)).f1:.2f}, English queries "
            f"{bitext_score(nearest(*sides[::-1])).f1:.2f}"
        )
    np.savez(out, **vectors)


def compare(first: Path, second: Path) -> None:
    a, b = np.load(first), np.load(second)
    for name in a.files:
        x, y = a[name], b[name]
        cosines = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
        print(
            f"{name}: {len(x)} rows, {(x == y).all(1).mean():.1%} bit-identical, cosine min {cosines.min():.5f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("embed", help="write the bundle's vectors of the shipped pairs")
    run.add_argument("bundle", type=Path)
    run.add_argument("out", type=Path)
    both = commands.add_parser("compare", help="compare two files of vectors")
    both.add_argument("first", type=Path)
    both.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "embed":
        embed(args.bundle, args.out)
    else:
        compare(args.first, args.second)


if __name__ == "__main__":
    main()
