"""One benchmark measurement in a fresh interpreter: `python -m langtrim.packager.bench.child PLAN.json`.

The parent (`langtrim.packager.bench.measure`) starts this module once per engine, thread count and repetition, and
reads one JSON line from stdout. Start-up is part of what is measured, so this module imports nothing but the
standard library before the engine's own imports: the cold start it reports is what a user's process pays
(interpreter, imports, model and tokenizer, first embedding), plus reading the small plan file.

Order of events, all in one process: imports -> load (model + tokenizer) -> first embedding of one short text
-> warm-up -> batch-1 latency on short and long texts -> batch-32 throughput. Peak RSS is the kernel's
high-water mark (VmHWM) read after the imports, after load, after the first embedding and at the end.
Besides wall-clock times, the process's CPU time (all its threads) is recorded: on a shared machine it moves
much less.

Engines: "onnx" loads a bundle with `langtrim.runtime.Encoder` (torch-free); "torch" loads a Hugging Face
directory with transformers' AutoModel and AutoTokenizer and pools as the bundle would (mean or CLS over the
attention mask, then L2 normalisation), under `torch.inference_mode()`. The peers load the plan's ONNX file
as their documentation says: "fastembed" registers it with `TextEmbedding.add_custom_model` and loads it
with `specific_model_path`; "sentence-transformers" opens the folder with `backend="onnx"` and
`model_kwargs={"file_name": ...}` (its modules.json pools and normalises). Each runs at the plan's threads.
"""

import json
import sys
import time

_T_CHILD = time.time()  # the interpreter has started and begun running this module


