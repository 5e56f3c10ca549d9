"""The endpoint restarted mid-campaign, served the production way (gunicorn): its upscale job goes on
while the server is down, and when the worker itself is killed the campaign resumes where it was."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from ogc_upscaler.backends.runner import is_alive
from ogc_upscaler.server.jobs import EndpointJobs

from ..conftest import free_port, running_endpoint
from .test_endpoint import JSON, upscale_inputs, wait_for

pytestmark = pytest.mark.slow
JOB_MANAGEMENT = "http://www.opengis.net/spec/ogcapi-processes-4/1.0/conf/job-management"
DEADLINE = 900.0  # seconds: generous, for a loaded machine; the test waits on conditions, never on time


def progress(url: str, job_id: str) -> int:
    return requests.get(f"{url}/jobs/{job_id}", params={"f": "json"}, timeout=60).json()["progress"]


def until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_the_endpoint_restarted_mid_campaign(tmp_path, demo_archive) -> None:
    state, port, roots = tmp_path / "state", free_port(), (demo_archive.parent,)
    with running_endpoint(state, roots, gunicorn=True, port=port, parallel=1) as url:
        classes = requests.get(f"{url}/conformance", params={"f": "json"}, timeout=60).json()["conformsTo"]
        assert JOB_MANAGEMENT in classes, "gunicorn serves the same app, with Part 4"
        reply = requests.post(
            f"{url}/processes/upscale/execution",
            json={"inputs": upscale_inputs(demo_archive)},
            headers={"Prefer": "respond-async", **JSON},
        )
        assert reply.status_code == 201
        job_id = reply.headers["Location"].rsplit("/", 1)[1]
        until(lambda: progress(url, job_id) > 0, "no tile job finished")
    jobs = EndpointJobs(state / "jobs.sqlite")
    job = jobs.get(job_id)
    assert job is not None and job.status == "running" and is_alive(job.worker), "the worker outlives the server"
    until(lambda: (jobs.get(job_id) or job).progress > job.progress, "the campaign did not go on without the server")
    pid = int(job.worker.split()[0])
    os.kill(pid, signal.SIGSTOP)  # frozen: the campaign cannot finish while the next server starts
    try:
        assert (jobs.get(job_id) or job).status == "running"
        with running_endpoint(state, roots, gunicorn=True, port=port, parallel=1) as url:
            status = requests.get(f"{url}/jobs/{job_id}", params={"f": "json"}, timeout=60).json()
            assert status["status"] == "running" and status["progress"] > 0
            os.kill(pid, signal.SIGKILL)  # the worker dies as in a crash
            status, _ = wait_for(url, job_id)
            assert status["status"] == "successful", status["message"]
            results = requests.get(f"{url}/jobs/{job_id}/results", params={"f": "json"}, timeout=60).json()
            assert results["jobs"] == {"collected": 13}
    finally:
        if is_alive(job.worker):
            os.kill(pid, signal.SIGKILL)
    job = jobs.get(job_id)
    assert job is not None and job.restarts == 1
    log = (job.folder / "work" / "logs").glob("run-*.log")
    assert len(list(log)) == 2, "the campaign ran twice: once, then resumed"
