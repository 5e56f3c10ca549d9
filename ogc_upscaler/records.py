"""A plan given as a table: one row per job, with its geometry and its own inputs, as openEO's job manager
takes a DataFrame.

:func:`campaign_from_records` turns a list of dicts, a pandas DataFrame or a GeoDataFrame into the
campaign's grid: each row becomes a tile (its id from the ``id`` column, its CRS the UTM zone of its
centre unless a ``crs`` column says otherwise, its bounds those of the geometry there, snapped to whole
pixels), and the row's other columns become the tile's attributes, which templates read as
``{tile.props.NAME}``; columns named in ``inputs`` go to the package input of the same name as they are.
The rows are written as a grid file in the campaign's work folder, so a notebook that runs the same
table again finds it planned, and one that changed a row is told the plan changed (``plan --replan``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import shapely

from ogc_upscaler.aoi import from_geojson
from ogc_upscaler.campaign import Campaign, Process
from ogc_upscaler.errors import InvalidInput
from ogc_upscaler.grid.file import FileGrid

#: The columns that say where a row is and what it is called, not what it carries.
GEOMETRY, ID = "geometry", "id"


def campaign_from_records(campaign: Campaign, records: Any, *, inputs: Sequence[str] = ()) -> Campaign:
    """``campaign`` planned over the rows of ``records`` (one job per row and window and parameter set)
    instead of its AOI and grid; the grid keeps the campaign's pixel size and buffer.

    ``records``: a list of mappings, or a pandas DataFrame (a GeoDataFrame is read in its CRS and taken to
    WGS84). ``geometry`` is a shapely geometry, GeoJSON, WKT or ``[W, S, E, N]`` in WGS84.
    """
    rows = list(_rows(records))
    if not rows:
        raise InvalidInput("the records hold no row", hint="give one row per job, each with a geometry")
    features = [_feature(row, i, inputs) for i, row in enumerate(rows)]
    missing = [name for name in inputs if any(name not in row for row in rows)]
    if missing:
        raise InvalidInput(f"input column {missing[0]!r} is missing in some rows", hint="give it in every row")
    collection = {"type": "FeatureCollection", "features": features}
    campaign.workdir.mkdir(parents=True, exist_ok=True)
    path = campaign.workdir / f"{campaign.name}-records.geojson"
    text = json.dumps(collection, sort_keys=True)
    if not path.is_file() or path.read_text() != text:  # unchanged rows leave the file, and so the plan, as is
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    grid = FileGrid(path, pixel_size=campaign.grid.pixel_size, buffer_px=campaign.grid.buffer_px)
    templates = {name: f"{{tile.props.{name}}}" for name in inputs}
    process = Process(campaign.process.application, {**campaign.process.inputs, **templates})
    # the AOI is where the rows' tiles are: a row may be a point, whose tile is the pixels around it
    footprints = grid.all_tiles.footprints
    area = {"type": "GeometryCollection", "geometries": [json.loads(g) for g in shapely.to_geojson(footprints)]}
    aoi = from_geojson(area, source=f"records ({len(rows):,} rows)")
    return dataclasses.replace(campaign, aoi=aoi, grid=grid, process=process)


def _rows(records: Any) -> Iterable[Mapping[str, Any]]:
    if hasattr(records, "to_dict") and hasattr(records, "columns"):  # a (Geo)DataFrame
        if getattr(records, "crs", None) is not None:
            records = records.to_crs(4326)
        name = getattr(getattr(records, "geometry", None), "name", GEOMETRY)
        for row in records.to_dict("records"):
            yield {GEOMETRY if key == name else str(key): value for key, value in row.items()}
        return
    if isinstance(records, Mapping | str | bytes):
        raise InvalidInput("the records are not a table", hint="give a list of dicts or a DataFrame, one row per job")
    for i, row in enumerate(records):
        if not isinstance(row, Mapping):
            raise InvalidInput(f"records[{i}] is a {type(row).__name__}, not a mapping", hint="one dict per row")
        yield row


def _feature(row: Mapping[str, Any], i: int, inputs: Sequence[str]) -> dict[str, Any]:
    where = f"records[{i}]"
    if row.get(GEOMETRY) is None:
        raise InvalidInput(f"{where} has no geometry", hint="give each row a 'geometry' (WGS84)")
    geometry = _geometry(row[GEOMETRY], where)
    props = {str(k): _plain(v, f"{where}.{k}") for k, v in row.items() if k not in (GEOMETRY, ID)}
    tile_id = row.get(ID, f"R{i:06d}")
    return {"type": "Feature", "id": str(_plain(tile_id, f"{where}.id")), "geometry": geometry, "properties": props}


def _geometry(value: Any, where: str) -> dict[str, Any]:
    try:
        if isinstance(value, shapely.Geometry):
            geom = value
        elif isinstance(value, str):
            geom = shapely.from_wkt(value)
        elif isinstance(value, Mapping):
            return dict(value)
        elif isinstance(value, Sequence) and len(value) == 4:
            geom = shapely.box(*(float(v) for v in value))
        else:
            raise TypeError(type(value).__name__)
    except (TypeError, ValueError, shapely.errors.GEOSException) as err:
        raise InvalidInput(
            f"{where}: the geometry is not a shapely geometry, GeoJSON, WKT or [W, S, E, N] ({err})"
        ) from None
    return json.loads(shapely.to_geojson(geom))


def _plain(value: Any, where: str) -> Any:
    """A JSON value: numpy and pandas scalars as Python's, dates as ISO text, a missing value as None."""
    if hasattr(value, "item") and not isinstance(value, list | tuple | dict):
        value = value.item()
    if hasattr(value, "isoformat"):  # datetime, date, pandas' Timestamp
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, where) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise InvalidInput(f"{where}: a {type(value).__name__} cannot be a job's input", hint="give text or numbers")
