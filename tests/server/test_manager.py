"""The job manager without HTTP (pygeoapi's API layer adds nothing here): workers that vanish are
started again or failed with a reason, and dismissal stops everything a job started."""

from __future__ import annotations

import os
import signal
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


def worker_of(manager: UpscalerManager, job_id: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = manager.jobs.get(job_id)
        if job and job.worker and is_alive(job.worker):
            return int(job.worker.split()[0])
        time.sleep(0.1)
    raise AssertionError("the worker never started")


def wait(manager: UpscalerManager, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = manager.get_job(job_id)
        if job["status"] not in ("accepted", "running"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end")


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
    time.sleep(1.5)  # cwltool is running the tool by now, in its own session
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
    deadline = time.monotonic() + 60
    while not any("flaky.py" in c for c in processes_touching(folder)):
        assert time.monotonic() < deadline, "the tool never started"
        time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)  # the worker only: cwltool and the tool go on in their own session
    job = wait(manager, job_id, timeout=10)
    assert job["status"] == "failed"
    assert "its worker stopped once without finishing" in job["message"] and "worker.log" in job["message"]
    assert processes_touching(folder) == [], "giving up stops what the job left running"


def test_a_job_dismissed_before_its_worker_starts_never_runs(tmp_path) -> None:
    manager = make_manager(tmp_path)
    job_id, *_ = manager.execute_process("flaky", flaky(30), execution_mode=ASYNC)
    assert manager.delete_job(job_id)
    time.sleep(3)  # the worker, if it got that far, finds the job gone
    assert processes_touching(tmp_path / "jobs" / job_id) == []
    assert manager.jobs.get(job_id) is None
    assert not (tmp_path / "jobs" / job_id / "run").exists()
