"""A plan given as a table, as notebook users bring it from openEO's job manager: one row per job with its
geometry and its own inputs, run for real through cwltool with per-job hooks; bad tables refused by row."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import shapely

from ogc_upscaler import InvalidInput, JobStore, campaign_from_records, load_campaign, run_campaign

from .backends.test_cwltool import flaky_config

ROWS = [
    {"id": "vienna", "geometry": shapely.box(16.30, 48.15, 16.45, 48.25), "country": "AT", "seconds": 0.0},
    {"id": "graz", "geometry": {"type": "Point", "coordinates": [15.44, 47.07]}, "country": "AT", "seconds": 0.2},
    {"id": "munich", "geometry": [11.5, 48.1, 11.6, 48.2], "country": "DE", "seconds": 0.1},
]


@pytest.mark.slow
def test_one_job_per_row_with_the_rows_own_inputs_told_once_each(tmp_path) -> None:
    campaign = campaign_from_records(load_campaign(flaky_config(tmp_path)), ROWS, inputs=("seconds",))
    done = []
    result = run_campaign(campaign, on_job_done=done.append)
    assert result.exit_code == 0 and result.progress.counts["collected"] == 3
    assert sorted((job.tile_id, job.tile.props["country"]) for job in done) == [
        ("graz", "AT"), ("munich", "DE"), ("vienna", "AT")]  # fmt: skip
    with JobStore.read(campaign.store) as store:
        jobs = {job.tile_id: job for job in store.jobs(with_tile=True)}
    assert {t: j.inputs["seconds"] for t, j in jobs.items()} == {"vienna": 0.0, "graz": 0.2, "munich": 0.1}
    assert jobs["munich"].tile.epsg == 32632 and jobs["vienna"].tile.epsg == 32633  # each row's own UTM zone
    west, south, east, north = shapely.bounds(shapely.from_wkb(jobs["vienna"].tile.footprint))
    assert west <= 16.30 and east >= 16.45 and south <= 48.15 and north >= 48.25  # the row's area, whole
    again = run_campaign(
        campaign_from_records(load_campaign(flaky_config(tmp_path)), ROWS, inputs=("seconds",)),
        on_job_done=done.append,
    )
    assert again.exit_code == 0 and len(done) == 3  # the same table again: planned, nothing runs or is told twice


def test_a_dataframe_with_wkt_geometries_is_a_table_of_rows(tmp_path) -> None:
    when = pd.to_datetime(["2024-01-05", "2024-02-05"])
    frame = pd.DataFrame({"id": ["a", "b"], "geometry": ["POINT (11.5 48.1)", "POINT (12.5 48.1)"], "when": when})
    campaign = campaign_from_records(load_campaign(flaky_config(tmp_path)), frame)
    features = json.loads(campaign.grid.path.read_text())["features"]
    assert [f["id"] for f in features] == ["a", "b"]
    assert features[0]["properties"]["when"].startswith("2024-01-05")
    tiles = campaign.grid.tiles(campaign.aoi)
    assert list(tiles.ids) == ["a", "b"] and tiles.props[1]["when"].startswith("2024-02-05")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "hold no row"),
        ({"id": "a"}, "not a table"),
        ([{"id": "a"}], r"records\[0\] has no geometry"),
        ([{"id": "a", "geometry": 5}], r"records\[0\]: the geometry is not"),
        ([{"id": "a", "geometry": "POINT (1 2)", "x": object()}], r"records\[0\]\.x: a object cannot be"),
        ([{"id": "a", "geometry": "POINT (11 48)"}], "input column 'seconds' is missing"),
    ],
)
def test_a_bad_table_is_refused_naming_the_row(tmp_path, rows, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        campaign_from_records(load_campaign(flaky_config(tmp_path)), rows, inputs=("seconds",))
