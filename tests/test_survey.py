"""Knowing before running: `check` (and `plan` before it writes) samples tiles spread over the AOI, renders
and checks their jobs, refuses input collections that are not there and says where the AOI and the
windows lie outside the inputs, and which parameter sets only multiply jobs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import shapely
import yaml
from click.testing import CliRunner
from pyproj import Geod

from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.cli import cli, main
from ogc_upscaler.config import load_campaign
from ogc_upscaler.demo import write_campaign
from ogc_upscaler.errors import InvalidConfig, InvalidPackage
from ogc_upscaler.grid import grid_from_spec
from ogc_upscaler.sample import spread
from ogc_upscaler.survey import survey

from .conftest import write_config


def _demo(tmp_path: Path, archive: Path, **changes) -> Path:
    """The demo campaign in ``tmp_path``, reading the session's demo archive, with ``changes`` to its config."""
    config = write_campaign(tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["inputs"]["stac"] = str(archive)
    raw.update(changes)
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


def _geodesic_km2(geom: shapely.Geometry) -> float:
    return abs(Geod(ellps="WGS84").geometry_area_perimeter(shapely.segmentize(geom, 0.01))[0]) / 1e6


def test_check_says_what_the_demo_would_run_and_writes_nothing(tmp_path, demo_archive) -> None:
    config = _demo(tmp_path, demo_archive)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli, ["check", str(config)])
    assert result.exit_code == 0, result.output
    campaign = load_campaign(config)
    tiles = len(campaign.grid.tiles(campaign.aoi))
    assert f"{tiles:,} tiles × 3 windows = {3 * tiles:,} jobs" in result.output
    assert "inputs: collections demo-s2-l2a, items from 2024-04-15 to 2024-06-15" in result.output
    assert f"0 of {3 * tiles} sampled jobs found no items" in result.output
    assert "warning" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "no store, no job folder"


def test_a_collection_the_catalog_does_not_have_stops_check_and_plan_before_the_store(tmp_path, demo_archive) -> None:
    config = _demo(tmp_path, demo_archive)
    raw = yaml.safe_load(config.read_text())
    raw["inputs"]["collections"] = ["sentinel-2-l2a"]
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    for command in ("check", "plan"):
        with pytest.raises(SystemExit) as exit_code:
            main([command, str(config)])
        assert exit_code.value.code == 2
    with pytest.raises(InvalidConfig, match="has no items of collection 'sentinel-2-l2a'") as err:
        survey(load_campaign(config))
    assert "demo-s2-l2a" in (err.value.hint or "")
    assert not (tmp_path / "demo.sqlite").exists(), "plan stopped before the store"


def test_an_aoi_and_windows_beyond_the_archive_are_said_with_the_jobs_that_find_nothing(tmp_path, demo_archive) -> None:
    aoi = {"type": "Polygon", "coordinates": [[[11.8, 47.6], [13.9, 47.6], [13.9, 48.3], [11.8, 48.3], [11.8, 47.6]]]}
    (tmp_path / "wide.geojson").write_text(json.dumps(aoi))
    time = {"start": "2024-04-01", "end": "2024-10-01", "step": "P1M"}  # the archive has April to June
    config = _demo(tmp_path, demo_archive, aoi="wide.geojson", time=time)
    found = survey(load_campaign(config), n=40)
    catalog = pystac.read_file(str(demo_archive))
    covered = shapely.union_all([shapely.geometry.shape(i.geometry) for i in catalog.get_items(recursive=True)])
    outside = _geodesic_km2(shapely.difference(shapely.geometry.shape(aoi), covered))
    share = outside / _geodesic_km2(shapely.geometry.shape(aoi))
    assert 0.05 < share < 0.95, "the test AOI reaches beyond the archive"
    message = next(w for w in found.warnings if "of the AOI" in w)
    assert message.startswith(f"{share:.0%} of the AOI ({outside:,.0f} km²) lies outside the items of demo-s2-l2a")
    late = next(w for w in found.warnings if "windows lie after" in w)
    assert late.startswith("3 of 6 windows lie after the items (after 2024-06-15): 2024-07-01T00:00:00Z/")
    sampled = len(found.sampled)
    assert sampled == 40 * 6 and found.no_inputs >= sampled // 2, "July to September find nothing, nor do tiles outside"
    assert f"{found.no_inputs:,} of {sampled:,} sampled jobs found no items" in found.summary()


def test_parameter_sets_no_template_tells_apart_are_warned_about(tmp_path) -> None:
    sets = {"strict": {"threshold": 0.4}, "loose": {"threshold": 0.2}}
    unused = survey(load_campaign(write_config(tmp_path, parameters=sets)))
    assert (
        len(unused.warnings) == 1
        and "parameter sets strict, loose give every sampled job the same inputs" in (unused.warnings[0])
    )
    assert "{params.threshold}" in unused.warnings[0]
    inputs = {"bbox": "{tile.bbox}", "threshold": "{params.threshold}"}
    used = survey(load_campaign(write_config(tmp_path, parameters=sets, process={"inputs": inputs})))
    assert used.warnings == ()