def status_mb(field: str) -> float:
    """A /proc/self/status memory field (VmHWM: peak resident set, VmRSS: current) in MB (10^6 bytes)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    import resource  # not Linux: ru_maxrss is the peak (kilobytes on Linux/BSD, bytes on macOS)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def _load_onnx(plan: dict):  # -> (embed, count_tokens)
    from langtrim.runtime import Encoder

    encoder = Encoder(plan["path"], threads=plan["threads"], verify=plan.get("verify", "full"))

    def embed(texts: list[str]):
        return encoder.embed(texts, batch_size=32)

    return embed, _token_counter(plan)


def _token_counter(plan: dict):  # -> count_tokens
    """Token counts of texts as the folder's tokenizer.json cuts them at the plan's max_length."""

    def count_tokens(texts: list[str]) -> list[int]:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(f"{plan['path']}/tokenizer.json")
        tokenizer.enable_truncation(max_length=plan["max_length"])
        return [len(encoding.ids) for encoding in tokenizer.encode_batch(texts)]

    return count_tokens


def _hidden_size(plan: dict) -> int:
    with open(f"{plan['path']}/config.json", encoding="utf-8") as stream:
        config = json.load(stream)
    return int(config.get("hidden_size") or config["dim"])  # DistilBERT says "dim"


def _load_fastembed(plan: dict):  # -> (embed, count_tokens)
    import tempfile

    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    name = "langtrim-bench/peer"  # registered in this process only; never fetched: the files are local
    TextEmbedding.add_custom_model(
        name,
        pooling=PoolingType.CLS if plan["pooling"] == "cls" else PoolingType.MEAN,
        normalization=plan["normalize"],
        sources=ModelSource(hf=name),
        dim=_hidden_size(plan),
        model_file=plan["onnx_file"],
    )
    model = TextEmbedding(
        name, specific_model_path=plan["path"], threads=plan["threads"], cache_dir=tempfile.gettempdir()
    )

    def embed(texts: list[str]):
        return list(model.embed(texts, batch_size=32))

    return embed, _token_counter(plan)


def _load_sentence_transformers(plan: dict):  # -> (embed, count_tokens)
    import onnxruntime
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(plan["threads"])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = plan["threads"]
    options.inter_op_num_threads = 1
    model = SentenceTransformer(
        plan["path"],
        backend="onnx",
        device="cpu",
        model_kwargs={
            "file_name": plan["onnx_file"],
            "provider": "CPUExecutionProvider",
            "session_options": options,
        },
    )
    model.max_seq_length = plan["max_length"]

    def embed(texts: list[str]):
        return model.encode(texts, batch_size=32)

    return embed, _token_counter(plan)


def _import_torch() -> None:
    import torch  # noqa: F401
    import transformers  # noqa: F401

    # transformers imports lazily: without this, its auto classes (~120 MB, ~1 s) would count as loading
    from transformers import AutoModel, AutoTokenizer  # noqa: F401


def _load_torch(plan: dict):  # -> (embed, count_tokens)
    import inspect

    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(plan["threads"])
    model = AutoModel.from_pretrained(plan["path"], use_safetensors=True).eval()
    if plan.get("read_all_weights"):  # fault in every page of the memory-mapped weights
        with torch.inference_mode():
            for weight in model.state_dict().values():
                weight.sum()
    tokenizer = AutoTokenizer.from_pretrained(plan["path"])
    max_length, pooling, normalize = plan["max_length"], plan["pooling"], plan["normalize"]
    # A BERT tokenizer gives token_type_ids, which DistilBERT's forward does not take.
    accepted = set(inspect.signature(model.forward).parameters)

    def embed(texts: list[str]):
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        inputs = {name: value for name, value in encoded.items() if name in accepted}
        with torch.inference_mode():
            hidden = model(**inputs).last_hidden_state  # [batch, seq, dim]
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.numpy()

    def count_tokens(texts: list[str]) -> list[int]:
        encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        return [len(ids) for ids in encoded]

    return embed, count_tokens


def _timed(embed, texts: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (every thread of the process) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    embed(texts)
    return time.perf_counter() - start, time.process_time() - cpu


def _percentile(values: list[float], share: float) -> float:
    """Linear-interpolation percentile (numpy's default), without importing numpy for the parent's sake."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def measure(plan: dict) -> dict:
    """Every figure of one process; times in seconds, memory in MB."""
    engine = plan["engine"]
    texts = plan["texts"]
    t_start = time.time()
    if engine == "onnx":
        import onnxruntime  # noqa: F401  (the imports Encoder needs, timed apart from loading)
        import tokenizers  # noqa: F401

        import langtrim.runtime.encoder  # noqa: F401
    elif engine == "torch":
        _import_torch()
    elif engine == "fastembed":
        import fastembed  # noqa: F401
    elif engine == "sentence-transformers":
        import sentence_transformers  # noqa: F401
    else:
        raise ValueError(f"unknown engine {engine!r}")
    t_imported = time.time()
    rss_import = status_mb("VmHWM")  # the libraries alone, before any model
    loaders = {
        "onnx": _load_onnx,
        "torch": _load_torch,
        "fastembed": _load_fastembed,
        "sentence-transformers": _load_sentence_transformers,
    }
    embed, count_tokens = loaders[engine](plan)
    t_loaded = time.time()
    rss_load = status_mb("VmHWM")
    first = embed([texts["short"][0]])
    t_first, cpu_first = time.time(), time.process_time()
    rss_first = status_mb("VmHWM")

    for text in texts["short"][: plan["warmup"]]:
        embed([text])
    embed([texts["long"][0]])
    embed(texts["batch"][:32])

    short = [_timed(embed, [text]) for text in texts["short"]]  # (wall, cpu) per request
    long = [_timed(embed, [text]) for text in texts["long"]]
    batches = [texts["batch"][i : i + 32] for i in range(0, len(texts["batch"]), 32)]
    batched = [_timed(embed, batch) for batch in batches]
    sentences = sum(len(batch) for batch in batches)
    wall, cpu = 0, 1
    return {
        "interpreter_s": _T_CHILD - plan["spawned_at"],
        "import_s": t_imported - t_start,
        "load_s": t_loaded - t_imported,
        "first_request_s": t_first - t_loaded,
        "cold_start_s": t_first - plan["spawned_at"],
        "cold_start_cpu_s": cpu_first,
        "rss_after_import_mb": rss_import,
        "rss_after_load_mb": rss_load,
        "rss_after_first_mb": rss_first,
        "rss_peak_mb": status_mb("VmHWM"),
        "short_p50_ms": _percentile([t[wall] for t in short], 0.5) * 1e3,
        "short_p95_ms": _percentile([t[wall] for t in short], 0.95) * 1e3,
        "long_p50_ms": _percentile([t[wall] for t in long], 0.5) * 1e3,
        "long_p95_ms": _percentile([t[wall] for t in long], 0.95) * 1e3,
        "batch32_sentences_per_s": sentences / sum(t[wall] for t in batched),
        "short_p50_cpu_ms": _percentile([t[cpu] for t in short], 0.5) * 1e3,
        "long_p50_cpu_ms": _percentile([t[cpu] for t in long], 0.5) * 1e3,
        "batch32_cpu_sentences_per_s": sentences / sum(t[cpu] for t in batched),
        "requests": {"short": len(short), "long": len(long), "batches_of_32": len(batches)},
        # the first text's vector, so the parent can check that every engine computes the same thing
        "probe": [round(float(x), 6) for x in first[0]],
        "tokens_per_text": {
            name: sum(counts) / len(counts)
            for name, counts in (
                ("short", count_tokens(texts["short"])),
                ("long", count_tokens(texts["long"])),
                ("batch", count_tokens(texts["batch"])),
            )
        },
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as stream:
        plan = json.load(stream)
    plan["spawned_at"] = float(sys.argv[2])
    print(json.dumps(measure(plan)))


if __name__ == "__main__":
    main()
