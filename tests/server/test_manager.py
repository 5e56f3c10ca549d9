"""The job manager without HTTP (pygeoapi's API layer adds nothing here): workers that vanish are
started again or failed with a reason, a worker slow to start is never taken for a lost one, created
jobs start once, and dismissal stops everything a job started."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from pygeoapi.util import JobStatus, RequestedProcessExecutionMode

from ogc_upscaler.backends.runner import is_alive
from ogc_upscaler.server.manager import UpscalerManager

from ..conftest import PACKAGES
from .test_endpoint import processes_touching

pytestmark = pytest.mark.slow
ASYNC = RequestedProcessExecutionMode.respond_async
DEADLINE = 900.0  # seconds: generous, for a loaded machine; the tests wait on conditions, never on time


def make_manager(state: Path, max_restarts: int = 3) -> UpscalerManager:
    processor = {
        "name": "ogc_upscaler.server.processes.PackageProcessor",
        "id": "flaky",
        "package": str(PACKAGES / "flaky.cwl"),
        "state": str(state),
        "url": "http://127.0.0.1:9",
    }
    return UpscalerManager(
        {
            "name": "ogc_upscaler.server.manager.UpscalerManager",
            "connection": str(state / "jobs.sqlite"),
            "max_restarts": max_restarts,
            "processes": {"flaky": {"type": "process", "processor": processor}},
        }
    )


def flaky(seconds: float, tile: str = "T1") -> dict:
    return {"tile_id": tile, "bbox": "0,0,640,640", "epsg": 32632, "state_dir": "counts", "fail_times": 0,
            "broken_tile": "none", "seconds": seconds}  # fmt: skip


def worker_of(manager: UpscalerManager, job_id: str, timeout: float = DEADLINE) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = manager.jobs.get(job_id)
        if job and job.worker and is_alive(job.worker):
            return int(job.worker.split()[0])
        time.sleep(0.1)
    raise AssertionError("the worker never started")


def wait(manager: UpscalerManager, job_id: str, timeout: float = DEADLINE) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = manager.get_job(job_id)
        if job["status"] not in ("accepted", "running"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end")


def until_the_tool_runs(folder: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while not any("flaky.py" in c for c in processes_touching(folder)):
        assert time.monotonic() < deadline, "the tool never started"
        time.sleep(0.3)


def claims(folder: Path) -> int:
    """How many workers claimed the job (each notes it in the job's worker.log)."""
    return (folder / "worker.log").read_text().count("claimed by worker")


def test_a_synchronous_execution_runs_in_a_worker_and_returns_the_results(tmp_path) -> None:
    manager = make_manager(tmp_path)
    job_id, mimetype, results, status, headers = manager.execute_process("flaky", flaky(0))
    assert status == JobStatus.successful and mimetype == "application/json" and headers is None
    assert results["result"][0]["href"] == f"http://127.0.0.1:9/outputs/{job_id}/result/T1.tif"
    assert (tmp_path / "jobs" / job_id / "outputs" / "result" / "T1.tif").is_file()
    assert manager.get_job(job_id)["progress"] == 100


def test_a_job_whose_worker_was_killed_is_started_again_and_finishes(tmp_path) -> None:
    manager = make_manager(tmp_path)
    job_id, _, body, status, headers = manager.execute_process("flaky", flaky(4), execution_mode=ASYNC)
    assert status == JobStatus.accepted and body is None and headers == {"Preference-Applied": "respond-async"}
    pid = worker_of(manager, job_id)
    until_the_tool_runs(tmp_path / "jobs" / job_id)  # cwltool runs it in its own session
    os.kill(pid, signal.SIGKILL)
    job = wait(manager, job_id)
    assert job["status"] == "successful", job["message"]
    row = manager.jobs.get(job_id)
    assert row is not None and row.restarts == 1
    assert "attempt-2" not in {p.name for p in (row.folder / "run" / job_id).iterdir()}, "re-attached, not re-run"


def test_after_too_many_restarts_a_job_fails_with_a_reason(tmp_path) -> None:
    manager = make_manager(tmp_path, max_restarts=0)
    job_id, *_ = manager.execute_process("flaky", flaky(30), execution_mode=ASYNC)
    pid = worker_of(manager, job_id)
    folder = tmp_path / "jobs" / job_id
    until_the_tool_runs(folder)
    os.kill(pid, signal.SIGKILL)  # the worker only: cwltool and the tool go on in their own session
    job = wait(manager, job_id)
    assert job["status"] == "failed"
    assert "its worker stopped once without finishing" in job["message"] and "worker.log" in job["message"]
    assert processes_touching(folder) == [], "giving up stops what the job left running"


def test_a_job_dismissed_before_its_worker_starts_never_runs(tmp_path) -> None:
    manager = make_manager(tmp_path)
    job_id, *_ = manager.execute_process("flaky", flaky(30), execution_mode=ASYNC)
    assert manager.delete_job(job_id)
    folder = tmp_path / "jobs" / job_id
    deadline = time.monotonic() + DEADLINE
    while processes_touching(folder):  # the worker, stopped or still starting up, finds the job gone and exits
        assert time.monotonic() < deadline, f"still running: {processes_touching(folder)}"
        time.sleep(0.2)
    assert manager.jobs.get(job_id) is None
    assert not (folder / "run").exists(), "the package never ran"


def test_a_worker_slow_to_start_is_not_taken_for_a_lost_one(tmp_path) -> None:
    manager = make_manager(tmp_path)
    job_id, *_ = manager.execute_process("flaky", flaky(0), execution_mode=ASYNC)
    row = manager.jobs.get(job_id)
    assert row is not None and row.worker, "the launched worker is recorded at once"
    with sqlite3.connect(manager.jobs.path) as db:  # as if it were launched long ago, and still starting
        db.execute("UPDATE jobs SET launched = 0 WHERE identifier = ?", (job_id,))
    manager.get_job(job_id)  # reconciles
    assert wait(manager, job_id)["status"] == "successful"
    row = manager.jobs.get(job_id)
    assert row is not None and row.restarts == 0 and claims(row.folder) == 1


def test_a_created_job_started_from_many_threads_runs_once(tmp_path) -> None:
    manager = make_manager(tmp_path)
    job = manager.create_job("flaky", {"inputs": flaky(0)}, start=False)
    assert job.status == "created" and not job.folder.exists()
    manager.get_jobs()  # reconciling leaves created jobs alone
    assert manager.get_job(job.identifier)["status"] == "created"
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        manager.start_job(job.identifier)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wait(manager, job.identifier)["status"] == "successful"
    manager.start_job(job.identifier)
    assert manager.get_job(job.identifier)["status"] == "successful"
    log = (job.folder / "worker.log").read_text()
    assert claims(job.folder) == 1 and "not claimed" not in log, "one worker launched, and it ran the job"
