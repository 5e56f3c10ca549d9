"""The job store: transitions, terminal states, the writer lock, and crash safety under SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
import shapely

from ogc_upscaler import store as store_module
from ogc_upscaler.errors import StoreError, StoreLocked
from ogc_upscaler.store import ACTIVE, SOURCES, TERMINAL, JobSpec, JobStore, State, TileRecord

FOOTPRINT = shapely.to_wkb(shapely.box(11, 47, 11.1, 47.1))


def spec(i: int) -> JobSpec:
    window = ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
    return JobSpec(f"job-{i:06d}", f"tile-{i // 3}", *window, "default", "{}", f'{{"i": {i}}}', f"hash-{i}")


def fill(store: JobStore, n: int) -> None:
    tiles = (TileRecord(f"tile-{t}", 32632, (0.0, 0.0, 100.0, 100.0), FOOTPRINT, 1.0) for t in range((n + 2) // 3))
    store.put_tiles(tiles)
    store.insert(spec(i) for i in range(n))


@pytest.fixture
def store(tmp_path):
    with JobStore.open(tmp_path / "jobs.sqlite") as s:
        fill(s, 10)
        yield s


def test_the_happy_path_records_every_state_time_and_attempt(store) -> None:
    assert store.transition("job-000000", State.SUBMITTED, backend="local", remote_id="r-1")
    assert store.transition("job-000000", State.RUNNING, backend_status="running")
    assert store.transition("job-000000", State.SUCCEEDED, outputs={"cog": "a.tif"})
    assert store.transition("job-000000", State.COLLECTED)
    row = store.get("job-000000")
    assert row["state"] == "collected" and row["attempts"] == 1 and row["remote_id"] == "r-1"
    assert row["outputs"] == '{"cog": "a.tif"}'
    assert all(row[f"{s}_at"] for s in ("planned", "submitted", "running", "succeeded", "collected"))


def test_retry_goes_through_waiting_and_counts_attempts(store) -> None:
    store.transition("job-000001", State.SUBMITTED)
    assert store.transition(
        "job-000001", State.WAITING, error="HTTP 503", error_kind="retryable", retry_at="2030-01-01T00:00:00Z"
    )
    assert store.transition("job-000001", State.SUBMITTED)
    assert store.get("job-000001")["attempts"] == 2


@pytest.mark.parametrize("terminal", sorted(TERMINAL - {State.NO_INPUTS}))
def test_a_late_status_never_leaves_a_terminal_state(store, terminal) -> None:
    job = "job-000002"
    store.transition(job, State.SUBMITTED)
    store.transition(job, State.RUNNING)
    if terminal == State.COLLECTED:
        store.transition(job, State.SUCCEEDED)
    assert store.transition(job, terminal)
    for late in set(SOURCES) - {terminal}:
        assert not store.transition(job, late, backend_status="late")
    with pytest.raises(ValueError, match="planning only"):
        store.transition(job, State.PLANNED)
    assert store.get(job)["state"] == terminal and store.get(job)["backend_status"] is None


def test_a_status_of_an_earlier_attempt_is_ignored(store) -> None:
    job = "job-000003"
    store.transition(job, State.SUBMITTED)
    store.transition(job, State.WAITING)
    store.transition(job, State.SUBMITTED)
    assert not store.transition(job, State.SUCCEEDED, attempt=1)
    assert store.transition(job, State.SUCCEEDED, attempt=2)


def test_transitions_refuse_unknown_columns(store) -> None:
    with pytest.raises(ValueError, match="cannot set"):
        store.transition("job-000004", State.SUBMITTED, state="collected")


def test_counts_group_by_state_and_backend(store) -> None:
    store.transition("job-000005", State.SUBMITTED, backend="a")
    store.transition("job-000006", State.SUBMITTED, backend="b")
    assert sorted(store.counts(), key=str) == sorted(
        [("planned", None, 8), ("submitted", "a", 1), ("submitted", "b", 1)], key=str
    )


def test_a_second_writer_is_refused_while_readers_still_read(store) -> None:
    with pytest.raises(StoreLocked, match=f"pid {os.getpid()}") as err:
        JobStore.open(store.path)
    assert "read-only commands" in err.value.hint
    with JobStore.read(store.path) as reader:
        assert reader.count() == 10
        with pytest.raises(StoreError, match="read-only"):
            reader.transition("job-000000", State.SUBMITTED)


def test_a_writer_in_another_process_locks_the_store_until_it_dies(tmp_path) -> None:
    path = tmp_path / "jobs.sqlite"
    JobStore.open(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from ogc_upscaler.store import JobStore; s = JobStore.open({str(path)!r}); "
            "print('open', flush=True); import time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLocked, match=f"pid {holder.pid}"):
            JobStore.open(path)
    finally:
        holder.kill()
        holder.wait()
    JobStore.open(path).close()  # the kernel released the lock with the process


def test_a_sqlite_file_that_is_not_a_store_is_refused(tmp_path) -> None:
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(StoreError, match="not a job store"):
        JobStore.open(other)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all, just some bytes" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite"):
        JobStore.open(tmp_path / "junk.sqlite")


def test_reading_a_missing_store_says_to_plan_first(tmp_path) -> None:
    with pytest.raises(StoreError, match="no such store") as err:
        JobStore.read(tmp_path / "none.sqlite")
    assert "plan" in err.value.hint


def test_a_store_from_a_newer_version_is_refused(tmp_path) -> None:
    path = tmp_path / "jobs.sqlite"
    JobStore.open(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        JobStore.open(path)


WORKER = textwrap.dedent(
    """
    import sys
    from ogc_upscaler.store import JobStore, State
    path = sys.argv[1]
    steps = [State.SUBMITTED, State.RUNNING, State.SUCCEEDED, State.COLLECTED]
    with JobStore.open(path) as store:
        ids = [r["job_id"] for r in store.rows(("job_id",))]
        for job in ids:
            for to in steps:
                assert store.transition(job, to, backend="local", remote_id=job)
                print(job, to.value, flush=True)
    """
)
ORDER = ["planned", "submitted", "running", "succeeded", "collected"]


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 37, 400, 1501])
def test_a_writer_killed_mid_transitions_leaves_a_consistent_store(tmp_path, kill_after) -> None:
    path = tmp_path / "jobs.sqlite"
    with JobStore.open(path) as s:
        fill(s, 1000)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(path)], stdout=subprocess.PIPE, text=True)
    reported: dict[str, str] = {}
    for _ in range(kill_after):
        job, state = worker.stdout.readline().split()
        reported[job] = state
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    with JobStore.open(path) as s:  # the lock died with the worker
        assert s.check() == "ok"
        rows = {r["job_id"]: r for r in s.rows()}
    assert len(rows) == 1000
    for job, state in reported.items():
        assert ORDER.index(rows[job]["state"]) >= ORDER.index(state), job
    for row in rows.values():
        reached = ORDER[: ORDER.index(row["state"]) + 1]
        assert all(row[f"{s}_at"] for s in reached)
        assert all(row[f"{s}_at"] is None for s in ORDER[len(reached) :])
        assert row["attempts"] == (0 if row["state"] == "planned" else 1)
    # the worker ran on while we read its output, so compare with the store's own order:
    # collected jobs, then at most one job in flight, then untouched jobs
    states = [rows[j]["state"] for j in sorted(rows)]
    done = states.index("planned") if "planned" in states else len(states)
    in_flight = [s for s in states[:done] if s != "collected"]
    assert len(in_flight) <= 1 and (not in_flight or states[done - 1] == in_flight[0])
    assert set(states[done:]) <= {"planned"}
    assert all(r["state"] not in ACTIVE or r["remote_id"] for r in rows.values())


def test_a_version_1_store_is_migrated_in_place(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    v1 = (
        store_module._SCHEMA.replace(", no_inputs_at TEXT", "")
        .replace("CREATE INDEX jobs_queue ON jobs (state, seq);", "")
        .replace("user_version = 2", "user_version = 1")
    )
    db.executescript(v1)
    db.close()
    with JobStore.open(path) as s:
        fill(s, 3)
        assert s.get("job-000000")["no_inputs_at"] is None
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


def test_jobs_without_inputs_are_planned_terminal_and_never_move(tmp_path) -> None:
    with JobStore.open(tmp_path / "jobs.sqlite") as s:
        fill(s, 0)
        s.put_tiles([TileRecord("tile-x", 32632, (0.0, 0.0, 100.0, 100.0), FOOTPRINT, 1.0)])
        empty = JobSpec(
            "job-x",
            "tile-x",
            "2024-01-01T00:00:00Z",
            "2024-02-01T00:00:00Z",
            "default",
            "{}",
            "{}",
            "h",
            State.NO_INPUTS,
        )
        s.insert([empty])
        assert not any(s.transition("job-x", to) for to in SOURCES)
        assert s.get("job-x")["state"] == "no_inputs"
