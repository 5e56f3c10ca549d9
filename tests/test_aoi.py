"""AOI input: every accepted form, and a clear error for every bad one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
import shapely.geometry
from hypothesis import given, settings
from hypothesis import strategies as st

from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.errors import InvalidAOI

SQUARE = [[[10, 45], [11, 45], [11, 46], [10, 46], [10, 45]]]


def write(tmp_path, obj, name="aoi.geojson"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "Polygon", "coordinates": SQUARE},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": SQUARE}},
        {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": SQUARE}}],
        },
        {"type": "MultiPolygon", "coordinates": [SQUARE]},
        {
            "type": "Polygon",
            "coordinates": SQUARE,
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        },
    ],
)
def test_geojson_forms_give_the_same_area(tmp_path, obj) -> None:
    aoi = load_aoi(write(tmp_path, obj))
    assert aoi.area_km2 == pytest.approx(load_aoi("10,45,11,46").area_km2)
    assert not aoi.warnings


def test_wkt_and_inline_geojson() -> None:
    assert load_aoi("POLYGON((10 45, 11 45, 11 46, 10 46, 10 45))").geometry.equals(shapely.box(10, 45, 11, 46))
    assert load_aoi({"type": "Polygon", "coordinates": SQUARE}).source == "inline GeoJSON"


def test_relative_paths_resolve_against_the_base_dir(tmp_path) -> None:
    write(tmp_path, {"type": "Polygon", "coordinates": SQUARE})
    assert load_aoi("aoi.geojson", base_dir=tmp_path).area_km2 > 0


def test_bbox_across_the_antimeridian_is_split() -> None:
    aoi = load_aoi("170,-20,-170,-10")
    assert aoi.geometry.geom_type == "MultiPolygon"
    assert aoi.area_km2 == pytest.approx(load_aoi("-10,-20,10,-10").area_km2, rel=1e-6)


def test_polygon_jumping_across_the_antimeridian_is_split(tmp_path) -> None:
    ring = [[[170, -20], [-170, -20], [-170, -10], [170, -10], [170, -20]]]
    aoi = load_aoi(write(tmp_path, {"type": "Polygon", "coordinates": ring}))
    assert aoi.geometry.geom_type == "MultiPolygon"
    assert aoi.area_km2 == pytest.approx(load_aoi("170,-20,-170,-10").area_km2, rel=1e-6)


def test_self_intersection_is_repaired_with_a_warning_that_says_so(tmp_path) -> None:
    bowtie = [[[10, 45], [11, 46], [11, 45], [10, 46], [10, 45]]]
    path = write(tmp_path, {"type": "Polygon", "coordinates": bowtie})
    aoi = load_aoi(path)
    assert aoi.geometry.is_valid and aoi.area_km2 > 0
    (warning,) = aoi.warnings
    assert str(path) in warning and "Self-intersection" in warning and "repaired" in warning


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type": "Polygon", "coordinates": [[[10, 45], [11, 45]', "not valid JSON at line 1, column"),
        ({"type": "FeatureCollection", "features": []}, "holds no geometry"),
        ({"type": "Feature", "properties": {}, "geometry": None}, "holds no geometry"),
        ({"type": "Polygon", "coordinates": []}, "empty"),
        ({"type": "Polygon", "coordinates": [[[10, 45], [11, 45], [10, 45]]]}, "not a valid GeoJSON geometry"),
        (
            {
                "type": "Polygon",
                "coordinates": [[[500000, 5000000], [510000, 5000000], [510000, 5010000], [500000, 5000000]]],
            },
            "outside WGS84 ranges",
        ),
        ({"type": "Polygon", "coordinates": [[[10, 95], [11, 95], [11, 96], [10, 95]]]}, "outside WGS84 ranges"),
        (
            {"type": "Polygon", "coordinates": SQUARE, "crs": {"type": "name", "properties": {"name": "EPSG:99999"}}},
            "its CRS is not understood",
        ),
        ({"type": "Point", "coordinates": [10, 45]}, "no area"),
        ({"type": "Polygon", "coordinates": [[[10, 45], [11, 45], [12, 45], [10, 45]]]}, "no area"),
        ({"type": "Topology"}, "not a GeoJSON Geometry"),
        ([1, 2], "not a GeoJSON object"),
    ],
)
def test_bad_geojson_files_get_clear_errors(tmp_path, content, message) -> None:
    path = write(tmp_path, content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(InvalidAOI, match=message) as err:
        load_aoi(path)
    assert str(path) in err.value.message
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("10,46,11,45", "south"),
        ("10,45,10,46", "empty"),
        ("10,45,191,46", "outside"),
        ("missing.geojson", "no such file"),
        ("POLYGON((10 45, 11 45", "not readable as WKT"),
    ],
)
def test_bad_bbox_wkt_or_path_get_clear_errors(spec, message) -> None:
    with pytest.raises(InvalidAOI, match=message) as err:
        load_aoi(spec)
    assert err.value.hint


def test_a_ring_around_a_pole_is_refused() -> None:
    band = "POLYGON((-180 70, -90 70, 0 70, 90 70, 180 70, 180 80, -180 80, -180 70))"
    assert load_aoi(band).area_km2 == pytest.approx(load_aoi("-180,70,180,80").area_km2, rel=1e-6)
    with pytest.raises(InvalidAOI, match="pole"):
        load_aoi("POLYGON((0 80, 120 80, -120 80, 0 80))")


# -- country files: FeatureCollections of Polygon, MultiPolygon and GeometryCollection features ----------


def _border(x0: float, x1: float, y: float, n: int = 40) -> list[list[float]]:
    """A wavy border from (x0, y) to (x1, y), shared vertex for vertex by the countries on both sides."""
    xs = np.linspace(x0, x1, n)
    return [[float(x), float(y + 0.15 * np.sin(7 * x))] for x in xs]


def _countries() -> dict:
    """Country-like admin-0 features: neighbours sharing wavy borders, a country with islands (a
    MultiPolygon), one with a hole that an enclave fills (as Lesotho in South Africa), one with an inland
    lake that nothing fills, and a GeometryCollection feature; the three kinds mixed."""
    north = _border(0, 4, 48)
    south = [[x, y - 2] for x, y in _border(0, 4, 48)]
    west = {
        "type": "Polygon",
        "coordinates": [[*north[:20], [north[19][0], south[19][1]], *south[:20][::-1], north[0]]],
    }
    east = {
        "type": "Polygon",
        "coordinates": [[*north[19:], [4, 44], [1.9, 44], [north[19][0], south[19][1]], north[19]]],
    }
    islands = {
        "type": "MultiPolygon",
        "coordinates": [
            [[*south[::-1], [0, 44.5], [4, 44.5], south[-1]]],  # the mainland, bordering west and east
            [[[6, 44], [6.5, 44], [6.5, 44.4], [6, 44.4], [6, 44]]],  # an island
            [[[7, 45], [7.2, 45], [7.2, 45.1], [7, 45]]],  # another
        ],
    }
    outer = [[10, 44], [13, 44], [13, 47], [10, 47], [10, 44]]
    hole = [[11, 45], [11, 46], [12, 46], [12, 45], [11, 45]]
    lake = [[12.2, 44.2], [12.2, 44.6], [12.6, 44.6], [12.6, 44.2], [12.2, 44.2]]
    with_holes = {"type": "Polygon", "coordinates": [outer, hole, lake]}
    enclave = {"type": "Polygon", "coordinates": [hole[::-1]]}
    collection = {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [20, 40]}, enclave]}
    kinds = [west, east, islands, with_holes, collection]
    return {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"n": i}, "geometry": g} for i, g in enumerate(kinds)],
    }


def test_a_country_file_is_the_union_of_every_polygonal_part_and_drops_none(tmp_path) -> None:
    countries = _countries()
    aoi = load_aoi(write(tmp_path, countries))
    assert aoi.warnings == (), "touching and shared borders are fine: nothing to repair"
    parts = [shapely.geometry.shape(f["geometry"]) for f in countries["features"]]
    union = shapely.union_all([p for g in parts for p in shapely.get_parts(g) if p.geom_type != "Point"])
    assert aoi.geometry.is_valid and shapely.equals_exact(
        shapely.normalize(aoi.geometry), shapely.normalize(union), 1e-9
    )
    assert aoi.geometry.area == pytest.approx(union.area, rel=1e-12)
    assert len(shapely.get_parts(aoi.geometry)) == 4, "the mainland block, two islands, the holed country filled"
    (block,) = [p for p in shapely.get_parts(aoi.geometry) if p.covers(shapely.Point(11.5, 45.5))]
    assert len(block.interiors) == 1, "the enclave fills its hole; the lake stays one"
    assert aoi.geometry.covers(shapely.Point(6.2, 44.2)), "the island of a MultiPolygon feature is kept"


def test_every_feature_a_multipolygon_is_an_area(tmp_path) -> None:
    features = [{"type": "Feature", "properties": {}, "geometry": {"type": "MultiPolygon", "coordinates": [SQUARE]}}]
    assert load_aoi(write(tmp_path, {"type": "FeatureCollection", "features": features})).area_km2 > 8000


def test_an_invalid_country_is_repaired_alone_and_said(tmp_path) -> None:
    bow = {"type": "Polygon", "coordinates": [[[20, 45], [21, 46], [21, 45], [20, 46], [20, 45]]]}
    countries = _countries()
    countries["features"].append({"type": "Feature", "properties": {}, "geometry": bow})
    aoi = load_aoi(write(tmp_path, countries))
    (warning,) = aoi.warnings
    assert "1 of 8 polygons invalid (Self-intersection)" in warning and "repaired" in warning
    assert aoi.geometry.covers(shapely.Point(20.1, 45.5)) and aoi.geometry.covers(shapely.Point(6.2, 44.2))


@st.composite
def _features(draw) -> list[dict]:
    """Random mixes of boxes as Polygon, MultiPolygon and GeometryCollection features, overlapping or not."""
    features = []
    for _ in range(draw(st.integers(1, 6))):
        boxes = []
        for _ in range(draw(st.integers(1, 3))):
            x, y = draw(st.integers(-20, 20)) / 4, draw(st.integers(-20, 20)) / 4
            w, h = draw(st.integers(1, 12)) / 4, draw(st.integers(1, 12)) / 4
            boxes.append(json.loads(shapely.to_geojson(shapely.box(x, y, x + w, y + h))))
        kind = draw(st.sampled_from(["Polygon", "MultiPolygon", "GeometryCollection"]))
        if kind == "Polygon":
            geometries = [b for b in boxes]
        elif kind == "MultiPolygon":
            geometries = [{"type": "MultiPolygon", "coordinates": [b["coordinates"] for b in boxes]}]
        else:
            geometries = [{"type": "GeometryCollection", "geometries": boxes}]
        features += [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries]
    return features


@settings(max_examples=60, deadline=None)
@given(_features())
def test_any_mix_of_features_is_the_union_of_their_polygons(features) -> None:
    aoi = load_aoi({"type": "FeatureCollection", "features": features})
    shapes = [shapely.geometry.shape(f["geometry"]) for f in features]
    union = shapely.union_all([p for g in shapes for p in shapely.get_parts(shapely.get_parts(g))])
    assert aoi.geometry.is_valid
    assert aoi.geometry.area == pytest.approx(union.area, rel=1e-9)
    assert shapely.symmetric_difference(aoi.geometry, union).area == pytest.approx(0, abs=1e-9)


# -- the antimeridian ----------------------------------------------------------------------------------


def test_a_clear_crossing_is_split_without_a_word(tmp_path) -> None:
    ring = [[179, -17], [-179, -17], [-179, -16], [179, -16], [179, -17]]  # Fiji-like: 2° across the dateline
    aoi = load_aoi(write(tmp_path, {"type": "Polygon", "coordinates": [ring]}))
    assert aoi.warnings == () and len(shapely.get_parts(aoi.geometry)) == 2
    assert aoi.area_km2 == pytest.approx(2 * 111.3 * 106.6, rel=0.02)


def test_an_edge_spanning_more_than_half_the_globe_is_read_as_crossing_with_a_warning_naming_it(tmp_path) -> None:
    wide = [[-100, 0], [100, 0], [100, 10], [-100, 10], [-100, 0]]  # drawn counter-clockwise, 200° wide
    clear = [[170, 40], [-170, 40], [-170, 41], [170, 41], [170, 40]]
    features = [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [g]}}
        for g in (clear, wide)
    ]
    aoi = load_aoi(write(tmp_path, {"type": "FeatureCollection", "features": features}))
    (warning,) = aoi.warnings
    assert (
        "features[1].geometry, polygon 0, ring 0: the edge from (-100, 0) to (100, 0) spans 200° of longitude"
        in warning
    )
    assert "read as crossing the antimeridian" in warning and "add vertices" in warning
    assert aoi.geometry.covers(shapely.Point(150, 5)) and not aoi.geometry.covers(shapely.Point(0, 5))


def test_the_same_area_with_vertices_every_90_degrees_is_read_as_drawn(tmp_path) -> None:
    ring = [[-100, 0], [0, 0], [100, 0], [100, 10], [0, 10], [-100, 10], [-100, 0]]
    aoi = load_aoi(write(tmp_path, {"type": "Polygon", "coordinates": [ring]}))
    assert aoi.warnings == () and aoi.geometry.covers(shapely.Point(0, 5))


def test_a_rounding_error_beyond_180_degrees_is_snapped_and_a_real_excess_refused(tmp_path) -> None:
    # Natural Earth's 1:10m land reaches longitude 180.00000000000014 on Antarctica's and Chukotka's edges
    over = 180.0 + 1.4210854715202004e-13
    ring = [[179.0, 65.0], [over, 65.0], [over, 66.0], [179.0, 66.0], [179.0, 65.0]]
    aoi = load_aoi({"type": "Polygon", "coordinates": [ring]})
    assert aoi.bounds[2] == 180.0 and aoi.area_km2 > 0 and aoi.warnings == ()
    ring = [[179.0, 65.0], [180.001, 65.0], [180.001, 66.0], [179.0, 66.0], [179.0, 65.0]]
    with pytest.raises(InvalidAOI, match=r"outside WGS84 ranges"):
        load_aoi({"type": "Polygon", "coordinates": [ring]})