def test_a_job_the_package_refuses_is_found_on_the_sample(tmp_path) -> None:
    def check(spec) -> None:
        if "-33N-" in spec.tile_id:
            raise InvalidPackage(f"job {spec.job_id}: refused")

    across = write_config(tmp_path, aoi="11.0,47.8,13.0,48.0")  # zones 32 and 33
    with pytest.raises(InvalidPackage, match="-33N-"):
        survey(load_campaign(across), check, n=4)


def test_a_stac_api_without_the_collection_is_refused_with_what_it_offers(tmp_path, stac_api) -> None:
    inputs = {"stac": stac_api, "collections": ["sentinel-2-l2a"]}
    process = {"inputs": {"items": "{inputs.stac_items}"}}
    with pytest.raises(InvalidConfig, match="has no collection 'sentinel-2-l2a'") as err:
        survey(load_campaign(write_config(tmp_path, inputs=inputs, process=process)))
    assert "demo-s2-l2a" in (err.value.hint or "")
    inputs["collections"] = ["demo-s2-l2a"]
    found = survey(load_campaign(write_config(tmp_path, inputs=inputs, process=process)))
    assert found.coverage is not None and found.coverage.collections == ("demo-s2-l2a",)
    assert found.coverage.start is not None and f"{found.coverage.start:%Y-%m}" == "2024-04"


def test_the_sample_is_spread_over_every_part_of_the_aoi_in_plan_order() -> None:
    grid = grid_from_spec("utm-10km")
    aoi = load_aoi("MULTIPOLYGON(((0 40, 8 40, 8 46, 0 46, 0 40)), ((20 -10, 21 -10, 21 -9, 20 -9, 20 -10)))")
    whole = grid.tiles(aoi)
    sample = spread(grid, aoi, 60)  # a tile in 80 or so: the island's 120 tiles get at least one
    assert sample.total == len(whole) and sample.total_km2 == pytest.approx(whole.area_km2)
    ids = sample.tiles.ids.tolist()
    assert len(ids) == 60 and ids == [i for i in whole.ids.tolist() if i in set(ids)], "in plan order"
    lon = shapely.get_coordinates(shapely.centroid(sample.tiles.footprints))[:, 0]
    assert (lon > 19).any(), "the small far island has its share"
    assert (lon < 2).any() and (lon > 6).any() and ((lon > 2) & (lon < 6)).any(), "the big box, end to end"
    assert spread(grid, aoi, 60).tiles.ids.tolist() == ids, "the same sample every time"
    few = spread(grid, load_aoi("11.9,47.9,12.1,48.0"), 100)
    assert len(few.tiles) == few.total < 100, "all tiles when there are fewer"


def test_a_grid_files_sample_keeps_its_ids_and_attributes(tmp_path) -> None:
    tiles = grid_from_spec("utm-20km", resolution=20).tiles(load_aoi("11.0,47.0,13.0,48.5"))
    raw = {"type": "FeatureCollection", "features": [json.loads(f) for f in tiles.geojson_features()]}
    for i, feature in enumerate(raw["features"]):
        feature["id"] = feature["properties"]["tile_id"] = f"T{i:03d}"
        feature["properties"]["zone"] = i % 3
    (tmp_path / "grid.geojson").write_text(json.dumps(raw))
    grid = grid_from_spec(str(tmp_path / "grid.geojson"), resolution=20)
    sample = spread(grid, load_aoi("11.0,47.0,13.0,48.5"), 5)
    chosen = sample.tiles.ids.tolist()
    assert len(chosen) == 5 and all(c.startswith("T") for c in chosen)
    assert [p["zone"] for p in sample.tiles.props] == [int(c[1:]) % 3 for c in chosen]
    assert np.all(np.diff([int(c[1:]) for c in chosen]) > 0)


def test_items_without_a_collection_field_belong_to_the_collection_they_sit_in(tmp_path) -> None:
    # a window that starts the very moment the last item was taken still finds it: no warning for it
    collection = pystac.Collection(
        "toy", "items without a collection field", pystac.Extent.from_dict(
            {"spatial": {"bbox": [[11.5, 47.5, 12.5, 48.5]]}, "temporal": {"interval": [[None, None]]}}
        ),
    )  # fmt: skip
    for day in ("2024-04-01", "2024-05-01"):
        item = pystac.Item(
            f"toy-{day}", shapely.geometry.mapping(shapely.box(11.5, 47.5, 12.5, 48.5)), [11.5, 47.5, 12.5, 48.5],
            pystac.utils.str_to_datetime(f"{day}T00:00:00Z"), {},
        )  # fmt: skip
        collection.add_item(item)
        item.collection_id = None
        item.remove_links(pystac.RelType.COLLECTION)
    collection.normalize_hrefs(str(tmp_path / "toy"))
    collection.save(pystac.CatalogType.SELF_CONTAINED)
    written = json.loads(next((tmp_path / "toy").glob("toy-*/*.json")).read_text())
    assert "collection" not in written, "the test's items have no collection field"
    inputs = {"stac": str(tmp_path / "toy" / "collection.json"), "collections": ["toy"]}
    time = {"start": "2024-04-01", "end": "2024-05-02", "step": "P1M"}  # April, and May's first day
    process = {"inputs": {"items": "{inputs.stac_items}"}}
    found = survey(load_campaign(write_config(tmp_path, inputs=inputs, time=time, process=process)))
    assert found.coverage is not None and found.coverage.collections == ("toy",)
    assert found.no_inputs == 0 and found.warnings == ()
