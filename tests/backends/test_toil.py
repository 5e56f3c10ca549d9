"""The Toil backend: the demo campaign in batches through Toil (single_machine and a real SLURM), a failing
tile retried then failed with its log, a killed leader restarted on its job store, and the options our code
builds for SLURM and Kubernetes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pystac
import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.run import make_backend, run_campaign
from ogc_upscaler.store import JobStore

from ..conftest import demo_config

pytestmark = pytest.mark.slow


def toil_backend(batch_system: str, **toil) -> dict:
    return {"type": "toil", "parallel": 6, "toil": {"batch_system": batch_system, "batch_size": 3, **toil}}


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def check_collected(campaign) -> list[dict]:
    with JobStore.read(campaign.store) as store:
        rows = list(store.rows())
    assert len(rows) == 13 and all(r["state"] == "collected" for r in rows), [(r["state"], r["error"]) for r in rows]
    collection = pystac.Collection.from_file(str(campaign.output / "collection.json"))
    assert len(list(collection.get_items())) == 13
    return rows


def test_the_demo_runs_through_toil_in_batches(tmp_path, demo_archive) -> None:
    campaign = load_campaign(demo_config(tmp_path, demo_archive, backend=toil_backend("single_machine")))
    run_campaign(campaign)
    rows = check_collected(campaign)
    batches = sorted((campaign.backend.toil.shared / "batches").iterdir())
    assert 5 <= len(batches) <= 7, "13 tiles in batches of up to 3, not one leader per tile"
    for batch in batches:
        assert len(json.loads((batch / "batch.json").read_text())["tiles"]) <= 3
        wait_for(lambda b=batch: (b / "exit_code").exists(), 60)  # the last leader may still be tidying up
        assert (batch / "exit_code").read_text().strip() == "0"
    assert all(Path(r["log_path"]).is_file() for r in rows), "each tile's own log is reachable"
