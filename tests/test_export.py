"""Exports keep every job, its CRS and its geometry, in each format."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest
import shapely

from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidInput
from ogc_upscaler.export import export
from ogc_upscaler.plan import plan
from ogc_upscaler.store import JobOutputs, JobStore, Move


@pytest.fixture
def planned(config_path):
    campaign = load_campaign(config_path)
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        first = next(store.jobs()).job_id
        store.move(first, Move.SUBMIT, backend="local", remote_id="r-1")
        store.move(first, Move.START)
        store.move(first, Move.SUCCEED, outputs=JobOutputs(catalog="out/catalog.json"))
    with JobStore.read(campaign.store) as store:
        yield store, [job.columns() for job in store.jobs(with_tile=True)]


def test_geojson_export(planned, tmp_path) -> None:
    store, rows = planned
    assert export(store, tmp_path / "jobs.geojson") == len(rows)
    features = json.loads((tmp_path / "jobs.geojson").read_text())["features"]
    assert [f["id"] for f in features] == [r["job_id"] for r in rows]
    first = features[0]
    assert first["properties"]["epsg"] == rows[0]["epsg"] and first["properties"]["state"] == "succeeded"
    assert first["properties"]["outputs"]["catalog"] == "out/catalog.json"
    assert shapely.geometry.shape(first["geometry"]).equals_exact(shapely.from_wkb(rows[0]["footprint"]), 1e-9)


def test_csv_export(planned, tmp_path) -> None:
    store, rows = planned
    export(store, tmp_path / "jobs.csv")
    with (tmp_path / "jobs.csv").open() as f:
        read = list(csv.DictReader(f))
    assert len(read) == len(rows)
    assert read[0]["epsg"] == str(rows[0]["epsg"]) and float(read[0]["xmin"]) == rows[0]["xmin"]
    assert shapely.from_wkt(read[0]["footprint_wkt"]).equals_exact(shapely.from_wkb(rows[0]["footprint"]), 1e-7)


def test_geoparquet_export(planned, tmp_path) -> None:
    store, rows = planned
    export(store, tmp_path / "jobs.parquet")
    table = pq.read_table(tmp_path / "jobs.parquet")
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["primary_column"] == "geometry" and geo["columns"]["geometry"]["encoding"] == "WKB"
    assert "crs" not in geo["columns"]["geometry"]  # absent means OGC:CRS84, as the footprints are
    assert table.num_rows == len(rows)
    assert table.column("epsg").to_pylist() == [r["epsg"] for r in rows]
    assert table.column("geometry")[0].as_py() == rows[0]["footprint"]


def test_unknown_format_is_refused_and_nothing_written(planned, tmp_path) -> None:
    store, _ = planned
    with pytest.raises(InvalidInput, match="unknown format"):
        export(store, tmp_path / "jobs.xlsx")
    assert not list(tmp_path.glob("*jobs.xlsx*"))
