"""The server tests' bundles and in-process clients: one app per module over each tiny bundle."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from langtrim.runtime import Encoder
from langtrim.runtime.server import create_app
from tests.support.server import LIMITS, packed_bundle, ready


@pytest.fixture(scope="session")
def embedding_bundle(tiny_models, sentences, tmp_path_factory) -> Path:
    return packed_bundle("xlmr", tiny_models, sentences, tmp_path_factory)


@pytest.fixture(scope="session")
def classifier_bundle(tiny_models, sentences, tmp_path_factory) -> Path:
    return packed_bundle("xlmr-classifier", tiny_models, sentences, tmp_path_factory)


@pytest.fixture(scope="module")
def client(embedding_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(embedding_bundle, threads=1, limits=LIMITS)) as started:
        yield ready(started)


@pytest.fixture(scope="module")
def classifier(classifier_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(classifier_bundle, threads=1, limits=LIMITS)) as started:
        yield ready(started)


@pytest.fixture(scope="module")
def encoder(embedding_bundle: Path) -> Encoder:
    return Encoder(embedding_bundle, threads=1)


@pytest.fixture(scope="module")
def texts(sentences) -> list[str]:
    return sentences("fr")[:6]
