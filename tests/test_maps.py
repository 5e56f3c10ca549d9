"""The plan and status maps are real pictures: tiles drawn, coloured by state."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin

from ogc_upscaler import basemap, maps
from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.grid import grid_from_spec


def test_a_status_map_shows_the_state_colours(tmp_path) -> None:
    aoi = load_aoi("11.6,47.6,12.4,48.2")
    tiles = grid_from_spec("utm-20km").tiles(aoi)
    states = ["failed" if i % 2 else "collected" for i in range(len(tiles))]
    path = tmp_path / "status.png"
    maps.draw(path, aoi.geometry, tiles.footprints, states, title="t", labels=list(tiles.ids))
    image = mpimg.imread(path)[:, :, :3]
    assert image.shape[0] > 400 and image.shape[1] > 400
    for colour in (maps.STATE_COLOURS["failed"], maps.STATE_COLOURS["collected"]):
        rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(image - rgb).sum(axis=2) < 0.02).sum() > 1000, colour


def test_tile_states_take_the_least_advanced_job_and_failed_first() -> None:
    ids = ["a", "a", "b", "b", "c"]
    states = ["collected", "running", "collected", "failed", "planned"]
    assert maps.tile_states(ids, states) == {"a": "running", "b": "failed", "c": "planned"}


def test_no_inputs_has_a_colour_of_its_own_and_the_map_has_coastlines(tmp_path) -> None:
    aoi = load_aoi("12.0,54.0,13.0,54.6")  # the Baltic coast by Rostock
    tiles = grid_from_spec("utm-20km").tiles(aoi)
    states = ["no_inputs" if i % 2 else "collected" for i in range(len(tiles))]
    path = tmp_path / "status.png"
    maps.draw(path, aoi.geometry, tiles.footprints, states, labels=list(tiles.ids))
    image = mpimg.imread(path)[:, :, :3]
    for colour, least in ((maps.STATE_COLOURS["no_inputs"], 1000), ("#5b6f80", 200)):  # the coast's colour
        rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(image - rgb).sum(axis=2) < 0.02).sum() > least, colour


def test_labels_leave_out_slivers_cut_at_a_zone_seam() -> None:
    aoi = load_aoi("11.6,47.6,12.4,48.2")  # across the seam of zones 32 and 33 at 12°E
    tiles = grid_from_spec("utm-20km").tiles(aoi)
    areas = shapely.area(tiles.footprints)
    slivers = {str(t) for t, a in zip(tiles.ids, areas, strict=True) if a < 0.5 * np.median(areas)}
    placed = maps.placed_labels(tiles.footprints, list(tiles.ids))
    assert slivers and len(placed) == len(tiles) - len(slivers)
    assert not {text for text, _, _ in placed} & {s.split("-", 1)[-1] for s in slivers}
    points = np.array([(x, y) for _, x, y in placed])
    gaps = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(len(points), 1)].min() > 0.05  # degrees: labels never sit on one another


def write_tile(path, x0: float, value: float) -> None:
    """A 10 km UTM tile of one value, 100 x 100 pixels, starting at easting ``x0``."""
    profile = dict(driver="GTiff", width=100, height=100, count=1, dtype="float32", crs="EPSG:32632", nodata=-9999)
    with rasterio.open(path, "w", transform=from_origin(x0, 5_320_000, 100, 100), **profile) as dst:
        dst.write(np.full((100, 100), value, dtype="float32"), 1)


def test_a_mosaic_of_touching_tiles_has_no_gap_between_them(tmp_path) -> None:
    paths = []
    for i, x0 in enumerate((700_000, 710_000, 720_000)):
        write_tile(tmp_path / f"t{i}.tif", x0, 0.1 * (i + 1))
        paths.append(tmp_path / f"t{i}.tif")
    mosaic, (west, _, east, north) = maps.mosaic_lonlat(paths, pixels=400)
    res = (east - west) / mosaic.shape[1]
    union = shapely.box(700_000, 5_310_000, 730_000, 5_320_000)
    lonlat = shapely.transform(shapely.segmentize(union, 500), _to_lonlat, interleaved=False)
    inside = lonlat.buffer(-2 * res)  # two pixels in from the edge of the three tiles together
    rows, cols = np.indices(mosaic.shape)
    centres = shapely.points(west + (cols + 0.5) * res, north - (rows + 0.5) * res)
    within = shapely.contains_xy(inside, shapely.get_x(centres), shapely.get_y(centres))
    assert within.sum() > 10_000 and not np.isnan(mosaic[within]).any()
    assert np.allclose(np.unique(mosaic[within]), [0.1, 0.2, 0.3])


def _to_lonlat(x, y):
    from pyproj import Transformer

    return Transformer.from_crs(32632, 4326, always_xy=True).transform(x, y)


def test_coastlines_and_borders_come_from_the_topology_as_its_arcs_say() -> None:
    topology = {
        "transform": {"scale": [1, 1], "translate": [0, 0]},
        "arcs": [[[0, 0], [0, 2]], [[0, 2], [2, 0], [0, -2], [-2, 0]], [[0, 0], [-2, 0], [0, 2], [2, 0]]],
        "objects": {
            "countries": {"type": "GeometryCollection", "geometries": [
                {"type": "Polygon", "arcs": [[0, 1]]}, {"type": "Polygon", "arcs": [[~0, 2]]}]},
            "land": {"type": "GeometryCollection", "geometries": [{"type": "Polygon", "arcs": [[1, 2]]}]},
        },
    }  # fmt: skip
    world = basemap.from_topojson(topology)
    assert len(world.coastlines) == 2 and len(world.borders) == 1
    assert world.borders[0].tolist() == [[0, 0], [0, 2]]  # delta-decoded: the shared edge
    assert world.coastlines[0].tolist() == [[0, 2], [2, 2], [2, 0], [0, 0]]


def test_the_built_basemap_is_natural_earths_world() -> None:
    world = basemap.basemap()
    assert world is not None, "the watch page's basemap is not built: bash scripts/web.sh"
    points = np.concatenate(world.coastlines)
    assert len(world.coastlines) > 500 and len(world.borders) > 200
    assert points[:, 0].min() >= -180 and points[:, 0].max() <= 180 and points[:, 1].min() < -60
