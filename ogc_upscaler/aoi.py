"""Areas of interest: reading them from GeoJSON, a bbox or WKT, and checking them.

An :class:`AOI` is always a valid, non-empty polygonal geometry in WGS84 with
longitudes in [-180, 180]; one that crosses the antimeridian is split there.

>>> aoi = load_aoi("11.5,47.5,12.5,48.0")
>>> round(aoi.area_km2)
4169
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from ogc_upscaler.errors import InvalidAOI
from ogc_upscaler.projection import ambiguous_crossings, area_km2, crosses_pole, lonlat_box, split_antimeridian_one

#: File name endings read as GeoJSON here (ring by ring, with errors naming the feature).
GEOJSON = (".geojson", ".json")
#: shapely's type ids from which a geometry has parts: MultiPoint, MultiLineString, MultiPolygon, GeometryCollection.
MULTIPART = 4
_NUMBER = r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*"
_BBOX = re.compile(rf"^{_NUMBER}(?:,{_NUMBER}){{3}}$")
_WKT = re.compile(r"^\s*(MULTI)?POLYGON\b|^\s*GEOMETRYCOLLECTION\b|^\s*(MULTI)?(POINT|LINESTRING)\b", re.I)
_WGS84_CRS_NAMES = {
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "urn:ogc:def:crs:EPSG::4326",
    "urn:ogc:def:crs:EPSG:4326",
    "EPSG:4326",
}
_HINT_RANGES = (
    "use WGS84 longitude, latitude in degrees (longitude in [-180, 180], latitude in [-90, 90]); "
    "an area across the antimeridian is written with longitudes jumping from 180 to -180, or as a bbox with W > E"
)


@dataclass(frozen=True)
class AOI:
    """A polygonal area of interest in WGS84."""

    geometry: shapely.Geometry
    source: str
    warnings: tuple[str, ...] = field(default=())
    #: The features it was made of, when they have properties (a country file): WGS84 geometries
    #: and their properties, for the tiles' attributes (``{tile.props.NAME}``).
    features: tuple[shapely.Geometry, ...] = field(default=(), compare=False, repr=False)
    properties: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """West, south, east, north in degrees (parts split at the antimeridian span the globe)."""
        return tuple(self.geometry.bounds)  # type: ignore[return-value]

    @property
    def area_km2(self) -> float:
        """The area in km², measured in an equal-area projection."""
        return float(area_km2(np.asarray([self.geometry]))[0])

    def to_geojson(self) -> dict[str, Any]:
        """The AOI as a GeoJSON geometry object."""
        return json.loads(shapely.to_geojson(self.geometry))


def load_aoi(
    spec: str | Path | Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    layer: str | None = None,
    where: str | None = None,
) -> AOI:
    """Read an AOI from a bbox ``W,S,E,N``, WKT, a vector file's path, a GeoJSON mapping, or a mapping
    ``{file: PATH, layer: NAME, where: SQL}`` naming a file's layer and the features to take.

    A relative file path is resolved against ``base_dir`` when given. ``layer`` and ``where`` apply to a
    file (GeoPackage, Shapefile, FlatGeobuf, GeoParquet, GeoJSON).
    """
    if isinstance(spec, Mapping) and "file" in spec:
        unknown = sorted(set(spec) - {"file", "layer", "where"})
        if unknown:
            raise InvalidAOI(f"AOI {spec['file']}: unknown key {unknown[0]!r}", hint="give file, layer and where")
        return load_aoi(str(spec["file"]), base_dir=base_dir, layer=spec.get("layer"), where=spec.get("where"))
    if isinstance(spec, Mapping):
        return from_geojson(spec, source="inline GeoJSON")
    text = str(spec)
    if _BBOX.match(text):
        return from_bbox(*(float(v) for v in text.split(",")))
    if _WKT.match(text):
        return from_wkt(text)
    path = Path(text)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    return from_file(path, layer=layer, where=where)


def from_bbox(west: float, south: float, east: float, north: float) -> AOI:
    """An AOI from a WGS84 bbox; ``west > east`` means it crosses the antimeridian."""
    source = f"bbox {west:g},{south:g},{east:g},{north:g}"
    for name, value, limit in (("west", west, 180), ("east", east, 180), ("south", south, 90), ("north", north, 90)):
        if not -limit <= value <= limit:
            raise InvalidAOI(f"AOI {source}: {name} = {value:g} is outside [-{limit}, {limit}]", hint=_HINT_RANGES)
    if south >= north:
        raise InvalidAOI(f"AOI {source}: south ({south:g}) must be below north ({north:g})", hint="give W,S,E,N")
    if west == east:
        raise InvalidAOI(f"AOI {source}: west and east are equal, the area is empty", hint="give W,S,E,N")
    return AOI(lonlat_box(west, south, east, north), source)


def from_wkt(text: str) -> AOI:
    """An AOI from a WKT Polygon or MultiPolygon in WGS84."""
    source = f"WKT {text[:40]}…" if len(text) > 40 else f"WKT {text}"
    try:
        geom = shapely.from_wkt(text)
    except shapely.errors.GEOSException as err:
        raise InvalidAOI(
            f"AOI {source}: not readable as WKT: {err}", hint="write e.g. POLYGON((lon lat, ...))"
        ) from None
    return _checked(geom, source)


def from_file(path: Path, *, layer: str | None = None, where: str | None = None) -> AOI:
    """An AOI from a vector file: the union of the polygons of its features (those of ``layer`` that
    ``where`` selects), reprojected to WGS84 from the file's CRS. A WGS84 GeoJSON file is read here, checked
    ring by ring, ``where`` run by SQLite over its features' properties; other files through GDAL
    (:mod:`~ogc_upscaler.vector_file`)."""
    source = str(path) + (f" (where {where})" if where else "")
    if not path.exists():
        raise InvalidAOI(
            f"AOI {path}: no such file, and not a bbox W,S,E,N or WKT either",
            hint="give a vector file's path (GeoJSON, GeoPackage, Shapefile, FlatGeobuf, GeoParquet), a bbox "
            "such as 10.5,45.0,11.5,46.0, or a WKT POLYGON",
        )
    if path.suffix.lower() not in GEOJSON or layer is not None:
        return _through_gdal(path, layer, where, source)
    try:
        obj = _read_json(path)
    except UnicodeDecodeError:
        raise InvalidAOI(f"AOI {source}: not a text file", hint="give a GeoJSON file") from None
    except json.JSONDecodeError as err:
        raise InvalidAOI(
            f"AOI {source}: not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}",
            hint="fix the JSON syntax (a GeoJSON validator or `python -m json.tool FILE` shows where)",
        ) from None
    if not isinstance(obj, Mapping):
        raise InvalidAOI(f"AOI {source}: the JSON is a {type(obj).__name__}, not a GeoJSON object")
    if _names_other_crs(obj):  # GeoJSON of 2008 in a projected CRS, as GDAL writes it: GDAL reprojects it
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        name = _crs_name(obj)
        try:
            CRS.from_user_input(name)
        except CRSError:  # GDAL would read the coordinates as WGS84 without a word
            raise InvalidAOI(
                f"AOI {source}: its CRS is not understood: the 'crs' member names {name!r}",
                hint="name an EPSG CRS (urn:ogc:def:crs:EPSG::3035), or reproject the file to WGS84 (RFC 7946)",
            ) from None

        return _through_gdal(path, None, where, source)
    if where is not None:
        obj = _selected(obj, where, path)
    return from_geojson(obj, source=source)


def _read_json(path: Path) -> Any:
    """A JSON file parsed by orjson (a country file in a third of json's time); a file orjson refuses is
    parsed again by json, whose error says the line and column, and which takes what JSON's grammar
    tolerates in Python (NaN)."""
    import orjson

    data = path.read_bytes()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data.decode("utf-8"))


def _through_gdal(path: Path, layer: str | None, where: str | None, source: str) -> AOI:
    from ogc_upscaler.vector_file import read_features

    features = read_features(path, layer=layer, where=where)
    named = tuple(f"feature {i}" for i in range(len(features.geometries)))
    aoi = _checked(shapely.geometrycollections(features.geometries), source, named)
    return _with_features(aoi, list(features.geometries), list(features.properties))


def _selected(obj: Mapping[str, Any], where: str, path: Path) -> dict[str, Any]:
    """The features of a GeoJSON object whose properties the SQL ``where`` selects, as a FeatureCollection."""
    from ogc_upscaler.vector_file import select

    if obj.get("type") == "FeatureCollection":
        features = [f for f in obj.get("features") or [] if isinstance(f, Mapping)]
    elif obj.get("type") == "Feature":
        features = [obj]
    else:
        features = [{"type": "Feature", "geometry": obj, "properties": {}}]
    rows = [dict(f.get("properties") or {}) for f in features]
    keep = select(path, rows, where).tolist()
    if not keep:
        raise InvalidAOI(
            f"AOI {path}: no feature where {where!r} in the file",
            hint="check the attribute filter against the file's values (ogrinfo -so shows the fields)",
        )
    return {"type": "FeatureCollection", "features": [features[i] for i in keep]}


def from_geojson(obj: Mapping[str, Any], *, source: str) -> AOI:
    """An AOI from a GeoJSON Geometry, Feature or FeatureCollection mapping (WGS84)."""
    _check_crs_member(obj, source)
    geometries = list(_geojson_geometries(obj, source))
    if not geometries:
        raise InvalidAOI(f"AOI {source}: holds no geometry", hint="give at least one Polygon or MultiPolygon")
    shapes = []
    for where, geom in geometries:
        _check_rings(geom, f"AOI {source}: {where}")
        try:
            shapes.append(shape(geom))
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, shapely.errors.GEOSException) as err:
            raise InvalidAOI(
                f"AOI {source}: {where} is not a valid GeoJSON geometry ({err})",
                hint="each ring needs at least 4 [lon, lat] positions, the first equal to the last",
            ) from None
    if len(shapes) == 1:
        aoi = _checked(shapes[0], source, (geometries[0][0],))
    else:
        aoi = _checked(shapely.geometrycollections(shapes), source, tuple(where for where, _ in geometries))
    return _with_features(aoi, shapes, _geojson_properties(obj))


def _with_features(aoi: AOI, shapes: list[shapely.Geometry], properties: list[dict[str, Any]]) -> AOI:
    """``aoi`` keeping its features' geometries and properties, when any feature has some."""
    if len(properties) != len(shapes) or not any(properties):
        return aoi
    return dataclasses.replace(aoi, features=tuple(shapes), properties=tuple(properties))


def _geojson_properties(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The properties of the features that have a geometry, in the order their geometries are read."""
    if obj.get("type") == "FeatureCollection":
        features = [f for f in obj.get("features", []) if isinstance(f, Mapping) and f.get("geometry") is not None]
    elif obj.get("type") == "Feature" and obj.get("geometry") is not None:
        features = [obj]
    else:
        return []
    return [dict(f.get("properties") or {}) for f in features]


def _geojson_geometries(obj: Mapping[str, Any], source: str):
    kind = obj.get("type")
    if kind == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list):
            raise InvalidAOI(f"AOI {source}: FeatureCollection without a 'features' list")
        for i, feature in enumerate(features):
            if not isinstance(feature, Mapping):
                raise InvalidAOI(f"AOI {source}: features[{i}] is not an object")
            _check_crs_member(feature, source)
            if feature.get("geometry") is not None:
                yield f"features[{i}].geometry", feature["geometry"]
    elif kind == "Feature":
        if obj.get("geometry") is not None:
            yield "the Feature's geometry", obj["geometry"]
    elif kind in {
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
    }:
        yield "the geometry", obj
    else:
        raise InvalidAOI(
            f"AOI {source}: 'type' is {kind!r}, not a GeoJSON Geometry, Feature or FeatureCollection",
            hint='the top-level object needs "type": "FeatureCollection", "Feature" or "Polygon"',
        )


def _check_rings(geom: Mapping[str, Any], where: str) -> None:
    """Refuse polygon rings with fewer than 4 positions or not closed, naming the ring."""
    kind, coords = geom.get("type"), geom.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    for p, rings in enumerate(polygons or []):
        for r, ring in enumerate(rings or []):
            name = f"polygon {p}, ring {r}" if kind == "MultiPolygon" else f"ring {r}"
            if not isinstance(ring, list) or len(ring) < 4 or ring[0] != ring[-1]:
                count = len(ring) if isinstance(ring, list) else 0
                raise InvalidAOI(
                    f"{where}: {name} is not a valid GeoJSON geometry ring ({count} positions, "
                    f"{'closed' if count and ring[0] == ring[-1] else 'not closed'})",
                    hint="a ring needs at least 4 [lon, lat] positions, the last equal to the first",
                )


def _crs_name(obj: Mapping[str, Any]) -> Any:
    """What a GeoJSON object's (2008) ``crs`` member names, or None without one."""
    crs = obj.get("crs")
    return crs.get("properties", {}).get("name") if isinstance(crs, Mapping) else crs


def _names_other_crs(obj: Mapping[str, Any]) -> bool:
    return obj.get("crs") is not None and _crs_name(obj) not in _WGS84_CRS_NAMES


def _check_crs_member(obj: Mapping[str, Any], source: str) -> None:
    if obj.get("crs") is None:
        return
    name = _crs_name(obj)
    if name not in _WGS84_CRS_NAMES:
        raise InvalidAOI(
            f"AOI {source}: the 'crs' member names {name!r}; only WGS84 longitude/latitude is accepted",
            hint="reproject the file to WGS84 (EPSG:4326) and drop the 'crs' member, as RFC 7946 asks",
        )


def _checked(geom: shapely.Geometry, source: str, named: tuple[str, ...] = ()) -> AOI:
    """The AOI of ``geom``: the union of all its polygonal parts (features that touch or overlap, such as
    countries sharing borders, merge), each split at the antimeridian and repaired first if invalid.
    ``named`` says where each part of a collection came from (``features[3].geometry``), for warnings."""
    geom = _snapped(geom)
    polygons = _polygons(geom, source)
    warnings = _crossing_warnings(geom, source, named)
    _check_ranges(shapely.multipolygons(polygons), source)
    if crosses_pole(shapely.multipolygons(polygons)):
        raise InvalidAOI(
            f"AOI {source}: a ring encircles a pole", hint="split the area at a meridian into closed parts"
        )
    pieces = _polygons(split_antimeridian_one(shapely.multipolygons(polygons)), source)
    invalid = ~shapely.is_valid(pieces)
    if invalid.any():
        reasons = sorted({shapely.is_valid_reason(p).split("[")[0] for p in pieces[invalid]})
        before = float(area_km2(pieces[invalid]).sum())
        repaired = [q for p in pieces[invalid] for q in _polygons(shapely.make_valid(p), source, empty_ok=True)]
        after = float(area_km2(np.asarray(repaired)).sum()) if repaired else 0.0
        warnings.append(
            f"AOI {source}: {int(invalid.sum())} of {len(pieces)} polygons invalid ({'; '.join(reasons)}); repaired "
            f"with shapely.make_valid ({before:,.1f} km² as drawn, {after:,.1f} km² repaired): check the repaired "
            "AOI on the plan map, or fix the file"
        )
        pieces = np.concatenate([pieces[~invalid], np.asarray(repaired, dtype=object)])
    area = shapely.union_all(pieces) if len(pieces) else shapely.Polygon()
    if area.is_empty or area.area == 0:
        raise InvalidAOI(
            f"AOI {source}: the geometry has no area", hint="give a polygon with at least 3 distinct corners"
        )
    parts = _polygons(area, source)
    return AOI(shapely.multipolygons(parts) if len(parts) > 1 else parts[0], source, tuple(warnings))


def _crossing_warnings(geom: shapely.Geometry, source: str, named: tuple[str, ...]) -> list[str]:
    """One warning per ring whose reading across the antimeridian is ambiguous, naming the feature and ring."""
    members = list(shapely.get_parts(geom)) if len(named) > 1 else [geom]
    warnings = []
    for where, member in zip(named or ("the geometry",), members, strict=False):
        polygons = _polygons(member, source, empty_ok=True)
        for found in ambiguous_crossings(shapely.multipolygons(polygons)) if len(polygons) else []:
            warnings.append(
                f"AOI {source}: {where}, {found}: check the area on the plan map; add vertices so that no edge "
                "spans more than 180° if it lies between, or split it at the antimeridian yourself"
            )
    return warnings


def _polygons(geom: shapely.Geometry, source: str, *, empty_ok: bool = False) -> np.ndarray:
    """Every Polygon in ``geom``, however deeply its collections and multi-part geometries nest (an array)."""
    if geom.is_empty:
        if empty_ok:
            return np.asarray([], dtype=object)
        raise InvalidAOI(f"AOI {source}: the geometry is empty", hint="give a Polygon or MultiPolygon with coordinates")
    parts = shapely.get_parts(geom)
    while (shapely.get_type_id(parts) >= MULTIPART).any():  # multi-part or a collection: open it
        parts = shapely.get_parts(parts)
    polygons = np.asarray([p for p in parts if isinstance(p, shapely.Polygon) and not p.is_empty], dtype=object)
    if not len(polygons) and not empty_ok:
        kinds = sorted({p.geom_type for p in parts})
        raise InvalidAOI(
            f"AOI {source}: holds {', '.join(kinds)} but no area",
            hint="give a Polygon or MultiPolygon; buffer points or lines into polygons first",
        )
    return polygons


#: Degrees by which a coordinate may overshoot ±180° or ±90°, as floating-point arithmetic leaves it in
#: published files (Natural Earth's 1:10m land reaches longitude 180.00000000000014): snapped, not refused.
ROUNDING = 1e-9


def _snapped(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` with coordinates a rounding error beyond the WGS84 ranges put on them."""
    coords = shapely.get_coordinates(geom)
    if not ((np.abs(coords[:, 0]) > 180.0) | (np.abs(coords[:, 1]) > 90.0)).any():
        return geom

    def snap(xy: np.ndarray) -> np.ndarray:
        out = xy.copy()
        for axis, limit in ((0, 180.0), (1, 90.0)):
            near = (np.abs(xy[:, axis]) > limit) & (np.abs(xy[:, axis]) <= limit + ROUNDING)
            out[near, axis] = np.sign(xy[near, axis]) * limit
        return out

    return shapely.transform(geom, snap)


def _check_ranges(geom: shapely.Geometry, source: str) -> None:
    coords = shapely.get_coordinates(geom)
    if not np.all(np.isfinite(coords)):
        raise InvalidAOI(f"AOI {source}: a coordinate is not a finite number", hint=_HINT_RANGES)
    bad = np.flatnonzero((np.abs(coords[:, 0]) > 180.0) | (np.abs(coords[:, 1]) > 90.0))
    if bad.size:
        lon, lat = coords[bad[0]]
        raise InvalidAOI(
            f"AOI {source}: coordinate ({lon:g}, {lat:g}) is outside WGS84 ranges "
            f"({bad.size} of {len(coords)} coordinates are); is it in a projected CRS, or lat/lon swapped?",
            hint=_HINT_RANGES,
        )
