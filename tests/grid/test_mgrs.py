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
    grid = grid_from_spec("mgrs", resolution=100)
    tiles = grid.tiles(load_aoi(f"{lon},{lat},{lon + 0.6},{min(lat + 0.6, 84.0)}"))
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
