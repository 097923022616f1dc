"""`langtrim trim` as a library call: select tokens, cut the model, rebuild the tokenizer, write a directory."""

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from langtrim.packager.counting.inputs import CorpusSpec
from langtrim.packager.counting.job import corpus_statistics
from langtrim.packager.counting.plan import CountSettings
from langtrim.packager.errors import UnsupportedModelError
from langtrim.packager.models.families import PROVENANCE_FILE, usage_of
from langtrim.packager.models.sources import ModelSource, load_model, load_tokenizer, read_config
from langtrim.packager.models.tokenizer import tokenizer_model_type, unpadded
from langtrim.packager.models.weights import WeightsSummary, projected_after_trim, summarize_weights
from langtrim.packager.outputs import atomic_output_dir, check_output_dir
from langtrim.packager.selection.choose import SelectionSettings, check_corpus_languages, choose_tokens
from langtrim.packager.selection.languages import Language
from langtrim.packager.selection.threshold import Selection
from langtrim.packager.shipped_text import shipped_sentences
from langtrim.packager.trim.coverage import Coverage, measure_coverage
from langtrim.packager.trim.tokenizer_remap import IdMap, remap_tokenizer
from langtrim.runtime import __version__
from langtrim.runtime.bundle import ID_MAP_FILE

