"""Vector files as boundaries are published: GeoPackage, Shapefile, FlatGeobuf and GeoJSON through GDAL
(pyogrio), GeoParquet through pyarrow; one layer, an attribute filter, reprojected to WGS84.

``where`` is SQL: for GDAL's formats OGR's own filter (SQLite's dialect in a GeoPackage); for
GeoParquet, which this machine's GDAL cannot read, and for WGS84 GeoJSON, which :mod:`ogc_upscaler.aoi`
reads itself (without GDAL's 0.5 s of imports), the attributes are put into an in-memory SQLite table
and the filter runs there (:func:`select`), so the same ``iso_a3 IN ('FRA', 'DEU')`` works on all.
Errors from GDAL, pyarrow and SQLite cross into :class:`InvalidAOI` here, naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from ogc_upscaler.errors import InvalidAOI

#: File name endings read through pyarrow as GeoParquet.
PARQUET = (".parquet", ".geoparquet")
#: Longest edge, in metres (or degrees for a geographic CRS), kept before reprojecting to WGS84.
METRES_STEP, DEGREES_STEP = 2500.0, 0.05


@dataclass(frozen=True)
class Features:
    """The features read from a file: WGS84 geometries, their attributes (one mapping each), and the layer."""

    geometries: np.ndarray
    properties: tuple[dict[str, Any], ...]
    layer: str | None


def read_features(path: Path, *, layer: str | None = None, where: str | None = None) -> Features:
    """The features of ``layer`` (the only one, when not named) of ``path`` that ``where`` selects, in WGS84."""
    where_text = f" where {where!r}" if where else ""
    with _boundary(path):
        if path.suffix.lower() in PARQUET:
            if layer is not None:
                raise InvalidAOI(f"AOI {path}: a GeoParquet file has no layers", hint="leave out layer")
            wkb, properties, crs = _parquet(path, where)
        else:
            layer = _layer(path, layer)
            wkb, properties, crs = _gdal(path, layer, where)
    if not len(wkb):
        raise InvalidAOI(
            f"AOI {path}: no feature{where_text} in {'layer ' + repr(layer) if layer else 'the file'}",
            hint="check the attribute filter against the file's values (ogrinfo -so shows the fields)",
        )
    geometries = shapely.from_wkb(wkb)
    return Features(_to_wgs84(geometries, crs, path), tuple(properties), layer)


def _layer(path: Path, layer: str | None) -> str:
    import pyogrio

    names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    if layer is None:
        if len(names) != 1:
            raise InvalidAOI(
                f"AOI {path}: holds {len(names)} layers ({', '.join(names)}); which one is the area?",
                hint="name it with layer: in the config (or --layer)",
            )
        return names[0]
    if layer not in names:
        raise InvalidAOI(f"AOI {path}: no layer {layer!r}", hint=f"its layers are: {', '.join(names)}")
    return layer


def _gdal(path: Path, layer: str, where: str | None) -> tuple[np.ndarray, list[dict[str, Any]], Any]:
    import pyogrio.raw

    meta, _fids, wkb, fields = pyogrio.raw.read(path, layer=layer, where=where or None)
    names = [str(n) for n in meta["fields"]]
    columns = [np.asarray(f).tolist() for f in fields]
    properties = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)] or [{}] * len(wkb)
    return np.asarray(wkb, dtype=object), properties, meta.get("crs")


def select(path: Path, rows: list[dict[str, Any]], where: str) -> np.ndarray:
    """The indices of ``rows`` (the attributes of the features of ``path``) that the SQL ``where`` selects."""
    with _boundary(path):
        return _sqlite_filter(sorted({name for row in rows for name in row}), rows, where)


def _parquet(path: Path, where: str | None) -> tuple[np.ndarray, list[dict[str, Any]], Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidAOI(
            f"AOI {path}: reading GeoParquet needs pyarrow", hint="pip install 'ogc-upscaler[parquet]'"
        ) from None
    table = pq.read_table(path)
    geo = json.loads((table.schema.metadata or {}).get(b"geo", b"{}"))
    column = geo.get("primary_column", "geometry")
    if column not in table.column_names:
        raise InvalidAOI(f"AOI {path}: no geometry column {column!r}", hint="write the file as GeoParquet (WKB)")
    crs = geo.get("columns", {}).get(column, {}).get("crs", "OGC:CRS84")
    wkb = np.asarray(table.column(column).to_pylist(), dtype=object)
    attributes = table.drop([column])
    rows = attributes.to_pylist() if attributes.num_columns else [{}] * len(wkb)
    if where:
        keep = _sqlite_filter(attributes.column_names, rows, where)
        wkb, rows = wkb[keep], [rows[i] for i in keep]
    return wkb, rows, CRS.from_user_input(crs) if crs else CRS.from_user_input("OGC:CRS84")


def _sqlite_filter(names: list[str], rows: list[dict[str, Any]], where: str) -> np.ndarray:
    """The indices of ``rows`` that the SQL ``where`` selects, evaluated by SQLite over their attributes."""
    quoted = ", ".join('"' + n.replace('"', '""') + '"' for n in names)
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(f"CREATE TABLE features (_row INTEGER, {quoted})" if names else "CREATE TABLE features (_row)")
        marks = ", ".join("?" * (len(names) + 1))
        db.executemany(
            f"INSERT INTO features VALUES ({marks})",
            ((i, *(_sql_value(r.get(n)) for n in names)) for i, r in enumerate(rows)),
        )
        selected = db.execute(f"SELECT _row FROM features WHERE {where} ORDER BY _row").fetchall()
    return np.asarray([r[0] for r in selected], dtype=np.int64)


def _sql_value(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str | bytes) else str(value)


def _to_wgs84(geometries: np.ndarray, crs: Any, path: Path) -> np.ndarray:
    """``geometries`` in WGS84 longitude/latitude: densified first where the source is projected."""
    if crs is None:
        raise InvalidAOI(f"AOI {path}: the file names no CRS", hint="set the file's CRS (ogr2ogr -a_srs EPSG:CODE)")
    source = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    if source.equals(CRS.from_user_input("OGC:CRS84")) or source.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return geometries
    step = DEGREES_STEP if source.is_geographic else METRES_STEP
    transformer = Transformer.from_crs(source, CRS.from_epsg(4326), always_xy=True)

    def lonlat(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(shapely.segmentize(geometries, step), lonlat)


@contextlib.contextmanager
def _boundary(path: Path) -> Iterator[None]:
    """The one place where what GDAL, pyarrow, PROJ and SQLite raise becomes an InvalidAOI for ``path``."""
    try:
        yield
    except InvalidAOI:
        raise
    except Exception as err:
        explained = _explained(err, path)
        if explained is None:
            raise
        raise explained from None


def _explained(err: Exception, path: Path) -> InvalidAOI | None:
    gdal = sys.modules.get("pyogrio.errors")  # not imported: no GDAL error can have been raised
    if isinstance(err, sqlite3.Error):
        return InvalidAOI(f"AOI {path}: the attribute filter is not valid SQL here: {err}", hint=_WHERE)
    if gdal is not None and isinstance(err, gdal.FieldError):
        return InvalidAOI(f"AOI {path}: {err}", hint=_WHERE)
    if gdal is not None and isinstance(err, gdal.DataSourceError | gdal.DataLayerError):
        text = str(err)
        if "where" in text.lower() or "sql" in text.lower():
            return InvalidAOI(f"AOI {path}: the attribute filter failed: {text}", hint=_WHERE)
        return InvalidAOI(
            f"AOI {path}: not readable as a vector file: {text}",
            hint="give a GeoPackage, Shapefile, FlatGeobuf, GeoParquet or GeoJSON file",
        )
    if isinstance(err, CRSError) or (gdal is not None and isinstance(err, gdal.CRSError)):
        return InvalidAOI(f"AOI {path}: its CRS is not understood: {err}", hint="set an EPSG CRS on the file")
    if isinstance(err, OSError | ValueError | KeyError | shapely.errors.GEOSException):
        return InvalidAOI(f"AOI {path}: cannot be read: {type(err).__name__}: {err}")
    return None


_WHERE = "write the filter as SQL over the file's attributes, e.g. where: \"iso_a3 IN ('FRA', 'DEU')\""
