"""Crashes and stops: SIGKILL of the manager mid-run, a background run stopped, cancel and retry."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.run import BackgroundRun
from ogc_upscaler.store import JobStore

from .backends.test_cwltool import flaky_config
from .conftest import wait_for

pytestmark = pytest.mark.slow
EXE = shutil.which("ogc-upscaler")
AOI = "11.9,47.8,12.1,47.95"  # tiles of utm-20km on both sides of the seam


def tiles(campaign) -> int:
    return len(campaign.grid.tiles(campaign.aoi))


def states(campaign) -> dict[str, int]:
    out: dict[str, int] = {}
    with JobStore.read(campaign.store) as store:
        for state, _, n in store.counts():
            out[state] = out.get(state, 0) + n
    return out


def test_a_manager_killed_mid_run_resumes_without_losing_or_repeating_a_job(tmp_path) -> None:
    config = flaky_config(tmp_path, seconds=3, aoi=AOI)
    campaign = load_campaign(config)
    first = subprocess.Popen([EXE, "run", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def some_done_some_running() -> bool:
        if not campaign.store.exists():
            return False
        counts = states(campaign)
        return counts.get("collected", 0) >= 1 and counts.get("running", 0) + counts.get("submitted", 0) >= 1

    wait_for(some_done_some_running)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    interrupted = states(campaign)
    assert interrupted.get("planned", 0) > 0

    second = subprocess.run([EXE, "run", str(config)], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    with JobStore.read(campaign.store) as store:
        jobs = list(store.jobs())
    assert len(jobs) == tiles(campaign) and all(j.state.value == "collected" for j in jobs)
    for job in jobs:
        assert job.attempts == 1, job.job_id
        assert (tmp_path / "state" / f"{job.tile_id}.count").read_text() == "1", "the tool ran exactly once"
        runs = list((campaign.workdir / "jobs" / job.job_id).iterdir())
        assert [p.name for p in runs] == ["attempt-1"]
        assert (runs[0] / "exit_code").read_text().strip() == "0"


def test_sigterm_stops_the_run_cleanly_and_run_resumes(tmp_path) -> None:
    config = flaky_config(tmp_path, seconds=2, aoi=AOI)
    campaign = load_campaign(config)
    run = subprocess.Popen([EXE, "run", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: campaign.store.exists() and states(campaign).get("running", 0) >= 1)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 75 and "stopped:" in out and "SIGTERM" in err, "stopped, resumable: not 0"
    again = subprocess.run([EXE, "run", str(config)], capture_output=True, text=True, timeout=300)
    assert f"done: {tiles(campaign)} collected" in again.stdout and again.returncode == 0


def test_a_background_run_stops_when_told_and_resumes(tmp_path) -> None:
    campaign = load_campaign(flaky_config(tmp_path, seconds=2, aoi=AOI))
    background = BackgroundRun(campaign).start()
    wait_for(lambda: background.progress is not None and background.progress.counts["collected"] >= 1)
    start = time.monotonic()
    result = background.stop(timeout=30)
    assert time.monotonic() - start < 10 and not background.running
    assert result is not None and result.stopped
    assert states(campaign).get("planned", 0) > 0
    finished = BackgroundRun(campaign).start().wait(timeout=300)
    assert finished is not None and finished.progress.counts["collected"] == tiles(campaign)


def test_cancel_stops_the_manager_and_the_running_tools(tmp_path) -> None:
    config = flaky_config(tmp_path, seconds=60, aoi=AOI)
    campaign = load_campaign(config)
    run = subprocess.Popen([EXE, "run", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: campaign.store.exists() and states(campaign).get("running", 0) >= 2)
    result = subprocess.run([EXE, "cancel", str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"stopped the running manager (pid {run.pid})" in result.stdout
    run.wait(timeout=30)
    assert states(campaign) == {"cancelled": tiles(campaign)}
    leftovers = subprocess.run(["pgrep", "-f", f"flaky.py .* {tmp_path}/state"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""


def test_retry_puts_failed_jobs_back_and_run_runs_them_again(tmp_path) -> None:
    config = flaky_config(
        tmp_path, aoi="11.99,47.90,12.0,47.91", broken="UTM20KM-32N-E720N5300", retries={"attempts": 1, "backoff": 0.1}
    )
    campaign = load_campaign(config)
    first = subprocess.run([EXE, "run", str(config)], capture_output=True, text=True, timeout=300)
    assert "1 failed" in first.stdout and "retry --failed" in first.stderr
    assert first.returncode == 3, "finished with failures: not 0"
    retried = subprocess.run([EXE, "retry", str(config), "--failed"], capture_output=True, text=True)
    assert retried.returncode == 0 and "1 jobs back to planned" in retried.stdout
    with JobStore.read(campaign.store) as store:
        job = next(store.jobs())
    assert job.state.value == "planned" and job.attempts == 0 and job.error is None
    subprocess.run([EXE, "run", str(config)], capture_output=True, text=True, timeout=300)
    assert (tmp_path / "state" / "UTM20KM-32N-E720N5300.count").read_text() == "2"
    with JobStore.read(campaign.store) as store:
        assert next(store.jobs()).attempts == 1


def test_a_campaign_run_from_a_relative_config_path(tmp_path) -> None:
    flaky_config(tmp_path, aoi="11.99,47.90,12.0,47.91")
    result = subprocess.run([EXE, "run", "campaign.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "done: 1 collected" in result.stdout


def test_cancel_never_signals_a_manager_on_another_host(tmp_path) -> None:
    """The lock records the writer's host: on a store shared by NFS a pid names a process elsewhere."""
    import sys

    from ogc_upscaler.cancel import stop_running_manager
    from ogc_upscaler.errors import StoreLocked

    path = tmp_path / "jobs.sqlite"
    JobStore.open(path).close()
    script = (
        f"from ogc_upscaler.store import JobStore; s = JobStore.open({str(path)!r}); "
        "import os; os.pwrite(s._lock_fd, b'pid 1 on compute-node-7 ', 0); print('open', flush=True); "
        "import time; time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLocked, match="pid 1 on compute-node-7, not on this host") as err:
            stop_running_manager(path, timeout=5)
        assert "compute-node-7" in err.value.hint and holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