log = logging.getLogger(__name__)
REPORT_FILE = "langtrim_trim.json"
# Files of a model directory that do not depend on token ids and stay valid after a trim.
_COPIED_AS_IS = (
    "special_tokens_map.json",
    PROVENANCE_FILE,
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SizeFigures:
    parameters: int
    megabytes: float  # of the safetensors weights
    embedding_share: float  # share of parameters indexed by the vocabulary


@dataclass(frozen=True)
class TrimReport:
    model: str
    model_description: str
    tokenizer_type: str
    languages: list[str]
    sources: dict[str, str]
    selection_settings: dict
    tokens_total: int
    tokens_kept: int
    tokens_per_language: dict[str, int]
    special_tokens: int
    fallback_tokens: int
    before: SizeFigures
    after: SizeFigures
    after_is_projected: bool  # True for --dry-run: figures from the selection, nothing written
    coverage: list[Coverage]
    output: str | None
    langtrim_version: str = __version__

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrimReport":
        """A report read back from a trimmed directory's trim_report.json (`pack` of a `trim` output); the
        coverage is not kept: it belongs to the trim run."""
        sizes = {key: SizeFigures(**data[key]) for key in ("before", "after")}
        return cls(**{**data, **sizes, "coverage": []})


def _figures(
    summary: WeightsSummary, parameters: int | None = None, file_bytes: int | None = None
) -> SizeFigures:
    parameters = summary.parameters if parameters is None else parameters
    file_bytes = summary.file_bytes if file_bytes is None else file_bytes
    vocab_share = summary.vocab_parameters / summary.parameters if summary.parameters else 0.0
    return SizeFigures(parameters, round(file_bytes / 1e6, 1), round(vocab_share, 4))


def _model_vocab_rows(config: dict, tokenizer: Tokenizer) -> int:
    rows = int(config.get("vocab_size") or 0)
    pieces = tokenizer.get_vocab_size(with_added_tokens=True)
    if rows < pieces:
        raise UnsupportedModelError(
            f"the tokenizer has {pieces} tokens but the model only {rows} embedding rows: they do not belong together"
        )
    return rows


def _write_tokenizer_files(out: Path, source: ModelSource, trimmed: Tokenizer, id_map: IdMap) -> None:
    trimmed.save(str(out / "tokenizer.json"))
    (out / ID_MAP_FILE).write_text(id_map.to_json(), encoding="utf-8")
    config_path = source.path / "tokenizer_config.json"
    if config_path.is_file():
        tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
        added = tokenizer_config.get("added_tokens_decoder")
        if isinstance(added, dict):  # keyed by token id: remap, dropping tokens that were cut
            kept = id_map.is_kept([int(key) for key in added])
            new = id_map.to_new([int(key) for key in added])
            tokenizer_config["added_tokens_decoder"] = {
                str(int(n)): value for n, k, value in zip(new, kept, added.values(), strict=True) if k
            }
        (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2, ensure_ascii=False))
    if tokenizer_model_type(trimmed) == "WordPiece":  # keep vocab.txt consistent for slow tokenizers
        vocab = sorted(trimmed.get_vocab(with_added_tokens=True).items(), key=lambda item: item[1])
        (out / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
    for name in _COPIED_AS_IS:
        path = source.path / name
        if path.is_dir():
            shutil.copytree(path, out / name)
        elif path.is_file():
            shutil.copy2(path, out / name)


def run_trim(
    source: ModelSource,
    languages: Sequence[Language],
    *,
    out: Path | None,
    corpora: Sequence[CorpusSpec] = (),
    settings: SelectionSettings = SelectionSettings(),
    dry_run: bool = False,
    force: bool = False,
    allow_pickle: bool = False,
    progress: Progress = lambda step: None,
) -> TrimReport:
    """Select, trim and write `out` (or, with `dry_run`, only plan and write nothing)."""
    if not dry_run:
        if out is None:
            raise ValueError("out is required unless dry_run")
        check_output_dir(out, force=force)  # fail before the slow steps
    config = read_config(source)
    tokenizer = load_tokenizer(source)
    vocab_rows = _model_vocab_rows(config, tokenizer)
    if not settings.keep_texts:  # the model's own prompt prefixes, so a trim never makes them unknown tokens
        keep_texts = usage_of(source.path, is_default=source.is_default).keep_texts
        settings = SelectionSettings(**{**asdict(settings), "keep_texts": keep_texts})

    check_corpus_languages(languages, [corpus.language for corpus in corpora])
    if corpora:
        progress("counting the corpora")
    statistics = {
        corpus.language: corpus_statistics(
            tokenizer, corpus, settings=CountSettings(min_line_chars=settings.min_line_chars)
        )
        for corpus in corpora
    }
    progress("selecting tokens")
    selection: Selection = choose_tokens(tokenizer, languages, statistics, settings)
    trimmed_tokenizer, id_map = remap_tokenizer(tokenizer, selection.kept_ids)

    progress("measuring coverage on real text")
    plain = unpadded(tokenizer), unpadded(trimmed_tokenizer)  # one copy each, not one per language
    coverage = [
        measure_coverage(language.code, sentences, *plain, id_map)
        for language in languages
        if (sentences := shipped_sentences(language.code))
    ]
    before = summarize_weights(source.path, vocab_rows)
    report_fields = dict(
        model=source.name,
        model_description=source.description,
        tokenizer_type=tokenizer_model_type(tokenizer),
        languages=[language.code for language in languages],
        sources=selection.sources,
        selection_settings=asdict(settings),
        tokens_total=vocab_rows,
        tokens_kept=len(selection.kept_ids),
        tokens_per_language=selection.per_language,
        special_tokens=selection.n_special,
        fallback_tokens=selection.n_fallback,
        before=_figures(before),
        coverage=coverage,
    )
    if dry_run or out is None:
        parameters, file_bytes = projected_after_trim(before, len(selection.kept_ids))
        projected = SizeFigures(parameters, round(file_bytes / 1e6, 1), 0.0)
        share = (
            (before.vocab_parameters * len(selection.kept_ids) / vocab_rows) / parameters if parameters else 0
        )
        projected = SizeFigures(projected.parameters, projected.megabytes, round(share, 4))
        return TrimReport(**report_fields, after=projected, after_is_projected=True, output=None)

    progress("loading the model")
    model = load_model(source, allow_pickle=allow_pickle)
    progress("trimming the embeddings")
    from langtrim.packager.trim.surgery import trim_model

    trim_model(model, id_map)
    progress("writing the trimmed model")
    with atomic_output_dir(out, force=force) as staging:
        model.save_pretrained(str(staging), safe_serialization=True)
        _write_tokenizer_files(staging, source, trimmed_tokenizer, id_map)
        after = summarize_weights(staging, len(selection.kept_ids))
        report = TrimReport(**report_fields, after=_figures(after), after_is_projected=False, output=str(out))
        (staging / REPORT_FILE).write_text(report.to_json(), encoding="utf-8")
    return report
