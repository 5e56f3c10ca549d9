"""A grid made and written a part at a time: the same tiles, in the same order, as all at once."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.cli import cli
from ogc_upscaler.errors import InvalidAOI
from ogc_upscaler.grid import grid_from_spec
from ogc_upscaler.grid import tiles as tiles_module
from ogc_upscaler.grid.tiles import write_geojson

ACROSS_ZONES = "4.5,-2,19.5,3"  # UTM zones 31 to 34, north and south of the equator: eight zone halves


@pytest.mark.parametrize("spec", ["utm-20km", "mgrs", "laea-100km"])
def test_the_parts_of_a_grid_are_its_tiles_in_order(spec) -> None:
    grid, aoi = grid_from_spec(spec), load_aoi(ACROSS_ZONES)
    whole, parts = grid.tiles(aoi), list(grid.chunks(aoi))
    assert np.concatenate([p.ids for p in parts]).tolist() == whole.ids.tolist()
    np.testing.assert_array_equal(np.concatenate([p.bounds for p in parts]), whole.bounds)
    if spec != "laea-100km":
        assert len(parts) == 8 and all(len(np.unique(p.epsg)) == 1 for p in parts), "one UTM zone half a part"


@pytest.mark.parametrize("spec", ["utm-20km", "laea-20km", "laea-100km"])
def test_no_part_holds_more_than_part_tiles_and_together_they_are_the_tiles(spec, monkeypatch) -> None:
    monkeypatch.setattr(tiles_module, "PART_TILES", 7)
    grid, aoi = grid_from_spec(spec), load_aoi(ACROSS_ZONES)
    whole, parts = grid.tiles(aoi), list(grid.chunks(aoi))
    assert max(len(p) for p in parts) == 7 and len(parts) >= len(whole) / 7
    assert np.concatenate([p.ids for p in parts]).tolist() == whole.ids.tolist()


def test_an_aoi_outside_utm_is_refused_before_any_part_is_made() -> None:
    with pytest.raises(InvalidAOI, match="outside UTM's range"):
        grid_from_spec("utm-10km").chunks(load_aoi("0,70,10,85"))


def test_parts_written_one_after_the_other_are_the_file_of_all_tiles(tmp_path) -> None:
    grid, aoi = grid_from_spec("utm-20km"), load_aoi(ACROSS_ZONES)
    grid.tiles(aoi).write_geojson(tmp_path / "whole.geojson")
    write_geojson(tmp_path / "parts.geojson", grid.chunks(aoi))
    assert (tmp_path / "parts.geojson").read_text() == (tmp_path / "whole.geojson").read_text()
    features = json.loads((tmp_path / "parts.geojson").read_text())["features"]
    assert len({f["properties"]["crs"] for f in features}) == 8


def test_a_part_that_fails_leaves_no_file(tmp_path) -> None:
    grid, aoi = grid_from_spec("utm-20km"), load_aoi(ACROSS_ZONES)

    def failing():
        parts = grid.chunks(aoi)
        yield next(parts)
        raise MemoryError("the second zone")

    with pytest.raises(MemoryError):
        write_geojson(tmp_path / "tiles.geojson", failing())
    assert list(tmp_path.iterdir()) == [], "neither the file nor its temporary remains"


def test_the_grid_command_writes_zone_by_zone_what_the_grid_gives(tmp_path) -> None:
    out = tmp_path / "tiles.geojson"
    result = CliRunner().invoke(cli, ["grid", "--aoi", ACROSS_ZONES, "--grid", "utm-20km", "-o", str(out)])
    assert result.exit_code == 0, result.output
    tiles = grid_from_spec("utm-20km").tiles(load_aoi(ACROSS_ZONES))
    assert result.output.startswith(f"{len(tiles):,} tiles of utm-20km, {tiles.area_km2:,.0f} km²")
    written = [f["id"] for f in json.loads(out.read_text())["features"]]
    assert written == tiles.ids.tolist()


def test_a_part_holds_at_least_one_tile() -> None:
    tiles = grid_from_spec("utm-20km").tiles(load_aoi(ACROSS_ZONES))
    with pytest.raises(ValueError, match="at least one tile"):
        list(tiles_module.split(tiles, 0))
    assert [len(p) for p in tiles_module.split(tiles.select(slice(0, 0)), 5)] == [0], "no tiles: one empty part"
