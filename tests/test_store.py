"""The job store: named moves, terminal states, typed records, the writer lock, batches, crash safety under SIGKILL."""

from __future__ import annotations

import dataclasses
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
from ogc_upscaler.states import ACTIVE, TERMINAL, State
from ogc_upscaler.store import MOVES, JobOutputs, JobSpec, JobStore, Move, TileRecord

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
    assert store.move("job-000000", Move.SUBMIT, backend="local", remote_id="r-1")
    assert store.move("job-000000", Move.START, backend_status="running")
    assert store.move("job-000000", Move.SUCCEED, outputs=JobOutputs(catalog="out/catalog.json"))
    assert store.move("job-000000", Move.COLLECT, outputs=JobOutputs(item="items/a.json", cog="items/a.tif"))
    job = store.get("job-000000")
    assert job.state is State.COLLECTED and job.attempts == 1 and job.remote_id == "r-1"
    assert job.outputs == JobOutputs(item="items/a.json", cog="items/a.tif")
    assert all(job.at(s) for s in (State.PLANNED, State.SUBMITTED, State.RUNNING, State.SUCCEEDED, State.COLLECTED))
    assert job.tile is not None and job.tile.epsg == 32632 and job.inputs == {"i": 0}


def test_records_are_frozen() -> None:
    record = JobOutputs(item="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.item = "b"  # type: ignore[misc]


def test_retry_goes_through_waiting_and_counts_attempts(store) -> None:
    store.move("job-000001", Move.SUBMIT)
    assert store.move(
        "job-000001", Move.DEFER, error="HTTP 503", error_kind="retryable", retry_at="2030-01-01T00:00:00Z"
    )
    assert store.move("job-000001", Move.SUBMIT)
    assert store.get("job-000001").attempts == 2


@pytest.mark.parametrize("terminal", [Move.COLLECT, Move.FAIL, Move.CANCEL])
def test_a_late_status_never_leaves_a_terminal_state(store, terminal) -> None:
    job = "job-000002"
    store.move(job, Move.SUBMIT)
    store.move(job, Move.START)
    if terminal is Move.COLLECT:
        store.move(job, Move.SUCCEED)
    assert store.move(job, terminal)
    assert MOVES[terminal].target in TERMINAL
    for late in set(Move) - {terminal}:
        assert not store.move(job, late, backend_status="late"), late
    assert store.get(job).state is MOVES[terminal].target and store.get(job).backend_status is None


def test_every_move_has_its_sources_in_one_table() -> None:
    assert set(MOVES) == set(Move)
    assert all(MOVES[m].sources and not (MOVES[m].sources & TERMINAL) for m in Move)
    assert MOVES[Move.DOUBT].sources == {State.SUBMITTED} and MOVES[Move.DOUBT].target is State.IN_DOUBT


def test_a_status_of_an_earlier_attempt_is_ignored(store) -> None:
    job = "job-000003"
    store.move(job, Move.SUBMIT)
    store.move(job, Move.DEFER)
    store.move(job, Move.SUBMIT)
    assert not store.move(job, Move.SUCCEED, attempt=1)
    assert store.move(job, Move.SUCCEED, attempt=2)


def test_moves_refuse_unknown_columns(store) -> None:
    with pytest.raises(ValueError, match="cannot set"):
        store.move("job-000004", Move.SUBMIT, state="collected")


def test_counts_group_by_state_and_backend(store) -> None:
    store.move("job-000005", Move.SUBMIT, backend="a")
    store.move("job-000006", Move.SUBMIT, backend="b")
    assert sorted(store.counts(), key=str) == sorted(
        [("planned", None, 8), ("submitted", "a", 1), ("submitted", "b", 1)], key=str
    )


def test_jobs_in_doubt_are_sent_again_only_when_asked(store) -> None:
    store.move("job-000007", Move.SUBMIT, backend="ogcapi")
    assert store.move("job-000007", Move.DOUBT, error="in doubt: the answer was lost")
    with pytest.raises(ValueError, match="in doubt"):
        store.requeue({State.IN_DOUBT})
    assert store.requeue({State.FAILED}) == 0 and store.get("job-000007").state is State.IN_DOUBT
    assert store.resubmit_in_doubt() == 1
    job = store.get("job-000007")
    assert job.state is State.WAITING and job.attempts == 1 and job.error_kind == "doubt:resubmitted"
    assert store.due(10, "2100-01-01T00:00:00Z")[0].job_id == "job-000000"
    assert "job-000007" in [j.job_id for j in store.due(10, "2100-01-01T00:00:00Z")]


def test_every_remote_id_a_job_ever_held_is_known_to_the_store(store) -> None:
    store.move("job-000008", Move.SUBMIT, backend="ogcapi", remote_id="http://x/jobs/1")
    assert store.knows_remote("http://x/jobs/1") and not store.knows_remote("http://x/jobs/2")
    store.move("job-000008", Move.DEFER)
    store.move("job-000008", Move.SUBMIT, remote_id=None)
    store.note("job-000008", state=State.SUBMITTED, remote_id="http://x/jobs/3")
    assert store.get("job-000008").remote_id == "http://x/jobs/3"
    assert store.knows_remote("http://x/jobs/1"), "an earlier attempt's job is still ours"


def test_submissions_are_listed_in_the_order_they_were_made(store) -> None:
    for job in ("job-000009", "job-000002", "job-000005"):
        store.move(job, Move.SUBMIT, backend="ogcapi", remote_id=None if job == "job-000002" else f"r-{job}")
    store.move("job-000001", Move.SUBMIT, backend="other")
    listed = store.submitted_since("ogcapi", "2000-01-01T00:00:00Z")
    assert [j.job_id for j in listed] == ["job-000009", "job-000002", "job-000005"]
    assert [j.remote_id for j in listed] == ["r-job-000009", None, "r-job-000005"]


def test_a_second_writer_is_refused_while_readers_still_read(store) -> None:
    with pytest.raises(StoreLocked, match=f"pid {os.getpid()}") as err:
        JobStore.open(store.path)
    assert "read-only commands" in err.value.hint
    with JobStore.read(store.path) as reader:
        assert reader.count() == 10
        with pytest.raises(StoreError, match="read-only"):
            reader.move("job-000000", Move.SUBMIT)


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
    from ogc_upscaler.store import MOVES, JobStore, Move
    path = sys.argv[1]
    steps = [Move.SUBMIT, Move.START, Move.SUCCEED, Move.COLLECT]
    with JobStore.open(path) as store:
        ids = [job.job_id for job in store.jobs()]
        for job in ids:
            for move in steps:
                assert store.move(job, move, backend="local", remote_id=job)
                print(job, MOVES[move].target.value, flush=True)
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
        jobs = {j.job_id: j for j in s.jobs()}
    assert len(jobs) == 1000
    for job, state in reported.items():
        assert ORDER.index(jobs[job].state) >= ORDER.index(state), job
    for job in jobs.values():
        reached = ORDER[: ORDER.index(job.state) + 1]
        assert all(job.at(State(s)) for s in reached)
        assert all(job.at(State(s)) is None for s in ORDER[len(reached) :])
        assert job.attempts == (0 if job.state is State.PLANNED else 1)
    # the worker ran on while we read its output, so compare with the store's own order:
    # collected jobs, then at most one job in flight, then untouched jobs
    states = [jobs[j].state.value for j in sorted(jobs)]
    done = states.index("planned") if "planned" in states else len(states)
    in_flight = [s for s in states[:done] if s != "collected"]
    assert len(in_flight) <= 1 and (not in_flight or states[done - 1] == in_flight[0])
    assert set(states[done:]) <= {"planned"}
    assert all(j.state not in ACTIVE or j.remote_id for j in jobs.values())


def test_a_batch_commits_its_moves_as_one_transaction(store) -> None:
    ids = [f"job-{i:06d}" for i in range(4)]
    for job in ids:
        assert store.move(job, Move.SUBMIT, backend="local", remote_id=f"r-{job}")
    with JobStore.read(store.path) as reader:
        with store.batch():
            for job in ids:
                assert store.move(job, Move.START, backend_status="running")
            assert store.note(ids[0], state=State.RUNNING, log_path="logs/0.txt")
            assert {reader.get(job).state for job in ids} == {State.SUBMITTED}  # nothing shows before the end
        assert {reader.get(job).state for job in ids} == {State.RUNNING}
        assert reader.get(ids[0]).log_path == "logs/0.txt"


def test_a_batch_whose_body_raises_keeps_none_of_its_moves(store) -> None:
    assert store.move("job-000000", Move.SUBMIT, remote_id="r-0")
    with pytest.raises(RuntimeError, match="the pass broke"), store.batch():
        assert store.move("job-000000", Move.SUCCEED, outputs=JobOutputs(catalog="out/catalog.json"))
        assert store.move("job-000001", Move.CANCEL)
        store.set_meta("paused", True)
        raise RuntimeError("the pass broke")
    job = store.get("job-000000")
    assert job.state is State.SUBMITTED and job.outputs is None and job.at(State.SUCCEEDED) is None
    assert store.get("job-000001").state is State.PLANNED and store.get_meta("paused") is None
    assert store.move("job-000001", Move.CANCEL)  # the store goes on, a move committing on its own again
    assert store.get("job-000001").state is State.CANCELLED


def test_a_move_in_a_batch_that_does_not_apply_returns_false_and_spoils_no_other(store) -> None:
    for job in ("job-000000", "job-000002", "job-000003"):
        assert store.move(job, Move.SUBMIT)
    with store.batch():
        assert store.move("job-000000", Move.START)
        assert not store.move("job-000001", Move.START)  # never submitted
        assert not store.move("job-000002", Move.SUCCEED, attempt=7)  # a status of another attempt
        assert store.move("job-000002", Move.SUCCEED, attempt=1)
        assert store.move("job-000003", Move.CANCEL)
        assert not store.move("job-000003", Move.START, backend_status="late")  # cancelled a moment ago
    assert [store.get(f"job-{i:06d}").state for i in range(4)] == [
        State.RUNNING,
        State.PLANNED,
        State.SUCCEEDED,
        State.CANCELLED,
    ]
    assert store.get("job-000003").backend_status is None


def test_a_submission_cannot_wait_for_the_end_of_a_batch(store) -> None:
    with pytest.raises(StoreError, match="before the backend is asked"), store.batch():
        assert store.move("job-000003", Move.CANCEL)
        store.move("job-000004", Move.SUBMIT)
    assert store.get("job-000003").state is State.PLANNED and store.get("job-000004").state is State.PLANNED
    with pytest.raises(StoreError, match="a batch cannot begin inside a batch"), store.batch(), store.batch():
        pass
    with pytest.raises(StoreError, match="a plan cannot begin inside a batch"), store.batch():
        store.planning()


BATCH_WORKER = textwrap.dedent(
    """
    import sys
    from ogc_upscaler.store import JobStore, Move
    path, kill_at = sys.argv[1], sys.argv[2]
    with JobStore.open(path) as store:
        store._db.execute("PRAGMA cache_size = 1")  # half a batch spills into the log: on disk, not only in memory
        ids = [job.job_id for job in store.jobs()]
        with store.batch():
            for i, job in enumerate(ids):
                assert store.move(job, Move.START, backend_status="running", log_path=f"logs/{job}.txt")
                if kill_at == "inside" and i == len(ids) // 2:
                    print("inside", flush=True)
                    sys.stdin.read()  # killed here
        print("committed", flush=True)
        sys.stdin.read()
    """
)


@pytest.mark.parametrize(("kill_at", "state"), [("inside", State.SUBMITTED), ("committed", State.RUNNING)])
def test_a_writer_killed_in_the_middle_of_a_batch_leaves_all_of_it_or_none(tmp_path, kill_at, state) -> None:
    path = tmp_path / "jobs.sqlite"
    with JobStore.open(path) as s:
        fill(s, 600)
        for job in [j.job_id for j in s.jobs()]:
            assert s.move(job, Move.SUBMIT, backend="local", remote_id=f"r-{job}")
    worker = subprocess.Popen(
        [sys.executable, "-c", BATCH_WORKER, str(path), kill_at],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout.readline().strip() == kill_at
        if kill_at == "inside":
            assert path.with_name(path.name + "-wal").stat().st_size > 0  # uncommitted moves are in the log
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()

    with JobStore.open(path) as s:
        assert s.check() == "ok"
        jobs = list(s.jobs())
    assert len(jobs) == 600 and {job.state for job in jobs} == {state}  # all of the batch, or none of it
    assert all(job.attempts == 1 and job.remote_id == f"r-{job.job_id}" for job in jobs)
    assert all((job.at(State.RUNNING) is None) == (state is State.SUBMITTED) for job in jobs)


def test_a_version_1_store_is_migrated_in_place(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    v1 = (
        store_module._SCHEMA.replace(",\n    props     TEXT NOT NULL DEFAULT '{}'", "")
        .replace(", no_inputs_at TEXT", "")
        .replace(", in_doubt_at TEXT", "")
        .replace(",\n    rank           REAL NOT NULL DEFAULT 0,\n    notified_at    TEXT", "")
        .replace(store_module._SCHEMA.split("CREATE INDEX jobs_unnotified")[1].split(";")[0], "")
        .replace("CREATE INDEX jobs_unnotified;", "")
        .replace("CREATE INDEX jobs_queue ON jobs (state, rank, seq);", "")
        .replace("CREATE INDEX jobs_remote ON jobs (remote_id);", "")
        .replace(store_module._SCHEMA.split("CREATE TABLE remotes")[1].split(";")[0], "")
        .replace("CREATE TABLE remotes;", "")
        .replace(f"user_version = {store_module.SCHEMA_VERSION}", "user_version = 1")
    )
    db.executescript(v1)
    db.close()
    with JobStore.open(path) as s:
        fill(s, 3)
        s.move("job-000000", Move.SUBMIT, remote_id="r")
        assert s.move("job-000000", Move.DOUBT) and s.get("job-000000").at(State.IN_DOUBT)
        assert s.get("job-000000").tile.props == {}, "tiles planned before attributes existed have none"
        assert [j.job_id for j in s.due(5, "9999")] == ["job-000001", "job-000002"], "rank 0: in plan order"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION


def test_an_older_store_read_only_says_how_to_migrate_it(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    JobStore.open(path).close()
    sqlite3.connect(path).execute("PRAGMA user_version = 2").connection.commit()
    with pytest.raises(StoreError, match="schema version 2") as err:
        JobStore.read(path)
    assert "migrate" in err.value.hint


def test_a_symlinked_path_shares_the_lock_of_the_file_it_names(tmp_path) -> None:
    real = tmp_path / "real" / "jobs.sqlite"
    real.parent.mkdir()
    link = tmp_path / "link.sqlite"
    link.symlink_to(real)
    with JobStore.open(real), pytest.raises(StoreLocked, match=r"link\.sqlite"):
        JobStore.open(link)
    with JobStore.open(link) as via_link:
        with pytest.raises(StoreLocked):
            JobStore.open(real)
        assert via_link.count() == 0


def test_schema_creation_is_one_transaction(tmp_path) -> None:
    """A writer killed while it creates the schema leaves a file the next writer starts afresh in."""
    path = tmp_path / "jobs.sqlite"
    statements = store_module._SCHEMA.replace("COMMIT;", "")  # as if killed just before the commit
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(statements)
    db.close()  # closing without commit rolls the transaction back
    assert sqlite3.connect(path).execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    with JobStore.open(path) as s:
        fill(s, 2)
        assert s.count() == 2 and s.get_meta("created_at")


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
        assert not any(s.move("job-x", move) for move in Move)
        assert s.get("job-x").state is State.NO_INPUTS
