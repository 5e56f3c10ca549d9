"""The endpoint's job table: created jobs start once however many callers start them, a worker claims only
the job it was launched for, the list filters and pages, and a table written by an older endpoint is
upgraded in place."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from ogc_upscaler.server.jobs import EndpointJobs


def add(jobs: EndpointJobs, identifier: str, *, process: str = "flaky", status: str = "accepted") -> None:
    definition = {"process": process, "inputs": {"tile_id": identifier}}
    jobs.add(identifier, process, {"tile_id": identifier}, {"name": "X"}, Path("/j") / identifier,
             definition=definition, status=status)  # fmt: skip


def test_a_created_job_is_started_by_exactly_one_of_many_callers(tmp_path) -> None:
    jobs = EndpointJobs(tmp_path / "jobs.sqlite")
    add(jobs, "a", status="created")
    job = jobs.get("a")
    assert job is not None and job.status == "created" and not job.active and job.launched == 0
    assert job.definition == {"process": "flaky", "inputs": {"tile_id": "a"}}
    assert jobs.active() == [] and not jobs.claim("a", "1 1"), "nothing runs a created job"
    barrier, won = threading.Barrier(8), []

    def start() -> None:
        barrier.wait()
        won.append(jobs.start("a"))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 7 + [True]
    started = jobs.get("a")
    assert started is not None and started.status == "accepted" and started.launched > 0
    assert not jobs.start("a"), "a started job is not started again"


def test_only_the_worker_launched_for_a_job_claims_it(tmp_path) -> None:
    jobs = EndpointJobs(tmp_path / "jobs.sqlite")
    add(jobs, "a")
    assert jobs.launched("a", "100 5")
    assert not jobs.launched("a", "200 6"), "a recorded worker is not replaced"
    assert not jobs.claim("a", "300 7"), "a worker launched for an earlier try finds the job taken"
    assert jobs.claim("a", "100 5")
    assert not jobs.launched("a", "200 6")
    assert jobs.relaunch("a", "100 5") and jobs.claim("a", "400 8"), "after a relaunch, the next worker claims it"
    assert jobs.finish("a", "dismissed", "dismissed") and not jobs.claim("a", "400 8")


def test_the_list_filters_by_process_and_status_and_pages(tmp_path) -> None:
    jobs = EndpointJobs(tmp_path / "jobs.sqlite")
    for i in range(5):
        add(jobs, f"f{i}", status="created" if i % 2 else "accepted")
    add(jobs, "n0", process="ndvi")
    rows, total = jobs.list()
    assert total == 6 and rows[0].identifier == "n0", "newest first"
    assert {r.identifier for r in jobs.list(process_ids=["ndvi"])[0]} == {"n0"}
    assert {r.identifier for r in jobs.list(statuses=["created"])[0]} == {"f1", "f3"}
    assert jobs.list(process_ids=["flaky"], statuses=["created", "accepted"])[1] == 5
    page, total = jobs.list(2, 2, process_ids=["flaky"])
    assert total == 5 and len(page) == 2
    everything = [r.identifier for r in jobs.list(process_ids=["flaky"])[0]]
    assert [r.identifier for r in page] == everything[2:4]


def test_a_table_of_an_older_endpoint_gains_the_definition_column(tmp_path) -> None:
    path = tmp_path / "jobs.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE jobs (identifier TEXT PRIMARY KEY, process_id TEXT NOT NULL, status TEXT NOT NULL,"
            " message TEXT NOT NULL DEFAULT '', progress INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL,"
            " started TEXT, updated TEXT NOT NULL, finished TEXT, inputs TEXT NOT NULL, processor TEXT NOT NULL,"
            " folder TEXT NOT NULL, worker TEXT NOT NULL DEFAULT '', launched REAL NOT NULL DEFAULT 0,"
            " restarts INTEGER NOT NULL DEFAULT 0, mimetype TEXT, location TEXT)"
        )
        db.execute(
            "INSERT INTO jobs (identifier, process_id, status, created, updated, inputs, processor, folder)"
            " VALUES ('old', 'flaky', 'successful', 'c', 'u', '{}', '{}', '/j/old')"
        )
    jobs = EndpointJobs(path)
    old = jobs.get("old")
    assert old is not None and old.definition == {} and old.status == "successful"
    add(jobs, "new", status="created")
    assert jobs.list()[1] == 2
