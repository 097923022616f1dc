"""Counting on a Dask cluster gives exactly the statistics of counting in one process."""

import gzip
from pathlib import Path

import pytest

from langtrim.packager.counting.inputs import plan_shards
from langtrim.packager.counting.plan import CountProgress
from langtrim.runtime.errors import UsageError
from tests.support.counting import assert_same_counts, count_french

distributed = pytest.importorskip("distributed")

from langtrim.packager.counting.dask_cluster import DaskExecutor, dask_client, parse_scheduler  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """A client of a real two-worker LocalCluster (worker processes), reached by its address like a remote one."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            env={"RAYON_NUM_THREADS": "1"},
        ) as cluster,
        dask_client(cluster.scheduler_address) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        yield client


@pytest.fixture()
def corpus_dir(tmp_path: Path, sentences) -> Path:
    """Real French sentences as a plain file (many byte-range shards) and a .gz file (one shard)."""
    folder = tmp_path / "fr"
    folder.mkdir()
    lines = sentences("fr")
    (folder / "a.txt").write_text("\n".join(lines[:300]) + "\n", encoding="utf-8")
    (folder / "b.txt.gz").write_bytes(gzip.compress(("\n".join(lines[300:]) + "\n").encode("utf-8")))
    return folder


def assert_identical(actual, expected) -> None:
    assert_same_counts(actual, expected)
    assert actual.inputs == expected.inputs


def test_two_dask_workers_count_exactly_like_one_process(e5_tokenizer, corpus_dir, tmp_path, client):
    shards, _ = plan_shards([corpus_dir], shard_bytes=4000)
    assert len(shards) >= 5
    single = count_french(e5_tokenizer, corpus_dir, tmp_path / "one.npz", shard_bytes=4000)
    seen: list[CountProgress] = []
    on_dask = count_french(
        e5_tokenizer,
        corpus_dir,
        tmp_path / "dask.npz",
        executor=DaskExecutor(client),
        progress=seen.append,
        shard_bytes=4000,
    )
    assert_identical(on_dask, single)
    assert seen[-1].shards_done == seen[-1].shards_total == len(shards)
    assert seen[-1].bytes_done == seen[-1].bytes_total
    assert not (tmp_path / "dask.npz.partial").exists()


def test_a_dask_count_resumes_an_interrupted_single_process_count(e5_tokenizer, corpus_dir, tmp_path, client):
    class Interrupt(Exception):
        pass

    def stop_after_two_shards(report: CountProgress) -> None:
        if report.shards_done >= 2:
            raise Interrupt

    out = tmp_path / "fr.npz"
    with pytest.raises(Interrupt):
        count_french(e5_tokenizer, corpus_dir, out, progress=stop_after_two_shards, shard_bytes=4000)
    seen: list[CountProgress] = []
    resumed = count_french(
        e5_tokenizer, corpus_dir, out, executor=DaskExecutor(client), progress=seen.append, shard_bytes=4000
    )
    assert seen[0].shards_resumed == 2
    expected = count_french(e5_tokenizer, corpus_dir, tmp_path / "expected.npz", shard_bytes=4000)
    assert_identical(resumed, expected)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("local:3", (None, 3)),
        ("tcp://10.0.0.5:8786", ("tcp://10.0.0.5:8786", None)),
        (" tls://scheduler:8786 ", ("tls://scheduler:8786", None)),
    ],
)
def test_scheduler_values(value, parsed):
    assert parse_scheduler(value) == parsed


@pytest.mark.parametrize("value", ["local:0", "local:two", "local:-1"])
def test_a_bad_local_worker_count_names_the_form(value):
    with pytest.raises(UsageError, match=r"write local:N with N a positive number of workers"):
        parse_scheduler(value)


def test_an_unreachable_scheduler_names_how_to_start_one():
    with (
        pytest.raises(
            UsageError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'.*dask scheduler"
        ),
        dask_client("tcp://127.0.0.1:9", timeout=1),
    ):
        pass


def test_workers_are_checked_and_prepared_before_counting(e5_tokenizer, client):
    from langtrim.packager.counting.dask_cluster import prepare_workers

    assert prepare_workers(client, e5_tokenizer) == 2


def test_a_worker_with_other_versions_refuses_to_count(e5_tokenizer):
    from langtrim.packager.counting.dask_cluster import _worker_tokenizer
    from langtrim.packager.errors import SelectionError

    other = {"langtrim": "0.0.1", "tokenizers": "0.1.0"}
    with pytest.raises(
        SelectionError, match=r"a Dask worker runs .* install the same langtrim and tokenizers"
    ):
        _worker_tokenizer(e5_tokenizer.to_str(), "0" * 64, other)
