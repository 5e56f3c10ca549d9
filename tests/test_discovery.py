"""Input discovery: STAC search per tile and window, in a static catalog and a real STAC API."""

from __future__ import annotations

import json

import pytest
import shapely

from ogc_upscaler.config import load_campaign
from ogc_upscaler.discovery import StacApi, StaticCatalog
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.plan import plan
from ogc_upscaler.store import JobStore
from ogc_upscaler.windows import windows_from_range

from .conftest import write_config

WINDOWS = windows_from_range("2024-04-01", "2024-07-01", "P1M")
SEAM = shapely.box(11.95, 47.9, 12.05, 47.95)  # both zones' scenes
EAST = shapely.box(12.5, 47.9, 12.6, 47.95)  # only zone 33's scenes


def ids(hrefs: list[str]) -> list[str]:
    return sorted(h.rstrip("/").split("/")[-1].removesuffix(".json") for h in hrefs)


@pytest.mark.parametrize("kind", ["static", "api"])
def test_search_by_footprint_and_window(kind, demo_archive, stac_api) -> None:
    source = StaticCatalog(str(demo_archive)) if kind == "static" else StacApi(stac_api, ["demo-s2-l2a"])
    seam = source.items(SEAM, WINDOWS)
    assert [ids(w) for w in seam] == [
        ["DEMO_S2_32N_20240415", "DEMO_S2_33N_20240415"],
        ["DEMO_S2_32N_20240515", "DEMO_S2_33N_20240515"],
        ["DEMO_S2_32N_20240615", "DEMO_S2_33N_20240615"],
    ]
    assert [ids(w) for w in source.items(EAST, WINDOWS)] == [[f"DEMO_S2_33N_2024{m}15"] for m in ("04", "05", "06")]
    assert source.items(shapely.box(0, 0, 1, 1), WINDOWS) == [[], [], []]
    later = windows_from_range("2025-01-01", "2025-02-01", "P1M")
    assert source.items(SEAM, later) == [[]]


def test_plan_records_items_and_jobs_without_inputs(tmp_path, demo_archive) -> None:
    path = write_config(
        tmp_path,
        aoi="11.9,47.8,12.1,48.0",
        time={"start": "2024-05-01", "end": "2024-09-01", "step": "P1M"},
        inputs={"stac": str(demo_archive), "collections": ["demo-s2-l2a"]},
        process={"inputs": {"items": "{inputs.stac_items}", "tile": "{tile.id}"}},
    )
    campaign = load_campaign(path)
    with JobStore.open(campaign.store) as store:
        report = plan(campaign, store)
        rows = [job.columns() for job in store.jobs()]
    assert report.no_inputs == report.tiles * 2  # July and August have no scenes
    assert "no input items" in report.summary()
    may = [r for r in rows if r["window_start"].startswith("2024-05")]
    assert all(r["state"] == "planned" and json.loads(r["inputs"])["items"] for r in may)
    august = [r for r in rows if r["window_start"].startswith("2024-08")]
    assert all(r["state"] == "no_inputs" and json.loads(r["inputs"])["items"] == [] for r in august)


def test_stac_items_template_without_an_inputs_section_is_explained(tmp_path) -> None:
    path = write_config(tmp_path, process={"inputs": {"items": "{inputs.stac_items}"}})
    campaign = load_campaign(path)
    with JobStore.open(campaign.store) as store, pytest.raises(InvalidConfig, match="no `inputs:` section"):
        plan(campaign, store)


def test_an_unreadable_catalog_is_a_config_error(tmp_path) -> None:
    with pytest.raises(InvalidConfig, match="cannot read the STAC catalog"):
        StaticCatalog(str(tmp_path / "none.json"))
