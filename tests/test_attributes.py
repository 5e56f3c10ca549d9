"""Tile attributes prepared up front: the AOI features' and the grid file's properties reach each tile's
templates and the exports as {tile.props.NAME}, and a numeric attribute orders the plan (priority)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
import yaml

from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.export import export
from ogc_upscaler.plan import plan
from ogc_upscaler.store import JobStore

from .conftest import write_config

#: Two neighbours sharing the 11.0°E meridian as their border, the eastern one with an island.
WEST = [[[10.0, 45.0], [11.0, 45.0], [11.0, 46.0], [10.0, 46.0], [10.0, 45.0]]]
EAST = [
    [[[11.0, 45.0], [12.0, 45.0], [12.0, 46.0], [11.0, 46.0], [11.0, 45.0]]],
    [[[12.5, 45.0], [12.7, 45.0], [12.7, 45.2], [12.5, 45.0]]],
]


def _countries(folder: Path) -> Path:
    features = [
        {"type": "Feature", "properties": {"iso_a3": "AAA", "model": "alpine", "rank": 1},
         "geometry": {"type": "Polygon", "coordinates": WEST}},
        {"type": "Feature", "properties": {"iso_a3": "BBB", "model": "coastal", "rank": 5},
         "geometry": {"type": "MultiPolygon", "coordinates": EAST}},
    ]  # fmt: skip
    path = folder / "countries.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _config(tmp_path: Path, **overrides) -> Path:
    _countries(tmp_path)
    inputs = {"country": "{tile.props.iso_a3}", "model": "{tile.props.model}", "bbox": "{tile.bbox}"}
    defaults = {
        "aoi": "countries.geojson",
        "grid": "laea-20km",
        "process": {"application": "app.cwl", "inputs": inputs},
    }
    time = {"start": "2024-01-01", "end": "2024-02-01", "step": "P1M"}
    return write_config(tmp_path, time=time, **{**defaults, **overrides})


def test_each_tile_gets_the_attributes_of_the_country_holding_most_of_it(tmp_path) -> None:
    campaign = load_campaign(_config(tmp_path))
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        jobs = list(store.jobs(with_tile=True))
    assert {j.inputs["country"] for j in jobs} == {"AAA", "BBB"}
    west, east = (
        shapely.geometry.shape({"type": "Polygon", "coordinates": WEST}),
        shapely.geometry.shape({"type": "MultiPolygon", "coordinates": EAST}),
    )
    for job in jobs:
        footprint = shapely.from_wkb(job.tile.footprint)
        expected = "AAA" if footprint.intersection(west).area > footprint.intersection(east).area else "BBB"
        assert job.inputs["country"] == expected and job.tile.props["iso_a3"] == expected
        assert job.inputs["model"] == {"AAA": "alpine", "BBB": "coastal"}[expected]
    assert any(
        shapely.from_wkb(j.tile.footprint).intersects(shapely.Point(12.6, 45.05))
        for j in jobs
        if j.inputs["country"] == "BBB"
    ), "the island too"


@pytest.mark.parametrize("grid", ["laea-20km", "utm-20km"])
def test_a_numeric_attribute_sets_the_order_tiles_run_in_across_every_part_of_the_plan(tmp_path, grid) -> None:
    # on utm-20km the plan is made a zone at a time: AAA lies in zone 32, BBB in zones 32 and 33, so BBB's
    # tiles of zone 33 are planned after AAA's and must still run before them
    campaign = load_campaign(_config(tmp_path, priority="rank", grid=grid))
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        queue = store.due(10_000, "9999")
        planned = [j.inputs["country"] for j in store.jobs()]  # in the order they were planned
        order = [j.inputs["country"] for j in queue]
        assert len(queue) == store.count()
    first_a = order.index("AAA")
    assert set(order[:first_a]) == {"BBB"} and set(order[first_a:]) == {"AAA"}, "rank 5 before rank 1"
    if grid == "utm-20km":
        assert {j.tile_id.split("-")[1] for j in queue if j.inputs["country"] == "BBB"} == {"32N", "33N"}
        assert planned.index("AAA") < len(planned) - planned[::-1].index("BBB") - 1, "BBB planned after AAA too"


def test_a_priority_dropped_from_the_config_gives_the_jobs_not_run_the_plan_order_back(tmp_path) -> None:
    config = _config(tmp_path, priority="rank", grid="utm-20km")
    campaign = load_campaign(config)
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        raw = yaml.safe_load(config.read_text())
        del raw["priority"]
        config.write_text(yaml.safe_dump(raw))
        report = plan(load_campaign(config), store)
        assert (report.added, report.unchanged, report.replanned) == (0, store.count(), 0)
        assert [j.job_id for j in store.due(10_000, "9999")] == [j.job_id for j in store.jobs()]


def test_a_priority_or_a_template_naming_a_missing_attribute_says_which_there_are(tmp_path) -> None:
    campaign = load_campaign(_config(tmp_path, priority="size", grid="utm-20km"))
    with (
        JobStore.open(campaign.store) as store,
        pytest.raises(InvalidConfig, match=r"no tile has the attribute 'size'") as err,
    ):
        plan(campaign, store)
    assert "iso_a3, model, rank" in (err.value.hint or "")
    with JobStore.open(campaign.store) as store:
        assert store.count() == 0 and list(store.tiles()) == [], "the plan refused at its end wrote nothing"
    config = _config(tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["process"]["inputs"]["zone"] = "{tile.props.zone}"
    config.write_text(yaml.safe_dump(raw))
    campaign = load_campaign(config)
    with (
        JobStore.open(campaign.store) as store,
        pytest.raises(InvalidConfig, match=r"no attribute 'zone' \(its attributes: iso_a3, model, rank\)"),
    ):
        plan(campaign, store)


def test_a_grid_files_properties_are_attributes_and_the_exports_carry_them(tmp_path) -> None:
    from ogc_upscaler.grid import grid_from_spec

    tiles = grid_from_spec("laea-100km").tiles(load_campaign(_config(tmp_path)).aoi)
    tiles.write_geojson(tmp_path / "grid.geojson")
    grid = json.loads((tmp_path / "grid.geojson").read_text())
    for n, feature in enumerate(grid["features"]):
        feature["properties"]["orbit"] = 100 + n
    (tmp_path / "grid.geojson").write_text(json.dumps(grid))
    config = _config(tmp_path, grid="grid.geojson")
    raw = yaml.safe_load(config.read_text())
    raw["process"]["inputs"]["orbit"] = "{tile.props.orbit}"
    config.write_text(yaml.safe_dump(raw))
    campaign = load_campaign(config)
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        jobs = list(store.jobs(with_tile=True))
        export(store, tmp_path / "jobs.geojson")
    assert sorted(j.inputs["orbit"] for j in jobs) == list(range(100, 100 + len(grid["features"])))
    assert all(set(j.tile.props) == {"orbit", "iso_a3", "model", "rank"} for j in jobs), "the grid's and the AOI's"
    exported = json.loads((tmp_path / "jobs.geojson").read_text())["features"]
    assert {f["properties"]["props"]["orbit"] for f in exported} == {j.inputs["orbit"] for j in jobs}


def test_a_null_priority_read_through_gdal_runs_its_tiles_last(tmp_path) -> None:
    # GDAL gives a null field as NaN: that tile has no priority, it is not a bad value
    import numpy as np
    import pyogrio.raw

    config = _config(tmp_path, priority="rank", grid="utm-20km")
    shapes = [
        shapely.geometry.shape(f["geometry"])
        for f in json.loads((tmp_path / "countries.geojson").read_text())["features"]
    ]
    multi = shapely.to_wkb(np.asarray([shapely.MultiPolygon(list(shapely.get_parts(g))) for g in shapes], dtype=object))
    columns = [
        np.asarray(["AAA", "BBB"], dtype=object),
        np.asarray(["alpine", "coastal"], dtype=object),
        np.asarray([1.0, np.nan]),
    ]
    pyogrio.raw.write(
        tmp_path / "countries.gpkg", multi, columns, ["iso_a3", "model", "rank"],
        driver="GPKG", geometry_type="MultiPolygon", crs="EPSG:4326",
    )  # fmt: skip
    settings = yaml.safe_load(config.read_text())
    settings["aoi"] = "countries.gpkg"
    config.write_text(yaml.safe_dump(settings))
    campaign = load_campaign(config)
    assert campaign.aoi.properties[1]["rank"] != campaign.aoi.properties[1]["rank"], "NaN, as GDAL reads a null"
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        order = [j.inputs["country"] for j in store.due(10_000, "9999")]
    first_b = order.index("BBB")
    assert set(order[:first_b]) == {"AAA"} and set(order[first_b:]) == {"BBB"}, "rank 1 before no rank"


def test_a_priority_that_is_not_a_number_is_refused_before_anything_is_planned(tmp_path) -> None:
    campaign = load_campaign(_config(tmp_path, priority="model", grid="utm-20km"))
    with JobStore.open(campaign.store) as store:
        with pytest.raises(InvalidConfig, match=r"attribute 'model' is 'alpine' for a feature, not a number"):
            plan(campaign, store, parts=iter(()))  # refused before a single part is asked for
        assert store.count() == 0
