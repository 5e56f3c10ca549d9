"""The demo end to end through the real command: every job collected, the catalog valid offline,
every COG valid, and NDVI values right where the answer is known."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from pyproj import Transformer
from rio_cogeo.cogeo import cog_validate

from .conftest import checked_ndvi

pytestmark = pytest.mark.slow
EXE = shutil.which("ogc-upscaler")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    parent = tmp_path_factory.mktemp("readme")
    # exactly the README's command: a relative folder, from its parent
    result = subprocess.run([EXE, "demo", "demo"], cwd=parent, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "done: 39 collected" in result.stdout
    folder = parent / "demo"
    assert f"catalog: {folder / 'catalog' / 'collection.json'}" in result.stdout
    return folder


def items(demo: Path) -> list[pystac.Item]:
    collection = pystac.Collection.from_file(str(demo / "catalog" / "collection.json"))
    return list(collection.get_items())


def test_the_catalog_validates_offline_against_core_and_extension_schemas(demo, offline_stac_validator) -> None:
    collection = pystac.Collection.from_file(str(demo / "catalog" / "collection.json"))
    assert collection.validate()
    found = list(collection.get_items())
    assert len(found) == 39
    for item in found:
        assert item.validate()
        assert {"proj:code", "proj:shape", "proj:transform", "proj:bbox", "grid:code"} <= set(item.properties)
        assert any("raster" in e for e in item.stac_extensions) and any("file" in e for e in item.stac_extensions)
        band = item.assets["data"].extra_fields["raster:bands"][0]
        assert {"minimum", "maximum", "mean", "stddev", "valid_percent"} <= set(band["statistics"])
    assert collection.extent.spatial.bboxes[0][0] < 12 < collection.extent.spatial.bboxes[0][2]


def test_links_are_relative_and_files_match_their_checksums(demo) -> None:
    for path in (demo / "catalog").rglob("*.json"):
        body = json.loads(path.read_text())
        hrefs = [link["href"] for link in body["links"]] + [a["href"] for a in body.get("assets", {}).values()]
        assert all(not h.startswith(("/", "file:", "http")) for h in hrefs), path
    for item in items(demo):
        asset = item.assets["data"]
        data = Path(asset.get_absolute_href()).read_bytes()
        assert asset.extra_fields["file:size"] == len(data)
        assert asset.extra_fields["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()


def test_every_cog_is_valid_and_on_its_tile_grid(demo) -> None:
    for item in items(demo):
        path = item.assets["data"].get_absolute_href()
        valid, errors, _ = cog_validate(path, quiet=True)
        assert valid, (path, errors)
        with rasterio.open(path) as src:
            assert [src.height, src.width] == item.properties["proj:shape"]
            assert src.crs.to_string() == item.properties["proj:code"]
            assert src.transform.a == 20.0 and src.bounds.left % 20 == 0 and src.bounds.top % 20 == 0


@pytest.mark.parametrize("zone", [32, 33])
def test_ndvi_values_are_right_where_the_answer_is_known(demo, zone) -> None:
    may = [i for i in items(demo) if "_20240501-" in i.id and f"-{zone}N-" in i.id]
    assert may
    rng = np.random.default_rng(7)
    checked = sum(checked_ndvi(Path(i.assets["data"].get_absolute_href()), 5, rng, 400) for i in may)
    assert checked > 300


@pytest.mark.parametrize("lon", [11.97, 11.995, 12.005, 12.03])
def test_each_place_beside_a_zone_seam_has_data_in_one_item_per_window(demo, lon) -> None:
    """Tiles clipped at the 12°E seam between zones 32 and 33 keep data only inside their footprint:
    on each side of the seam, one item per month has a value there, and its geometry holds the place."""
    import shapely.geometry

    lat = 48.0
    found: dict[str, list[str]] = {}
    for item in items(demo):
        with rasterio.open(item.assets["data"].get_absolute_href()) as src:
            x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(lon, lat)
            left, bottom, right, top = src.bounds
            if not (left <= x < right and bottom < y <= top):
                continue
            value = next(src.sample([(x, y)], masked=True))[0]
        if not np.ma.is_masked(value):
            found.setdefault(item.properties["start_datetime"], []).append(item.id)
            assert shapely.geometry.shape(item.geometry).covers(shapely.Point(lon, lat)), item.id
    assert len(found) == 3 and all(len(ids) == 1 for ids in found.values()), found


def test_the_picture_and_the_status_after_the_run(demo) -> None:
    assert (demo / "ndvi.png").stat().st_size > 20_000
    status = subprocess.run([EXE, "status", str(demo / "demo.yaml"), "--json"], capture_output=True, text=True)
    assert json.loads(status.stdout)["states"]["collected"] == 39
    estimate = subprocess.run([EXE, "estimate", str(demo / "demo.yaml")], capture_output=True, text=True)
    assert "finished: 39 jobs" in estimate.stdout and "remaining: 0 jobs" in estimate.stdout


def test_the_catalog_is_rebuilt_from_the_store(demo) -> None:
    path = demo / "catalog" / "collection.json"
    before = json.loads(path.read_text())
    path.unlink()
    result = subprocess.run([EXE, "catalog", str(demo / "demo.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(path.read_text()) == before


def test_running_again_does_nothing_more(demo) -> None:
    result = subprocess.run([EXE, "run", str(demo / "demo.yaml")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "done: 39 collected" in result.stdout
    attempts = sorted((demo / "runs" / "jobs").glob("*/attempt-*"))
    assert len(attempts) == 39
