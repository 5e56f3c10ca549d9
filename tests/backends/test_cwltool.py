"""The cwltool backend with real cwltool runs of a test package that fails on purpose."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pystac
import pytest

from ogc_upscaler.backends.cwltool import CwltoolBackend
from ogc_upscaler.backends.runner import alive
from ogc_upscaler.config import load_campaign
from ogc_upscaler.cwl import load_package as load_cwl
from ogc_upscaler.errors import InvalidPackage
from ogc_upscaler.run import run_campaign
from ogc_upscaler.store import JobStore

from ..conftest import PACKAGES, demo_config, write_config

pytestmark = pytest.mark.slow


def flaky_config(
    folder: Path, *, fail_times=0, broken="none", seconds=0.0, package=PACKAGES / "flaky.cwl", **overrides
) -> Path:
    inputs = {
        "tile_id": "{tile.id}",
        "bbox": "{tile.bbox}",
        "epsg": "{tile.epsg}",
        "state_dir": str(folder / "state"),
        "fail_times": fail_times,
        "broken_tile": broken,
        "seconds": seconds,
    }
    settings = {
        "aoi": "11.95,47.85,12.05,47.95",
        "time": {"start": "2024-01-01", "end": "2024-02-01", "step": "P1M"},
        "process": {"application": str(package), "inputs": inputs},
        "backend": {"type": "cwltool", "parallel": 2},
        "retries": {"attempts": 3, "backoff": 0.2, "time_limit": "PT2M"},
    }
    settings.update(overrides)
    return write_config(folder, **settings)


#: The demo package's image, built by scripts/podman.sh (the ``podman`` fixture).
IMAGE = "localhost/ndvi-tile:0.1.0"


def flaky_in_image(folder: Path) -> Path:
    """The flaky test package with the demo package's image as its container (it has what flaky needs)."""
    folder.mkdir(parents=True, exist_ok=True)
    package = folder / "flaky.cwl"
    package.write_text((PACKAGES / "flaky.cwl").read_text().replace("localhost/flaky:0.1", IMAGE))
    return package


