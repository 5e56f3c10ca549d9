"""STAC bboxes of geometries split at the antimeridian: the shortest span of longitudes, west > east across."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.grid import grid_from_spec
from ogc_upscaler.projection import stac_bbox


@pytest.mark.parametrize(
    ("geometries", "bbox"),
    [
        ([shapely.box(10, 40, 12, 42)], [10, 40, 12, 42]),
        ([shapely.box(177, -19, 180, -16), shapely.box(-180, -18, -179, -17)], [177, -19, -179, -16]),
        ([shapely.box(-180, 0, -170, 5), shapely.box(170, 0, 180, 5), shapely.box(10, 0, 20, 5)], [10, 0, -170, 5]),
        ([shapely.box(-180, 0, -100, 5), shapely.box(90, 0, 180, 5), shapely.box(-20, 0, 20, 5)], [-20, 0, -100, 5]),
        ([shapely.box(-50, 0, -40, 5), shapely.box(40, 0, 50, 5)], [-50, 0, 50, 5]),
    ],
)
def test_the_bbox_is_the_shortest_span_of_longitudes(geometries, bbox) -> None:
    assert stac_bbox(np.asarray(geometries, dtype=object)) == bbox


def test_tiles_split_at_the_antimeridian_get_a_bbox_with_west_greater_than_east() -> None:
    tiles = grid_from_spec("EPSG:3832:20000", resolution=20).tiles(load_aoi("179.8,-17.2,-179.8,-16.8"))
    split = [f for f in tiles.footprints if len(shapely.get_parts(f)) > 1]
    assert split, "a tile of the Pacific-centred Mercator grid runs across the antimeridian"
    for footprint in split:
        west, _, east, _ = stac_bbox(footprint)
        assert west > east and west > 179 and east < -179


@pytest.mark.parametrize("epsg", [3035, 25832])
def test_wgs84_is_moved_to_an_etrs89_crs_to_the_bit_as_proj_would(epsg) -> None:
    # the shortcut skips PROJ's choice among the WGS 84 to ETRS89 operations, which picks a null one
    from pyproj import Transformer

    from ogc_upscaler.projection import transformer

    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(-30, 45, 10_000), rng.uniform(30, 72, 10_000)
    full = Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = transformer(4326, epsg).transform(lon, lat)
    xf, yf = full.transform(lon, lat)
    assert np.array_equal(x, xf) and np.array_equal(y, yf)
    back = transformer(epsg, 4326).transform(x, y)
    assert np.array_equal(back, Transformer.from_crs(epsg, 4326, always_xy=True).transform(x, y))
