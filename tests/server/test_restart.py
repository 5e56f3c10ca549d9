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


def progress(url: str, job_id: str) -> int:
    return requests.get(f"{url}/jobs/{job_id}", params={"f": "json"}, timeout=10).json()["progress"]


def test_the_endpoint_restarted_mid_campaign(tmp_path, demo_archive) -> None:
    state, port, roots = tmp_path / "state", free_port(), (demo_archive.parent,)
    with running_endpoint(state, roots, gunicorn=True, port=port) as url:
        reply = requests.post(
            f"{url}/processes/upscale/execution",
            json={"inputs": upscale_inputs(demo_archive)},
            headers={"Prefer": "respond-async", **JSON},
        )
        assert reply.status_code == 201
        job_id = reply.headers["Location"].rsplit("/", 1)[1]
        deadline = time.monotonic() + 120
        while progress(url, job_id) == 0:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    jobs = EndpointJobs(state / "jobs.sqlite")
    job = jobs.get(job_id)
    assert job is not None and is_alive(job.worker), "the worker outlives the server"
    time.sleep(2)
    with running_endpoint(state, roots, gunicorn=True, port=port) as url:
        status = requests.get(f"{url}/jobs/{job_id}", params={"f": "json"}, timeout=10).json()
        assert status["status"] == "running" and status["progress"] > 0
        os.kill(int(job.worker.split()[0]), signal.SIGKILL)  # the worker dies as in a crash
        status, _ = wait_for(url, job_id)
        assert status["status"] == "successful", status["message"]
        results = requests.get(f"{url}/jobs/{job_id}/results", params={"f": "json"}, timeout=10).json()
        assert results["jobs"] == {"collected": 13}
    job = jobs.get(job_id)
    assert job is not None and job.restarts == 1
    log = (job.folder / "work" / "logs").glob("run-*.log")
    assert len(list(log)) == 2, "the campaign ran twice: once, then resumed"
