"""The OGC API – Processes client backend against a real pygeoapi on loopback (its hello-world process)."""

from __future__ import annotations

import json
from pathlib import Path

import pystac
import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.run import run_campaign
from ogc_upscaler.store import JobStore

from ..conftest import write_config

pytestmark = pytest.mark.slow


def hello_config(folder: Path, url: str, **inputs) -> Path:
    return write_config(
        folder,
        aoi="11.95,47.85,12.05,47.95",
        time={"start": "2024-01-01", "end": "2024-03-01", "step": "P1M"},
        process={"inputs": inputs or {"name": "{tile.id}", "message": "{window.key}"}},
        backend={"type": "ogcapi", "url": url, "process": "hello-world", "parallel": 3},
        retries={"attempts": 2, "backoff": 0.2, "time_limit": "PT2M"},
    )


def test_a_campaign_of_executions_against_a_process_we_did_not_write(tmp_path, pygeoapi_server) -> None:
    campaign = load_campaign(hello_config(tmp_path, pygeoapi_server))
    result = run_campaign(campaign)
    with JobStore.read(campaign.store) as store:
        rows = list(store.rows())
    assert rows and all(r["state"] == "collected" for r in rows)
    assert all(r["remote_id"].startswith(pygeoapi_server + "/jobs/") for r in rows)
    collection = pystac.Collection.from_file(str(result.catalog))
    items = list(collection.get_items())
    assert len(items) == len(rows)
    for item in items:
        results = json.loads(Path(item.assets["results"].get_absolute_href()).read_text())
        tile, window = item.properties["ogc_upscaler:tile"], item.id.split("_")[1]
        assert results["value"] == f"Hello {tile}! {window}"


@pytest.mark.parametrize(
    ("overrides", "inputs", "message"),
    [
        ({"process": "no-such-process"}, {"name": "{tile.id}"}, "no process 'no-such-process'"),
        ({}, {"message": "{tile.id}"}, "missing name"),
        ({}, {"name": "{tile.epsg}"}, "name takes a string"),
        ({}, {"name": "{tile.id}", "colour": "red"}, "unknown colour"),
    ],
)
def test_inputs_are_checked_against_the_process_description_before_anything_is_submitted(
    tmp_path, pygeoapi_server, overrides, inputs, message
) -> None:
    path = hello_config(tmp_path, pygeoapi_server, **inputs)
    if overrides:
        config = path.read_text().replace("process: hello-world", f"process: {overrides['process']}")
        path.write_text(config)
    campaign = load_campaign(path)
    with pytest.raises(InvalidConfig, match=message):
        run_campaign(campaign)
    if campaign.store.exists():
        with JobStore.read(campaign.store) as store:
            assert all(r["state"] == "planned" and r["attempts"] == 0 for r in store.rows())
