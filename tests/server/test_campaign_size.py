"""Campaign sizes are bounded from the AOI's area and outline, exactly enough to refuse a campaign over the
limit at request time, quickly and in little memory, and to count tiles only near the limit."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.errors import InvalidRequest
from ogc_upscaler.grid import grid_from_spec
from ogc_upscaler.server.campaign_size import DEFAULT_MAX_TILES, check_campaign_size, tile_bounds


@pytest.mark.parametrize(
    ("grid", "aoi"),
    [
        ("utm-20km", "11.5,47.5,12.5,48.0"),
        ("utm-10km", "-10,35,30,60"),  # across 7 zones
        ("utm-20km", "5,-5,15,5"),  # across the equator and a zone seam
        ("utm-20km", "170,10,-170,20"),  # across the antimeridian
        ("utm-100km", "-180,-80,180,84"),  # the whole of UTM
        ("laea-20km", "-10,35,30,60"),
        ("laea-100km", "11.5,47.5,12.5,48.0"),
        ("EPSG:3857:10000", "0,40,10,60"),  # a conformal CRS: its tiles are smaller than they look
        ("EPSG:32633:5000", "14.0,47.0,14.1,47.05"),
    ],
)
def test_the_bounds_hold_the_exact_count(grid: str, aoi: str) -> None:
    area, tiling = load_aoi(aoi), grid_from_spec(grid, resolution=20)
    bounds = tile_bounds(area, tiling)
    count = len(tiling.tiles(area))
    assert bounds.lower <= count <= bounds.upper
    assert bounds.upper < 3 * count + 100, "tight enough to skip most counts"


def test_a_thin_aoi_is_counted_not_guessed_from_its_area() -> None:
    strip = load_aoi({"type": "Polygon", "coordinates": [[[0, 45], [40, 45], [40, 45.001], [0, 45.001], [0, 45]]]})
    grid = grid_from_spec("utm-10km", resolution=20)
    bounds = tile_bounds(strip, grid)
    assert bounds.lower < 50 < len(grid.tiles(strip)) <= bounds.upper
    assert check_campaign_size(strip, grid, 5000) is None, "far from the limit: the bounds decide"
    assert check_campaign_size(strip, grid, 400) == len(grid.tiles(strip)), "near the limit: counted"
    with pytest.raises(InvalidRequest, match=f"covers {len(grid.tiles(strip))} tiles of utm-10km"):
        check_campaign_size(strip, grid, 300)
    with pytest.raises(InvalidRequest, match=r"may cover up to 1,[0-9]{3} tiles of .* outline is very long"):
        check_campaign_size(strip, grid, 100)  # the bounds too far apart to be worth a count


def test_a_global_campaign_on_a_10_km_grid_is_refused_at_once_and_in_little_memory() -> None:
    world, grid = load_aoi("-180,-80,180,84"), grid_from_spec("utm-10km", resolution=20)
    tracemalloc.start()
    start = time.monotonic()
    with pytest.raises(InvalidRequest) as caught:
        check_campaign_size(world, grid, DEFAULT_MAX_TILES)
    elapsed = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert caught.value.message.startswith("the campaign covers about 5,0")
    assert caught.value.message.endswith("tiles of utm-10km; this endpoint takes at most 20,000 per campaign")
    assert elapsed < 30 and peak < 100 * 2**20, (elapsed, peak)