def containers_started_since(since: float) -> list[str]:
    """The ids of the podman containers started since ``since`` (seconds since the epoch), from podman's events."""
    moment = datetime.fromtimestamp(since, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    command = ["podman", "events", "--stream=false", "--since", moment, "--filter", "event=start"]
    events = subprocess.run([*command, "--format", "{{.ID}}"], capture_output=True, text=True, check=True, timeout=60)
    return events.stdout.split()


def running_containers() -> set[str]:
    listed = subprocess.run(["podman", "ps", "--quiet", "--no-trunc"], capture_output=True, text=True, check=True)
    return set(listed.stdout.split())


def assert_ran_in_image(log: Path) -> None:
    """The tile's cwltool log shows its tool started by podman in the package's image."""
    text = log.read_text()
    assert "podman \\\n    run" in text and f"{IMAGE} \\\n    ndvi-tile" in text, text[-2000:]


def rows_by_tile(campaign) -> dict[str, dict]:
    with JobStore.read(campaign.store) as store:
        return {r["tile_id"]: r for r in (j.columns() for j in store.jobs(with_tile=True))}


def test_a_tool_that_fails_twice_then_succeeds(tmp_path) -> None:
    campaign = load_campaign(flaky_config(tmp_path, fail_times=2))
    result = run_campaign(campaign)
    jobs = rows_by_tile(campaign)
    assert len(jobs) >= 2 and all(r["state"] == "collected" for r in jobs.values())
    for tile, row in jobs.items():
        assert row["attempts"] == 3
        assert (tmp_path / "state" / f"{tile}.count").read_text() == "3"
        folder = campaign.workdir / "jobs" / row["job_id"]
        assert sorted(p.name for p in folder.iterdir()) == ["attempt-1", "attempt-2", "attempt-3"]
        assert "transient failure" in (folder / "attempt-1" / "stderr.log").read_text()
    assert result.catalog.is_file()


def test_a_tile_that_always_fails_ends_failed_with_its_log_while_the_others_succeed(tmp_path) -> None:
    campaign = load_campaign(flaky_config(tmp_path))
    tiles = sorted(campaign.grid.tiles(campaign.aoi).ids)
    broken = tiles[0]
    campaign = load_campaign(flaky_config(tmp_path, broken=broken))
    run_campaign(campaign)
    jobs = rows_by_tile(campaign)
    assert jobs[broken]["state"] == "failed" and jobs[broken]["attempts"] == 3
    assert jobs[broken]["error_kind"] == "run:exhausted" and "temporary failure" in jobs[broken]["error"]
    assert "is broken" in Path(jobs[broken]["log_path"]).read_text()
    assert all(r["state"] == "collected" for t, r in jobs.items() if t != broken)


def test_a_job_over_its_time_limit_is_cancelled_and_its_process_stopped(tmp_path) -> None:
    path = flaky_config(tmp_path, seconds=60, retries={"attempts": 1, "time_limit": 3}, aoi="11.99,47.90,12.0,47.91")
    campaign = load_campaign(path)
    start = time.monotonic()
    run_campaign(campaign)
    assert time.monotonic() - start < 45
    for row in rows_by_tile(campaign).values():
        assert row["state"] == "failed" and "time limit" in row["error"]
        folder = campaign.workdir / "jobs" / row["job_id"] / "attempt-1"
        assert not alive(folder / "runner.pid")
        tools = subprocess.run(["pgrep", "-f", f"flaky.py {row['tile_id']}"], capture_output=True, text=True)
        assert tools.stdout.strip() == "", "the tool itself was stopped too"


@pytest.mark.usefixtures("podman")
def test_the_demo_runs_in_podman_containers_of_its_image(tmp_path, demo_archive, offline_stac_validator) -> None:
    backend = {"type": "cwltool", "parallel": 2, "container": "podman"}
    campaign = load_campaign(demo_config(tmp_path, demo_archive, backend=backend))
    since = time.time()
    run_campaign(campaign)
    jobs = rows_by_tile(campaign)
    assert len(jobs) == 13 and all(r["state"] == "collected" for r in jobs.values())
    for row in jobs.values():
        assert_ran_in_image(Path(row["log_path"]))
    started = containers_started_since(since)
    assert len(started) == 13 and not running_containers() & set(started), "one container per tile, none left"
    collection = pystac.Collection.from_file(str(campaign.output / "collection.json"))
    assert collection.validate() and all(item.validate() for item in collection.get_items())


@pytest.mark.usefixtures("podman")
def test_a_tile_over_its_time_limit_in_a_container_leaves_no_container_running(tmp_path) -> None:
    path = flaky_config(
        tmp_path,
        package=flaky_in_image(tmp_path / "package"),
        seconds=300,
        retries={"attempts": 1, "time_limit": 10},
        aoi="11.99,47.90,12.0,47.91",
        backend={"type": "cwltool", "parallel": 2, "container": "podman"},
    )
    campaign = load_campaign(path)
    since = time.time()
    run_campaign(campaign)
    jobs = rows_by_tile(campaign)
    assert jobs and all(r["state"] == "failed" and "time limit" in r["error"] for r in jobs.values())
    started = containers_started_since(since)
    assert len(started) == len(jobs), "each tile's tool ran in its container until the limit"
    assert not running_containers() & set(started), "the engine's containers were killed with the run"


def test_inputs_that_do_not_fit_the_package_are_reported_before_anything_runs(tmp_path) -> None:
    path = flaky_config(tmp_path)
    campaign = load_campaign(path)
    bad = write_config(
        tmp_path,
        **{
            **_settings_of(campaign, tmp_path),
            "process": {"application": str(PACKAGES / "flaky.cwl"), "inputs": {"tile_id": "{tile.id}"}},
        },
    )
    with pytest.raises(InvalidPackage, match="missing bbox"):
        run_campaign(load_campaign(bad))
    assert not (campaign.workdir / "jobs").exists()


def _settings_of(campaign, folder: Path) -> dict:
    return {
        "aoi": "11.95,47.85,12.05,47.95",
        "time": {"start": "2024-01-01", "end": "2024-02-01", "step": "P1M"},
    }


#: cwltool's log of a tool that failed with a declared temporary code, as written on a loaded machine: the memory
#: report and another job's lines come between the tool's own message and cwltool's report of its exit status.
INTERLEAVED_LOG = """\
INFO /venv/bin/cwltool 3.3.20260925135507
INFO [workflow ] start
INFO [step run] start
INFO [job run] /runs/j1/attempt-1/tmp/8a0krk0i$ python3 \\\\
    flaky.py \\\\
    B1 \\\\
    0.0
INFO [job other] /runs/j1/attempt-1/tmp/x1y2$ python3 \\\\
    other.py
flaky: tile B1 is broken (attempt 1)
INFO [job run] Max memory used: 71MiB
INFO [job other] completed success
WARNING [job run] exited with status: 75
ERROR [job run] Job error:
Error collecting output for parameter 'result': Did not find output file with glob pattern: ['B1'].
WARNING [job run] completed permanentFail
WARNING [step run] completed permanentFail
INFO [workflow ] completed permanentFail
WARNING Final process status is permanentFail
"""


def test_the_failure_reason_is_the_tools_own_message_however_cwltools_lines_interleave(tmp_path) -> None:
    from ogc_upscaler.backends.cwltool import _failure, _tool_message

    assert _tool_message(INTERLEAVED_LOG) == "flaky: tile B1 is broken (attempt 1)"
    (tmp_path / "stderr.log").write_text(INTERLEAVED_LOG)
    status = _failure(1, tmp_path, str(tmp_path / "stderr.log"), frozenset({75}))
    assert status.retryable and status.error == "temporary failure: flaky: tile B1 is broken (attempt 1)"
    quiet = INTERLEAVED_LOG.replace("flaky: tile B1 is broken (attempt 1)\n", "")
    assert _tool_message(quiet) is None, "the echoed command line and cwltool's lines are not the tool's message"
    succeeded_first = "WARNING [job a] exited with status: 0\n" + INTERLEAVED_LOG
    assert _tool_message(succeeded_first) == "flaky: tile B1 is broken (attempt 1)", "the failed job's message"


def test_a_runner_that_just_started_never_reads_as_lost(tmp_path) -> None:
    """runner.pid was written in two steps: a poll in between read an empty file and declared the job lost."""
    import sys

    from ogc_upscaler.backends.base import RemoteState
    from ogc_upscaler.backends.cwltool import RUNNER, CwltoolBackend
    from ogc_upscaler.cwl import load_package

    backend = CwltoolBackend(load_package(PACKAGES / "flaky.cwl", validate=False), tmp_path, slots=1)
    lost = 0
    for i in range(100):
        folder = tmp_path / f"run-{i}"
        folder.mkdir()
        runner = subprocess.Popen([sys.executable, RUNNER, str(folder), "--", "sleep", "0.02"])
        while not (folder / "exit_code").exists():
            lost += backend._status(folder).state is RemoteState.LOST
        runner.wait()
    assert lost == 0, f"{lost} polls of 100 fresh runners read them as lost"


def test_a_runner_stopped_as_it_starts_records_the_stop_and_leaves_nothing_running(tmp_path) -> None:
    import signal
    import sys

    from ogc_upscaler.backends.cwltool import RUNNER

    for i in range(20):
        folder = tmp_path / f"run-{i}"
        folder.mkdir()
        runner = subprocess.Popen([sys.executable, RUNNER, str(folder), "--", "sleep", "30"])
        while not (folder / "runner.pid").exists():
            pass
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=60) == 0
        assert (folder / "exit_code").read_text().strip() == "-15"
        leftover = subprocess.run(["pgrep", "-x", "sleep"], capture_output=True, text=True).stdout.split()
        assert not [p for p in leftover if _cwd(p) == folder], "the command outlived its runner"


def _cwd(pid: str) -> Path | None:
    try:
        return Path(f"/proc/{pid}/cwd").resolve(strict=True)
    except OSError:
        return None


def test_a_package_asking_more_than_this_machine_has_is_refused_before_any_job(tmp_path) -> None:
    package = tmp_path / "big.cwl"
    ndvi = Path(__file__).parents[2] / "app_packages" / "ndvi" / "ndvi.cwl"
    package.write_text(ndvi.read_text().replace("ramMin: 1024", "ramMin: 100000000"))
    with pytest.raises(InvalidPackage, match=r"tool ndvi-tile asks 1 cores and 1e\+08 MiB .* more than this machine"):
        CwltoolBackend(load_cwl(package), tmp_path / "work")
