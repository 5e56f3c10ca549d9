"""The MGRS 100 km squares, computed: every id is the designation the reference MGRS library gives the
square's place, and maps back to the same square."""

from __future__ import annotations

import mgrs
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.errors import InvalidGrid
from ogc_upscaler.grid import grid_from_spec

REFERENCE = mgrs.MGRS()


def test_the_sentinel_2_tile_32tqm_is_where_the_archives_put_it() -> None:
    grid = grid_from_spec("mgrs", resolution=10)
    tile = grid.tile("32TQM")
    assert tile.id == "MGRS-32TQM" and tile.epsg == 32632
    west, south, east, north = tile.bounds
    assert (west, south, north) == (700000.0, 4600000.0, 4700000.0) and 750000 < east < 800000, "clipped at 12°E"
    assert grid.tile("MGRS-32TQM").bounds == tile.bounds


@settings(max_examples=25, deadline=None)
@given(
    lon=st.integers(-179_500, 178_500).map(lambda v: v / 1000), lat=st.integers(-79_000, 83_000).map(lambda v: v / 1000)
)
def test_every_square_is_named_as_mgrs_names_its_place_and_maps_back(lon, lat) -> None:
    check_named_as_mgrs_names_them(f"{lon},{lat},{lon + 0.6},{min(lat + 0.6, 84.0)}")


@settings(max_examples=25, deadline=None)
@given(
    lon=st.integers(-600, 41_400).map(lambda v: v / 1000),
    lat=st.one_of(st.integers(55_000, 63_900), st.integers(71_000, 83_400)).map(lambda v: v / 1000),
)
def test_norway_and_svalbard_squares_follow_the_mgrs_zone_exceptions(lon, lat) -> None:
    check_named_as_mgrs_names_them(f"{lon},{lat},{lon + 0.6},{min(lat + 0.6, 84.0)}")


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),  # the first two found by the property test in CI runs, before the exceptions
    [(4.478, 61.011, "32VKN"), (11.474, 76.578, "33XVF"), (2.5, 60.0, "31VDG"), (33.5, 79.0, "37XCH")],
)
def test_squares_in_the_exception_areas_carry_the_archives_names(lon, lat, expected) -> None:
    grid = grid_from_spec("mgrs", resolution=100)
    tiles = grid.tiles(load_aoi(f"{lon},{lat},{lon + 0.01},{lat + 0.01}"))
    assert [tiles[i].id for i in range(len(tiles))] == [f"MGRS-{expected}"]


def test_the_zones_cover_the_earth_once_and_zones_32x_34x_36x_do_not_exist() -> None:
    grid = grid_from_spec("mgrs")
    _, regions = grid.zones()
    assert shapely.union_all(regions).area == pytest.approx(360 * 164)
    assert shapely.area(regions).sum() == pytest.approx(360 * 164), "no place in two zones"
    for tile_id in ("32XNL", "34XDL", "36XVL"):
        with pytest.raises(InvalidGrid, match="lies outside its zone"):
            grid.tile(tile_id)


def test_the_squares_over_norway_and_svalbard_cover_the_area_once() -> None:
    grid = grid_from_spec("mgrs", resolution=100)
    aoi = load_aoi("0,55,42,84")
    tiles = grid.tiles(aoi)
    footprints = np.array(tiles.footprints)
    assert len(set(tiles.ids)) == len(tiles)
    union = shapely.union_all(footprints)
    assert shapely.intersection(union, aoi.geometry).area == pytest.approx(aoi.geometry.area, rel=1e-9)
    assert shapely.area(footprints).sum() == pytest.approx(union.area, rel=1e-9), "no place in two squares"


def check_named_as_mgrs_names_them(bbox: str) -> None:
    grid = grid_from_spec("mgrs", resolution=100)
    tiles = grid.tiles(load_aoi(bbox))
    assert len(tiles)
    for i in range(len(tiles)):
        tile = tiles[i]
        place = shapely.get_parts(tile.footprint)[0].representative_point()
        reference = REFERENCE.toMGRS(place.y, place.x, MGRSPrecision=0)
        _, south, _, north = tile.footprint.bounds
        same_band = np.floor((south + 80) / 8) == np.floor((min(north, 83.99) + 80) / 8)
        assert tile.id[5:7] + tile.id[8:] == reference[:2] + reference[3:], "zone and 100 km square letters"
        if same_band:
            assert tile.id[5:] == reference, "the band too, for a square inside one band"
        assert grid.tile(tile.id).bounds == tile.bounds


@pytest.mark.parametrize(("tile_id", "message"), [("32TIM", "not an MGRS"), ("32TAM", "column letter A is not used")])
def test_a_wrong_square_is_refused_naming_what_is_wrong(tile_id, message) -> None:
    with pytest.raises(InvalidGrid, match=message):
        grid_from_spec("mgrs").tile(tile_id)
