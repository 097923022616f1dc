"""benchmarks/runtime_profile.py's step profile builds an Encoder from its parts, one step at a time: it must
keep up with what `Encoder.__init__` sets (it once fell behind and failed at its first embedding)."""

import importlib.util
from pathlib import Path

from tests.support.bundles import tiny_bundle

ROOT = Path(__file__).resolve().parents[3]


def _runtime_profile():
    spec = importlib.util.spec_from_file_location(
        "runtime_profile", ROOT / "benchmarks" / "runtime_profile.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_profile_loads_a_bundle_step_by_step_and_embeds(tmp_path_factory) -> None:
    bundle = tiny_bundle(tmp_path_factory, "bert").path
    rows = _runtime_profile().step_profile(bundle, rounds=1)
    steps = [row["step"] for row in rows]
    assert steps[-2:] == ["first embedding", "total: cold start"]
    assert all(row["peak_rss_mb"] >= row["rss_mb"] > 0 for row in rows)
    assert rows[-1]["wall_ms"] >= sum(row["wall_ms"] for row in rows[1:-1])
