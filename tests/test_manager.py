"""The manager's loop with an in-process backend: retries, failures, stop and resume, reconciliation."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ogc_upscaler.backends.base import BackPressure, JobRequest
from ogc_upscaler.backends.inprocess import InProcessBackend
from ogc_upscaler.campaign import Retries
from ogc_upscaler.manager import Manager
from ogc_upscaler.store import JobStore, State

from .test_store import fill

FAST = Retries(attempts=3, backoff_s=0.01, max_backoff_s=0.05, time_limit_s=60)


def recorded(row, outputs, output, campaign):
    """A collector that records what it was given instead of copying COGs."""
    return {"item": f"items/{row['job_id']}.json", "tile": row["tile_id"]}


def manager(store: JobStore, function, **kwargs) -> Manager:
    backend = InProcessBackend(function, slots=kwargs.pop("slots", 3))
    return Manager(store, backend, Path("unused"), "test", kwargs.pop("retries", FAST), collector=recorded, **kwargs)


@pytest.fixture
def store(tmp_path):
    with JobStore.open(tmp_path / "jobs.sqlite") as s:
        fill(s, 12)
        yield s


def states(store: JobStore) -> Counter[str]:
    return Counter(r["state"] for r in store.rows(("state",)))


def test_every_job_runs_once_and_is_collected_in_plan_order(store) -> None:
    seen: list[str] = []
    progress = manager(store, lambda job: seen.append(job.job_id)).run()
    assert seen == sorted(seen) and len(seen) == 12
    assert progress.counts["collected"] == 12 and states(store) == {"collected": 12}
    row = store.get("job-000000")
    assert row["attempts"] == 1 and row["outputs"] and row["collected_at"]


def test_a_job_that_fails_twice_then_succeeds_is_retried_with_back_off(store) -> None:
    calls: Counter[str] = Counter()

    def flaky(job: JobRequest) -> None:
        calls[job.job_id] += 1
        if job.job_id == "job-000004" and calls[job.job_id] <= 2:
            raise RuntimeError("the service is busy")

    manager(store, flaky).run()
    row = store.get("job-000004")
    assert row["state"] == "collected" and row["attempts"] == 3 and calls["job-000004"] == 3
    assert row["error"] == "the service is busy" and row["waiting_at"]
    assert states(store) == {"collected": 12}


def test_one_failing_job_never_stops_the_others(store) -> None:
    def broken(job: JobRequest) -> None:
        if job.job_id == "job-000007":
            raise RuntimeError("always broken")

    manager(store, broken).run()
    assert states(store) == {"collected": 11, "failed": 1}
    row = store.get("job-000007")
    assert row["attempts"] == 3 and row["error_kind"] == "run:exhausted" and "always broken" in row["error"]


def test_a_permanent_error_fails_at_once(store) -> None:
    def invalid(job: JobRequest) -> None:
        if job.job_id == "job-000002":
            raise ValueError("bad bbox")

    manager(store, invalid).run()
    row = store.get("job-000002")
    assert row["state"] == "failed" and row["attempts"] == 1 and row["error_kind"] == "run:permanent"


def test_stop_stops_and_the_next_run_resumes(store) -> None:
    stop = threading.Event()
    done: list[str] = []

    def slow(job: JobRequest) -> None:
        done.append(job.job_id)
        if len(done) == 5:
            stop.set()

    manager(store, slow).run(stop)
    first = states(store)
    assert first["collected"] >= 5 and first["planned"] > 0
    manager(store, slow).run()
    assert states(store) == {"collected": 12}
    assert len(done) == 12


def test_a_submission_that_never_reached_the_backend_is_submitted_again(store) -> None:
    # the manager died after writing `submitted` and before the backend was called
    assert store.transition("job-000000", State.SUBMITTED, backend="inprocess")
    calls: Counter[str] = Counter()
    manager(store, lambda job: calls.update([job.job_id])).run()
    row = store.get("job-000000")
    assert row["state"] == "collected" and calls["job-000000"] == 1 and row["attempts"] == 2
    assert states(store) == {"collected": 12}


def test_succeeded_jobs_left_uncollected_are_collected_on_resume(store) -> None:
    store.transition("job-000001", State.SUBMITTED, backend="inprocess", remote_id="r")
    store.transition("job-000001", State.SUCCEEDED, outputs={"catalog": None})
    calls: Counter[str] = Counter()
    manager(store, lambda job: calls.update([job.job_id])).run()
    assert store.get("job-000001")["state"] == "collected" and calls["job-000001"] == 0


def test_progress_counts_match_the_store(store) -> None:
    def broken(job: JobRequest) -> None:
        if job.job_id.endswith("3"):
            raise ValueError("no")

    progress = manager(store, broken).run()
    assert +progress.counts == states(store)
    assert progress.done == 12 and progress.finished_this_run == 12


def test_back_pressure_delays_submissions_without_costing_attempts(store) -> None:
    refusals: Counter[str] = Counter()

    def busy(job: JobRequest) -> None:
        if job.job_id == "job-000005" and refusals[job.job_id] < 2:
            refusals[job.job_id] += 1
            raise BackPressure("HTTP 429", retry_after=0.1)

    start = time.monotonic()
    manager(store, busy).run()
    row = store.get("job-000005")
    assert row["state"] == "collected" and row["attempts"] == 1 and refusals["job-000005"] == 2
    assert row["error_kind"] == "backpressure" and time.monotonic() - start >= 0.2
    assert states(store) == {"collected": 12}
