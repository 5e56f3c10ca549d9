"""AOI input: every accepted form, and a clear error for every bad one."""

from __future__ import annotations

import json

import pytest
import shapely

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
            {"type": "Polygon", "coordinates": SQUARE, "crs": {"type": "name", "properties": {"name": "EPSG:3035"}}},
            "only WGS84",
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
