"""What length-sorted runs bring at batch 32: the same Encoder, the same batches, one padded run against runs.

The texts are side_by_side.py's batch-32 traffic (shipped Tatoeba sentences of the bundle's languages,
interleaved, e5's "query: " prefix). "one padded run" gives `length_runs` an overhead so large and a run size
so large that it never cuts a batch, which is what the runtime did before it sorted by length (and what PyTorch does in
side_by_side.py). CPU time of this process, medians over --repeats passes over all batches, 1 thread.

    python benchmarks/length_runs.py --bundle /tmp/langtrim-bench/full/multilingual-e5-small/en-fr-de-int8
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from tokenizers import Tokenizer

import langtrim.runtime.encoder as encoder_module
from langtrim.packager.bench.measure import bench_texts
from langtrim.runtime import Encoder

ROOT = Path(__file__).resolve().parents[1]


def sentences_per_cpu_second(encoder: Encoder, batches: list[list[str]], repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.process_time()
        for batch in batches:
            encoder.embed(batch, batch_size=32)
        seconds.append(time.process_time() - started)
    return sum(map(len, batches)) / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    encoder = Encoder(args.bundle, threads=1)
    tokenizer = Tokenizer.from_file(str(args.bundle / "tokenizer.json"))
    prefix = encoder.manifest.prompts.get("query", "")
    texts = bench_texts(tokenizer, list(encoder.manifest.languages), prompt=prefix).batch
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]
    encoder.embed(batches[0])  # warm-up

    runs = sentences_per_cpu_second(encoder, batches, args.repeats)
    overhead, cap = encoder_module.RUN_OVERHEAD_TOKENS, encoder_module.RUN_TOKENS
    encoder_module.RUN_OVERHEAD_TOKENS = 10**9  # every cut costs more than any padding
    encoder_module.RUN_TOKENS = 10**9  # and no run is too large
    padded = sentences_per_cpu_second(encoder, batches, args.repeats)
    encoder_module.RUN_OVERHEAD_TOKENS, encoder_module.RUN_TOKENS = overhead, cap
    result = {
        "command": f"python benchmarks/length_runs.py --bundle {args.bundle}",
        "batches_of_32": len(batches),
        "one_padded_run_sentences_per_cpu_s": padded,
        "length_runs_sentences_per_cpu_s": runs,
        "ratio": runs / padded,
    }
    out = ROOT / "benchmarks" / "results" / "length_runs.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
