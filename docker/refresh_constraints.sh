#!/usr/bin/env bash
# Re-pin docker/constraints.txt: resolve `langtrim[serve]` afresh from PyPI in a throwaway virtual
# environment and write the exact version of every distribution it installed (langtrim itself excepted).
#
#   bash docker/refresh_constraints.sh [PYTHON]     # PYTHON: default python3; use the image's Python minor
#
# Run it from anywhere after changing a runtime or serve requirement in pyproject.toml (the fast test
# tests/test_constraints.py then fails until you do), or to take new releases; review the diff, then let
# docker/ci_container_check.sh build the image with the new pins. This machine's pip configuration (extra
# indexes, caps) is ignored, so the pins are what the image's pip resolves.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${1:-python3}
VENV=$(mktemp -d /tmp/langtrim-constraints.XXXXXX)
trap 'rm -rf "$VENV"' EXIT

"$PYTHON" -m venv "$VENV"
export PIP_CONFIG_FILE=/dev/null  # with --isolated: no configuration file and no PIP_* variable counts
"$VENV/bin/python" -m pip --isolated install --quiet --disable-pip-version-check "$ROOT[serve]"
{
    echo "# The exact versions of langtrim[serve]'s whole dependency closure that docker/Dockerfile installs"
    echo "# (pip install -c). Written by docker/refresh_constraints.sh with $("$VENV/bin/python" -c 'import platform; print("Python", platform.python_version(), "on", platform.machine())');"
    echo "# do not edit by hand: change pyproject.toml, then run it again."
    "$VENV/bin/python" -m pip --isolated freeze --exclude langtrim --exclude pip --exclude setuptools
} >"$ROOT/docker/constraints.txt"
echo "wrote $ROOT/docker/constraints.txt ($(grep -vc '^#' "$ROOT/docker/constraints.txt") pins)"
