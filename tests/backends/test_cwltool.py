"""The cwltool backend with real cwltool runs of a test package that fails on purpose."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from ogc_upscaler.backends.runner import alive
from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidPackage
from ogc_upscaler.run import run_campaign
from ogc_upscaler.store import JobStore

from ..conftest import PACKAGES, write_config

pytestmark = pytest.mark.slow


def flaky_config(folder: Path, *, fail_times=0, broken="none", seconds=0.0, **overrides) -> Path:
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
        "process": {"application": str(PACKAGES / "flaky.cwl"), "inputs": inputs},
        "backend": {"type": "cwltool", "parallel": 2},
        "retries": {"attempts": 3, "backoff": 0.2, "time_limit": "PT2M"},
    }
    settings.update(overrides)
    return write_config(folder, **settings)


def rows(campaign) -> dict[str, dict]:
    with JobStore.read(campaign.store) as store:
        return {r["tile_id"]: r for r in store.rows()}


def test_a_tool_that_fails_twice_then_succeeds(tmp_path) -> None:
    campaign = load_campaign(flaky_config(tmp_path, fail_times=2))
    result = run_campaign(campaign)
    jobs = rows(campaign)
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
    jobs = rows(campaign)
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
    for row in rows(campaign).values():
        assert row["state"] == "failed" and "time limit" in row["error"]
        folder = campaign.workdir / "jobs" / row["job_id"] / "attempt-1"
        assert not alive(folder / "runner.pid")
        tools = subprocess.run(["pgrep", "-f", f"flaky.py {row['tile_id']}"], capture_output=True, text=True)
        assert tools.stdout.strip() == "", "the tool itself was stopped too"


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
