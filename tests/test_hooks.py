"""on_job_done / on_job_error, as notebook users bring them from openEO's job manager: called once per job as
it ends, never twice, also when the run is killed and resumed; a retried job that ends anew is told anew."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from ogc_upscaler.config import load_campaign
from ogc_upscaler.plan import plan
from ogc_upscaler.run import BackgroundRun, run_campaign
from ogc_upscaler.store import JobStore, State

from .backends.test_cwltool import flaky_config
from .conftest import wait_for

pytestmark = pytest.mark.slow
AOI = "11.9,47.8,12.1,47.95"  # tiles of utm-20km on both sides of the seam


def test_each_job_is_told_once_done_or_failed_and_a_retried_one_again(tmp_path) -> None:
    tiles = load_campaign(flaky_config(tmp_path, aoi=AOI)).grid.tiles(
        load_campaign(flaky_config(tmp_path, aoi=AOI)).aoi
    )
    broken = str(tiles.ids[0])
    retries = {"attempts": 1, "backoff": 0.2, "time_limit": "PT2M"}
    config = flaky_config(tmp_path, aoi=AOI, broken=broken, retries=retries)
    done, failed = [], []
    result = run_campaign(
        load_campaign(config), on_job_done=lambda j: done.append(j.job_id), on_job_error=lambda j: failed.append(j)
    )
    assert result.exit_code == 3
    assert sorted(done) == sorted(f"{t}_20240101-20240201" for t in tiles.ids[1:]) and len(set(done)) == len(done)
    assert [j.tile_id for j in failed] == [broken] and failed[0].state is State.FAILED and failed[0].error
    assert failed[0].tile is not None and failed[0].tile.footprint, "the job comes with its tile"

    run_campaign(load_campaign(config), on_job_done=done.append, on_job_error=failed.append)
    assert len(done) == len(tiles) - 1 and len(failed) == 1, "a second run tells nothing again"

    raw = yaml.safe_load(config.read_text())
    raw["process"]["inputs"]["broken_tile"] = "none"
    config.write_text(yaml.safe_dump(raw))
    campaign = load_campaign(config)
    with JobStore.open(campaign.store) as store:
        plan(campaign, store, replan=True)  # the failed job gets the mended inputs, and runs again
    again = []
    run_campaign(campaign, on_job_done=lambda j: again.append(j.job_id), on_job_error=failed.append)
    assert again == [f"{broken}_20240101-20240201"] and len(failed) == 1


def test_a_run_killed_and_resumed_tells_every_job_exactly_once(tmp_path) -> None:
    config = flaky_config(tmp_path, aoi=AOI, seconds=1.0)
    told = tmp_path / "told.txt"
    script = (
        "from ogc_upscaler.config import load_campaign; from ogc_upscaler.run import run_campaign; "
        f"log = open({str(told)!r}, 'a', buffering=1); "
        f"run_campaign(load_campaign({str(config)!r}), on_job_done=lambda j: log.write(j.job_id + '\\n'))"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(lambda: told.exists() and len(told.read_text().splitlines()) >= 1, timeout=300)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    campaign = load_campaign(config)
    with told.open("a", buffering=1) as log:
        finished = BackgroundRun(campaign, on_job_done=lambda j: log.write(j.job_id + "\n")).start().wait(300)
    assert finished is not None and finished.exit_code == 0
    counts = Counter(told.read_text().splitlines())
    jobs = len(campaign.grid.tiles(campaign.aoi))
    assert len(counts) == jobs and set(counts.values()) == {1}, json.dumps(counts)
