"""Exports of the job store: GeoJSON, CSV and GeoParquet (with pyarrow), streamed and atomic.

Geometry always travels with its CRS: GeoJSON and GeoParquet carry the WGS84
footprint, and every format keeps the tile's EPSG code and native bounds, so a
round trip never loses the CRS.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ogc_upscaler.errors import InvalidInput

if TYPE_CHECKING:
    from ogc_upscaler.store import JobStore

COLUMNS = (
    "job_id",
    "tile_id",
    "epsg",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "window_start",
    "window_end",
    "params_name",
    "params",
    "inputs",
    "area_km2",
    "props",
    "state",
    "backend",
    "remote_id",
    "backend_status",
    "attempts",
    "retry_at",
    "error",
    "error_kind",
    "log_path",
    "outputs",
    "planned_at",
    "submitted_at",
    "running_at",
    "succeeded_at",
    "collected_at",
    "waiting_at",
    "failed_at",
    "cancelled_at",
    "in_doubt_at",
    "updated_at",
)
_JSON_COLUMNS = ("params", "inputs", "outputs", "props")
FORMATS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".csv": "CSV", ".parquet": "GeoParquet"}


def export(store: JobStore, path: Path) -> int:
    """Write every job to ``path``, the format chosen by its suffix; returns the number of jobs."""
    writer = {".geojson": to_geojson, ".json": to_geojson, ".csv": to_csv, ".parquet": to_parquet}.get(
        path.suffix.lower()
    )
    if writer is None:
        raise InvalidInput(
            f"export {path}: unknown format {path.suffix!r}", hint=f"name the file with one of {', '.join(FORMATS)}"
        )
    return writer(store, path)


def to_geojson(store: JobStore, path: Path) -> int:
    """A FeatureCollection: one Feature per job, footprint in WGS84, every column a property."""
    import shapely  # here, not at import: the command line's help must not pay for it

    n = 0
    with _atomic(path, newline=None) as out:
        out.write('{"type": "FeatureCollection", "features": [\n')
        for row in _rows(store):
            geometry = shapely.to_geojson(shapely.from_wkb(row.pop("footprint")))
            props = json.dumps(_decoded(row))
            sep = ",\n" if n else ""
            out.write(
                f'{sep}{{"type": "Feature", "id": {json.dumps(row["job_id"])}, '
                f'"geometry": {geometry}, "properties": {props}}}'
            )
            n += 1
        out.write("\n]}\n")
    return n


def to_csv(store: JobStore, path: Path) -> int:
    """A CSV: one row per job, footprint as WKT (WGS84) beside the EPSG code and native bounds."""
    import shapely  # here, not at import: the command line's help must not pay for it

    n = 0
    with _atomic(path, newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*COLUMNS, "footprint_wkt"])
        for row in _rows(store):
            wkt = shapely.to_wkt(shapely.from_wkb(row.pop("footprint")), rounding_precision=8)
            writer.writerow([*(row[c] for c in COLUMNS), wkt])
            n += 1
    return n


def to_parquet(store: JobStore, path: Path) -> int:
    """GeoParquet 1.1: typed columns plus a WKB ``geometry`` column in OGC:CRS84."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput(
            f"export {path}: GeoParquet needs pyarrow",
            hint="pip install 'ogc-upscaler[parquet]', or export to .geojson or .csv",
        ) from None
    types = {
        "epsg": pa.int32(),
        "attempts": pa.int32(),
        "xmin": pa.float64(),
        "ymin": pa.float64(),
        "xmax": pa.float64(),
        "ymax": pa.float64(),
        "area_km2": pa.float64(),
    }
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon", "MultiPolygon"]}},
    }
    fields = [pa.field(c, types.get(c, pa.string())) for c in COLUMNS] + [pa.field("geometry", pa.binary())]
    schema = pa.schema(fields, metadata={"geo": json.dumps(geo)})
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    n = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for batch in _batches(store, 10_000):
            columns = {c: [r[c] for r in batch] for c in COLUMNS}
            columns["geometry"] = [r["footprint"] for r in batch]
            writer.write_table(pa.table(columns, schema=schema))
            n += len(batch)
    tmp.replace(path)
    return n


def _rows(store: JobStore) -> Iterator[dict[str, Any]]:
    for job in store.jobs(with_tile=True):
        columns = job.columns()
        yield {**{c: columns[c] for c in COLUMNS}, "footprint": columns["footprint"]}


def _batches(store: JobStore, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in _rows(store):
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.loads(v) if k in _JSON_COLUMNS and v is not None else v) for k, v in row.items()}


@contextmanager
def _atomic(path: Path, newline: str | None) -> Iterator[Any]:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline=newline) as out:
            yield out
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
