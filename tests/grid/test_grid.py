"""Grid properties: alignment, no overlaps, coverage, stable ids, seams, antimeridian, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ogc_upscaler.aoi import AOI, from_bbox, load_aoi
from ogc_upscaler.errors import InvalidAOI, InvalidGrid
from ogc_upscaler.grid import FileGrid, UTMGrid, custom_grid, grid_from_spec
from ogc_upscaler.grid.mask import cells_in
from ogc_upscaler.projection import area_km2

GRIDS = ["laea-20km", "laea-100km", "utm-10km", "utm-20km", "utm-100km", "mgrs", "EPSG:32633:5000:1234,-20"]
SEAM_AOI = "11.6,47.6,12.4,48.2"  # across 12°E, the seam of UTM zones 32 and 33


def assert_on_pixels(bounds: np.ndarray, pixel: float, origin: tuple[float, float] = (0.0, 0.0)) -> None:
    shifted = (bounds - np.array([origin[0], origin[1], origin[0], origin[1]])) / pixel
    np.testing.assert_allclose(shifted, np.round(shifted), atol=1e-6)


def uncovered_fraction(aoi: AOI, footprints: np.ndarray) -> float:
    missing = shapely.difference(aoi.geometry, shapely.union_all(footprints))
    return float(area_km2(np.asarray([missing]))[0] / aoi.area_km2)


@pytest.mark.parametrize("spec", GRIDS)
def test_bounds_lie_on_pixel_multiples(spec: str) -> None:
    grid = grid_from_spec(spec, resolution=20, buffer_px=3)
    tiles = grid.tiles(load_aoi(SEAM_AOI))
    origin = getattr(grid, "origin", (0.0, 0.0))
    assert len(tiles) > 0
    assert_on_pixels(tiles.bounds, 20.0, origin)
    for tile in tiles:
        assert_on_pixels(np.array([tile.buffered_bounds]), 20.0, origin)
        rows, cols = tile.shape
        xmin, ymin, xmax, ymax = tile.buffered_bounds
        assert (rows, cols) == ((ymax - ymin) / 20, (xmax - xmin) / 20)
        assert tile.transform == (20.0, 0.0, xmin, 0.0, -20.0, ymax)


@pytest.mark.parametrize("spec", GRIDS)
def test_tiles_cover_the_aoi_without_overlapping(spec: str) -> None:
    aoi = load_aoi(SEAM_AOI)
    tiles = grid_from_spec(spec).tiles(aoi)
    assert uncovered_fraction(aoi, tiles.footprints) < 1e-6
    tree = shapely.STRtree(tiles.footprints)
    left, right = tree.query(tiles.footprints, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(tiles.footprints[left[pairs]], tiles.footprints[right[pairs]]))
    tile_area = shapely.area(tiles.footprints).min()
    assert overlap.max(initial=0.0) < 1e-6 * tile_area
    assert len(set(tiles.ids)) == len(tiles)


def test_only_tiles_sharing_area_with_the_aoi_are_kept() -> None:
    aoi = load_aoi(SEAM_AOI)
    tiles = grid_from_spec("laea-20km").tiles(aoi)
    shared = shapely.area(shapely.intersection(tiles.footprints, aoi.geometry))
    assert (shared > 0).all()


@settings(max_examples=25, deadline=None)
@given(
    west=st.floats(-20, 30),
    south=st.floats(35, 65),
    width=st.floats(0.05, 3),
    height=st.floats(0.05, 2),
    grow=st.floats(0.01, 2),
    spec=st.sampled_from(["laea-20km", "utm-20km", "utm-10km"]),
)
def test_ids_and_bounds_stay_when_the_aoi_grows(west, south, width, height, grow, spec) -> None:
    grid = grid_from_spec(spec)
    small = grid.tiles(from_bbox(west, south, west + width, south + height))
    large = grid.tiles(from_bbox(west - grow, south - grow, west + width + grow, south + height + grow))
    before = dict(zip(small.ids, map(tuple, small.bounds), strict=True))
    after = dict(zip(large.ids, map(tuple, large.bounds), strict=True))
    assert set(before) <= set(after)
    assert all(after[t] == b for t, b in before.items())


def test_utm_tiles_are_clipped_at_the_zone_seam() -> None:
    tiles = grid_from_spec("utm-20km").tiles(load_aoi(SEAM_AOI))
    assert set(tiles.epsg.tolist()) == {32632, 32633}
    clipped = [i for i in range(len(tiles)) if tiles.clipped[i] is not None]
    assert clipped, "a 20 km tile straddles 12°E"
    for i in range(len(tiles)):
        west, _, east, _ = tiles.footprints[i].bounds
        if tiles.epsg[i] == 32632:
            assert east <= 12.0 + 1e-7
        else:
            assert west >= 12.0 - 1e-7
    for i in clipped:
        cell = tiles.grid.tile_size
        width = tiles.bounds[i, 2] - tiles.bounds[i, 0]
        assert 0 < width < cell
        assert shapely.covers(shapely.box(*tiles.bounds[i]).buffer(1e-6), tiles.native[i])


def test_tile_ids_parse_back_to_the_same_tile() -> None:
    for spec in ["laea-20km", "utm-20km", "EPSG:32633:5000:1234,-20"]:
        grid = grid_from_spec(spec)
        tiles = grid.tiles(load_aoi(SEAM_AOI))
        for tile in list(tiles)[:: max(1, len(tiles) // 7)]:
            again = grid.tile(tile.id)
            assert again.id == tile.id
            assert again.bounds == pytest.approx(tile.bounds)


def test_tile_ids_follow_the_grid_conventions() -> None:
    laea = grid_from_spec("laea-20km").tiles(load_aoi("10,50,10.001,50.001"))
    utm = grid_from_spec("utm-20km").tiles(load_aoi("10,50,10.001,50.001"))
    assert laea.ids.tolist() == ["LAEA20KM-E4320N2980"]
    assert utm.ids.tolist() == ["UTM20KM-32N-E560N5520"]
    south = grid_from_spec("utm-10km").tiles(load_aoi("-58.4,-34.7,-58.39,-34.69"))
    assert south.ids[0].startswith("UTM10KM-21S-") and south.epsg[0] == 32721


def test_unknown_tile_id_is_refused() -> None:
    with pytest.raises(InvalidGrid, match="not of grid"):
        grid_from_spec("laea-20km").tile("UTM20KM-32N-E560N5520")
    with pytest.raises(InvalidGrid, match="lattice"):
        grid_from_spec("laea-20km").tile("LAEA20KM-E4330N2980")


def test_antimeridian_aoi_gets_tiles_on_both_sides() -> None:
    aoi = load_aoi("179.5,-17,-179.5,-16.5")
    tiles = grid_from_spec("utm-20km").tiles(aoi)
    assert set(tiles.epsg.tolist()) == {32760, 32701}
    lon = shapely.get_coordinates(tiles.footprints)[:, 0]
    assert lon.min() >= -180 and lon.max() <= 180
    assert uncovered_fraction(aoi, tiles.footprints) < 1e-6


def test_footprints_crossing_the_antimeridian_are_split() -> None:
    # EPSG:3832 (PDC Mercator) is continuous across 180°: its tiles there must be split in WGS84.
    aoi = load_aoi("179.5,-17,-179.5,-16.5")
    tiles = custom_grid(3832, 20_000).tiles(aoi)
    kinds = {shapely.get_type_id(f) for f in tiles.footprints}
    assert 6 in kinds  # MultiPolygon
    lon = shapely.get_coordinates(tiles.footprints)[:, 0]
    assert lon.min() >= -180 and lon.max() <= 180
    assert uncovered_fraction(aoi, tiles.footprints) < 1e-6


def test_utm_refuses_latitudes_outside_its_range() -> None:
    with pytest.raises(InvalidAOI, match=r"84"):
        grid_from_spec("utm-20km").tiles(load_aoi("10,80,20,85"))
    with pytest.raises(InvalidAOI, match=r"-80"):
        grid_from_spec("utm-10km").tiles(load_aoi("10,-85,20,-75"))


@pytest.mark.parametrize(
    ("spec", "resolution", "message"),
    [
        ("laea-20km", 30, "not a whole number"),
        ("nonsense-grid", None, "unknown grid"),
        ("EPSG:4326:1000", None, "not a projected CRS"),
        ("EPSG:999999:1000", None, "not a known CRS"),
        ("laea-20km", -5, "positive"),
    ],
)
def test_bad_grids_get_clear_errors(spec, resolution, message) -> None:
    with pytest.raises(InvalidGrid, match=message) as err:
        grid_from_spec(spec, resolution=resolution)
    assert err.value.exit_code == 2


def test_negative_buffer_is_refused() -> None:
    with pytest.raises(InvalidGrid, match="buffer"):
        grid_from_spec("laea-20km", buffer_px=-1)


@settings(max_examples=30, deadline=None)
@example(points=[(0.0, 0.0), (0.0, 1.0), (1.0, 0.0)], size=3.0, ox=0.0, oy=5e-324)  # a subnormal origin offset
@example(points=[(0.0, 1.0), (1.0, 0.0), (1.0, 2.8e-184)], size=3.0, ox=0.0, oy=0.0)  # area 0.0 yet an interior
@given(
    points=st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100)), min_size=3, max_size=12),
    size=st.sampled_from([3.0, 7.0, 10.0]),
    ox=st.floats(-5, 5),
    oy=st.floats(-5, 5),
)
def test_coarse_to_fine_masking_equals_a_cell_by_cell_check(points, size, ox, oy) -> None:
    mask = shapely.make_valid(shapely.Polygon(points))
    mask = shapely.union_all([p for p in shapely.get_parts(mask) if shapely.get_type_id(p) == 3] or [shapely.Polygon()])
    hits = cells_in(mask, (ox, oy), size, block=4)
    found = set(zip(hits.col.tolist(), hits.row.tolist(), strict=True))
    expected = set()
    if not mask.is_empty:  # not `mask.area > 0`: GEOS gives a sliver's area as 0.0 whose interior meets a cell
        xmin, ymin, xmax, ymax = mask.bounds
        for c in range(int(np.floor((xmin - ox) / size)) - 1, int(np.ceil((xmax - ox) / size)) + 1):
            for r in range(int(np.floor((ymin - oy) / size)) - 1, int(np.ceil((ymax - oy) / size)) + 1):
                cell = shapely.box(ox + c * size, oy + r * size, ox + (c + 1) * size, oy + (r + 1) * size)
                if mask.intersects(cell) and not mask.touches(cell):
                    expected.add((c, r))
    assert found == expected


def test_grid_file_round_trip(tmp_path) -> None:
    aoi = load_aoi(SEAM_AOI)
    tiles = grid_from_spec("utm-20km", resolution=20).tiles(aoi)
    path = tmp_path / "tiles.geojson"
    tiles.write_geojson(path)
    again = grid_from_spec(str(path), resolution=20).tiles(aoi)
    assert isinstance(again.grid, FileGrid)
    assert again.ids.tolist() == tiles.ids.tolist()
    np.testing.assert_array_equal(again.bounds, tiles.bounds)
    np.testing.assert_array_equal(again.epsg, tiles.epsg)
    smaller = grid_from_spec(str(path), resolution=20).tiles(load_aoi("11.9,47.9,12.1,48.0"))
    assert 0 < len(smaller) < len(again)


def test_grid_file_without_crs_or_bounds_uses_the_utm_zone_of_each_tile(tmp_path) -> None:
    path = tmp_path / "mine.geojson"
    features = [
        {
            "type": "Feature",
            "id": "field-1",
            "properties": {},
            "geometry": shapely.geometry.mapping(shapely.box(11.0, 48.0, 11.1, 48.05)),
        }
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    tiles = grid_from_spec(str(path), resolution=10).tiles(load_aoi("10,47,12,49"))
    assert tiles.ids.tolist() == ["field-1"] and tiles.epsg.tolist() == [32632]
    assert_on_pixels(tiles.bounds, 10.0)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (
            [
                {
                    "type": "Feature",
                    "id": "a b",
                    "properties": {"crs": "EPSG:3035", "bounds": [0, 0, 10, 10]},
                    "geometry": None,
                }
            ],
            "tile id",
        ),
        (
            [
                {
                    "type": "Feature",
                    "id": "a",
                    "properties": {"crs": "EPSG:3035", "bounds": [0, 0, 15, 10]},
                    "geometry": None,
                }
            ],
            "multiples",
        ),
        (
            [
                {
                    "type": "Feature",
                    "id": "a",
                    "properties": {"crs": "EPSG:4326", "bounds": [0, 0, 10, 10]},
                    "geometry": None,
                }
            ],
            "projected",
        ),
        (
            [
                {
                    "type": "Feature",
                    "id": "a",
                    "properties": {"crs": "EPSG:3035", "bounds": [0, 0, 10, 10]},
                    "geometry": None,
                }
            ]
            * 2,
            "repeat",
        ),
        ([], "no tiles"),
    ],
)
def test_bad_grid_files_get_clear_errors(tmp_path, features, message) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(InvalidGrid, match=message) as err:
        grid_from_spec(str(path), resolution=10).tiles(load_aoi("0,40,1,41"))
    assert str(path) in str(err.value)


def test_utm_grid_needs_whole_kilometre_tiles() -> None:
    with pytest.raises(InvalidGrid, match="kilometres"):
        UTMGrid("utm-x", "UTMX", 1500.0, 10.0)


@settings(max_examples=40, deadline=None)
@given(
    ox=st.integers(-99_999, 99_999).map(lambda v: v / 1000),
    oy=st.integers(-99_999, 99_999).map(lambda v: v / 8),
    size=st.sampled_from(["5000", "2500.5", "1000"]),
)
def test_every_id_of_a_custom_grid_with_a_fractional_origin_maps_back_to_its_tile(ox, oy, size) -> None:
    grid = grid_from_spec(f"EPSG:32633:{size}:{ox},{oy}", resolution=0.5)
    tiles = grid.tiles(load_aoi("15,50,15.1,50.1"))
    assert len(set(tiles.ids.tolist())) == len(tiles), "ids are unique"
    for i in range(len(tiles)):
        assert grid.tile(str(tiles.ids[i])).bounds == tiles[i].bounds


@pytest.mark.parametrize("spec", ["utm-10km", "utm-100km", "EPSG:3857:50000"])
def test_tile_areas_are_the_geodesic_areas_of_their_footprints(spec) -> None:
    # measured without densifying or projecting a footprint (UTM: box area over the areal scale); the
    # reference is pyproj's geodesic area on the WGS84 ellipsoid of the footprints, densified finely
    from pyproj import Geod

    grid, geod = grid_from_spec(spec), Geod(ellps="WGS84")
    for bbox in ("11.9,-1,12.1,1", "5.5,69.5,6.5,70.5", "-0.5,47,0.5,48"):  # seam at the equator, 70°N, a seam
        tiles = grid.tiles(load_aoi(bbox))
        reference = np.array(
            [abs(geod.geometry_area_perimeter(shapely.segmentize(f, 0.002))[0]) / 1e6 for f in tiles.footprints]
        )
        whole = np.ones(len(tiles), dtype=bool)
        whole[tiles._clipped_index] = False  # clipped at a seam: the equal-area measure of the footprint
        np.testing.assert_allclose(tiles.areas_km2[whole], reference[whole], rtol=1e-6)
        np.testing.assert_allclose(tiles.areas_km2[~whole], reference[~whole], rtol=2e-5)
        assert whole.any() or spec == "utm-100km"  # whose tiles all cross a seam here


def test_the_aoi_inside_a_zone_is_the_aoi_cut_at_the_zone() -> None:
    # islands inside zones, across seams and on the equator: taken whole or cut, never lost or doubled
    from ogc_upscaler.grid.utm import _Pieces, zone_boxes

    rng = np.random.default_rng(3)
    centres = np.column_stack([rng.uniform(4, 22, 300), rng.uniform(-3, 3, 300)])
    islands = shapely.union_all(shapely.buffer(shapely.points(centres), rng.uniform(0.05, 0.6, 300)))
    pieces = _Pieces(islands)
    _, boxes = zone_boxes()
    for box in boxes:
        ours, reference = pieces.within(box), shapely.intersection(islands, box)
        assert abs(ours.area - reference.area) <= 1e-9 * max(reference.area, 1e-9)
        assert shapely.symmetric_difference(ours, reference).area <= 1e-9 * max(reference.area, 1e-9)


def test_a_cell_told_inside_its_zone_without_geos_is_inside_it() -> None:
    # the seam prefilter of UTM clipping: never wrong, and it places nearly every cell (the rest go to GEOS)
    from ogc_upscaler.grid.utm import _surely_inside, zone_boxes
    from ogc_upscaler.projection import WGS84, densify_degrees, project

    codes, boxes = zone_boxes()
    rng = np.random.default_rng(5)
    for k in (0, 30, 59, 60, 90, 119):  # zones 1, 31 and 60, north and south: seams, equator, 84°N, 80°S
        epsg = int(codes[k])
        zone = project(densify_degrees(boxes[k]), WGS84, epsg)
        west, south, east, north = zone.bounds
        size = rng.choice([10.0, 1000.0, 10_000.0], 20_000)
        x, y = rng.uniform(west - 1e4, east, 20_000), rng.uniform(south - 1e4, north, 20_000)
        bounds = np.column_stack([x, y, x + size, y + size])
        told = _surely_inside(bounds, boxes[k], epsg)
        exact = shapely.contains(zone, shapely.box(*bounds.T))
        assert not (told & ~exact).any()
        assert told.sum() >= 0.999 * exact.sum()


@pytest.mark.parametrize(("epsg", "size"), [(3035, 20_000.0), (32632, 10_000.0), (32601, 100_000.0)])
def test_footprints_built_from_arrays_are_the_densified_boxes_and_neighbours_share_their_edges(epsg, size) -> None:
    from ogc_upscaler.projection import boxes_to_wgs84, to_wgs84

    west, south = (4_000_000.0, 2_000_000.0) if epsg == 3035 else (100_000.0, 5_000_000.0)
    col, row = np.meshgrid(np.arange(4), np.arange(3))
    x, y = west + col.ravel() * size, south + row.ravel() * size
    bounds = np.column_stack([x, y, x + size, y + size])
    ours, reference = boxes_to_wgs84(bounds, epsg, 10.0), to_wgs84(shapely.box(*bounds.T), epsg, 10.0)
    assert shapely.equals_exact(ours, reference, tolerance=1e-9).all()
    right_edge = shapely.get_coordinates(ours[0])[: len(shapely.get_coordinates(ours[0])) // 4 + 1]
    neighbour = {tuple(p) for p in shapely.get_coordinates(ours[1])}
    assert all(tuple(p) in neighbour for p in right_edge), "the shared edge's vertices, to the bit"
