"""docker/constraints.txt pins the image's dependencies: every runtime and serve requirement of
pyproject.toml at one exact version its specifier allows, nothing of the packager's.

The pins must be the whole closure of `langtrim[serve]`, which only an install can show: docker/
ci_container_check.sh compares the image's distributions with this file. Refresh the pins with
`bash docker/refresh_constraints.sh`.
"""

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "docker" / "constraints.txt"
REFRESH = "run bash docker/refresh_constraints.sh"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, line in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line.strip())
        assert match, f"docker/constraints.txt line {number} is not NAME==VERSION: {line!r}"
        name = canonicalize_name(match[1])
        assert name not in pins, f"docker/constraints.txt pins {name} twice"
        pins[name] = Version(match[2])
    return pins


def _serve_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        Requirement(text) for text in [*project["dependencies"], *project["optional-dependencies"]["serve"]]
    ]


@pytest.mark.parametrize("requirement", _serve_requirements(), ids=str)
def test_each_runtime_and_serve_requirement_is_pinned_within_its_specifier(requirement: Requirement) -> None:
    pins = _pins()
    name = canonicalize_name(requirement.name)
    assert name in pins, (
        f"pyproject.toml requires {requirement} but docker/constraints.txt has no pin: {REFRESH}"
    )
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"docker/constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}: {REFRESH}"
    )


def test_no_build_time_package_is_pinned() -> None:
    """The image has no torch: a pin of one of the packager's heavy packages means the pins came from the
    wrong environment (the development one, say, instead of a fresh `langtrim[serve]`)."""
    build_time = {"torch", "transformers", "optimum", "optimum-onnx", "onnx", "langtrim"}
    assert sorted(build_time & set(_pins())) == []
