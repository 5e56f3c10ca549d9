"""Areas from the files boundaries are published in: GeoPackage, Shapefile, FlatGeobuf, GeoParquet and
GeoJSON, in a projected CRS, with a layer and an attribute filter (in the config and on the command line)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
import shapely.geometry
import yaml
from click.testing import CliRunner

from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.cli import cli
from ogc_upscaler.errors import InvalidAOI
from ogc_upscaler.projection import WGS84, project

from .test_aoi import _countries

CODES = ["FRA", "DEU", "ITA", "AUT", "SMR"]


def _laea() -> tuple[np.ndarray, np.ndarray]:
    """The country-like features in EPSG:3035 (as EEA and Eurostat publish boundaries), with their codes."""
    shapes = np.asarray([shapely.geometry.shape(f["geometry"]) for f in _countries()["features"]], dtype=object)
    polygonal = np.empty(len(shapes), dtype=object)
    polygonal[:] = [shapely.union_all([p for p in shapely.get_parts(g) if p.area > 0]) for g in shapes]
    return project(shapely.segmentize(polygonal, 0.05), WGS84, 3035), np.asarray(CODES, dtype=object)


def _write(path: Path, driver: str, layer: str | None = None) -> Path:
    geometries, codes = _laea()
    multi = np.asarray([shapely.MultiPolygon(list(shapely.get_parts(g))) for g in geometries], dtype=object)
    pyogrio.raw.write(
        path, shapely.to_wkb(multi), [codes, np.arange(len(codes))], ["iso_a3", "rank"],
        driver=driver, geometry_type="MultiPolygon", crs="EPSG:3035", layer=layer, append=path.exists(),
    )  # fmt: skip
    return path


def _parquet(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    geometries, codes = _laea()
    crs = json.loads(__import__("pyproj").CRS.from_epsg(3035).to_json())
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB", "crs": crs}}}
    table = pa.table(
        {"iso_a3": list(codes), "rank": list(range(len(codes))), "geometry": list(shapely.to_wkb(geometries))}
    )
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo).encode()}), path)
    return path


def _reference(codes: list[str] | None = None) -> shapely.Geometry:
    """The union of the selected countries, reprojected independently of the code under test."""
    geometries, names = _laea()
    keep = [g for g, n in zip(geometries, names, strict=True) if codes is None or n in codes]
    return shapely.union_all(project(shapely.segmentize(np.asarray(keep), 2500.0), 3035, WGS84))


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("countries.gpkg", lambda p: _write(p, "GPKG")),
        ("countries.shp", lambda p: _write(p, "ESRI Shapefile")),
        ("countries.fgb", lambda p: _write(p, "FlatGeobuf")),
        ("countries.geojson", lambda p: _write(p, "GeoJSON")),
        ("countries.parquet", _parquet),
    ],
)
def test_each_format_gives_the_union_of_its_countries_in_wgs84(tmp_path, name, write) -> None:
    path = write(tmp_path / name)
    where = "iso_a3 IN ('FRA', 'DEU')"
    for codes, aoi in [(None, load_aoi(path)), (["FRA", "DEU"], load_aoi(path, where=where))]:
        reference = _reference(codes)
        assert aoi.warnings == ()
        assert shapely.symmetric_difference(aoi.geometry, reference).area < 1e-9 * reference.area
        minx, _, maxx, _ = aoi.bounds
        assert minx > -10 and maxx < 30, "longitude and latitude, not metres"


def test_a_layer_is_chosen_by_name_and_several_layers_need_one(tmp_path) -> None:
    path = _write(tmp_path / "boundaries.gpkg", "GPKG", layer="admin0")
    _write(path, "GPKG", layer="coastline")
    with pytest.raises(InvalidAOI, match=r"holds 2 layers \(admin0, coastline\); which one is the area\?"):
        load_aoi(path)
    with pytest.raises(InvalidAOI, match="no layer 'admin1'") as err:
        load_aoi(path, layer="admin1")
    assert "admin0, coastline" in (err.value.hint or "")
    assert load_aoi(path, layer="admin0").area_km2 == pytest.approx(load_aoi(path, layer="coastline").area_km2)


def _wgs84_geojson(path: Path) -> Path:
    """The country-like features as a WGS84 GeoJSON file (RFC 7946), with their codes."""
    collection = _countries()
    for feature, code in zip(collection["features"], CODES, strict=True):
        feature["properties"] = {"iso_a3": code}
    path.write_text(json.dumps(collection))
    return path


def test_a_wgs84_geojson_filter_is_run_without_gdal_and_selects_what_gdal_selects(tmp_path) -> None:
    import subprocess
    import sys

    path = _wgs84_geojson(tmp_path / "countries.geojson")
    where = "iso_a3 IN ('FRA', 'DEU') OR iso_a3 LIKE 'sm%'"  # SQLite's SQL, as a GeoPackage takes it
    ours = load_aoi(path, where=where)
    package = load_aoi(_write(tmp_path / "countries.gpkg", "GPKG"), where=where)  # through GDAL
    assert [p["iso_a3"] for p in ours.properties] == [p["iso_a3"] for p in package.properties]
    assert [p["iso_a3"] for p in ours.properties] == ["FRA", "DEU", "SMR"], "LIKE ignores case, as in SQLite"
    chosen = [f for f, code in zip(_countries()["features"], CODES, strict=True) if code in {"FRA", "DEU", "SMR"}]
    reference = shapely.union_all([shapely.make_valid(shapely.geometry.shape(f["geometry"])) for f in chosen])
    assert shapely.symmetric_difference(ours.geometry, reference).area < 1e-9 * reference.area
    script = (
        f"from ogc_upscaler.aoi import load_aoi; import sys; load_aoi({str(path)!r}, where={where!r}); "
        "print(sorted(m for m in ('pyogrio', 'pandas', 'pyarrow') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", "GDAL's reader (and the pandas it imports) is not loaded: 0.5 s"


@pytest.mark.parametrize("name", ["countries.gpkg", "countries.parquet", "countries.geojson"])
def test_a_filter_that_selects_nothing_or_is_not_sql_is_said(tmp_path, name) -> None:
    writers = {".gpkg": lambda p: _write(p, "GPKG"), ".parquet": _parquet, ".geojson": _wgs84_geojson}
    path = writers[Path(name).suffix](tmp_path / name)
    with pytest.raises(InvalidAOI, match=r"no feature where \"iso_a3 = 'ESP'\""):
        load_aoi(path, where="iso_a3 = 'ESP'")
    with pytest.raises(InvalidAOI, match="attribute filter") as err:
        load_aoi(path, where="iso_a3 ==== 'FRA'")
    assert "iso_a3 IN" in (err.value.hint or "")


def test_the_config_and_the_command_line_take_the_file_its_layer_and_filter(tmp_path) -> None:
    from ogc_upscaler.config import load_campaign

    from .conftest import write_config

    path = _write(tmp_path / "boundaries.gpkg", "GPKG", layer="admin0")
    config = write_config(tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["aoi"] = {"file": "boundaries.gpkg", "layer": "admin0", "where": "iso_a3 = 'ITA'"}
    config.write_text(yaml.safe_dump(raw))
    italy = _reference(["ITA"])
    assert shapely.symmetric_difference(load_campaign(config).aoi.geometry, italy).area < 1e-9 * italy.area
    result = CliRunner().invoke(
        cli, ["grid", "--aoi", str(path), "--layer", "admin0", "--where", "iso_a3 = 'ITA'", "--grid", "laea-20km"]
    )
    assert result.exit_code == 0, result.output
    tiles = load_aoi(str(path), layer="admin0", where="iso_a3 = 'ITA'")
    assert f"covering an AOI of {tiles.area_km2:,.0f} km²" in result.output
