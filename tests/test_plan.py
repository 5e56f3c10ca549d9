"""Planning: deterministic jobs, idempotence, growth, refusal of silent changes, templates."""

from __future__ import annotations

import json

import pytest
import shapely

from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidConfig, PlanConflict
from ogc_upscaler.plan import plan
from ogc_upscaler.store import JobStore, State

from .conftest import write_config


def run_plan(path, **kwargs):
    campaign = load_campaign(path)
    with JobStore.open(campaign.store) as store:
        return plan(campaign, store, **kwargs), campaign


def test_plan_writes_tiles_times_windows_jobs(config_path) -> None:
    report, campaign = run_plan(config_path)
    tiles = campaign.grid.tiles(campaign.aoi)
    assert report.tiles == len(tiles) and report.windows == 3
    assert report.jobs == report.added == 3 * len(tiles)
    with JobStore.read(campaign.store) as store:
        rows = list(store.rows())
    assert [r["state"] for r in rows] == ["planned"] * report.jobs
    first = rows[0]
    assert first["job_id"] == f"{tiles.ids[0]}_20240101-20240201"
    assert json.loads(first["inputs"]) == {"bbox": tiles[0].bbox, "epsg": int(tiles.epsg[0])}
    assert shapely.from_wkb(first["footprint"]).equals_exact(tiles.footprints[0], 1e-9)


def test_planning_twice_adds_nothing(config_path) -> None:
    first, _ = run_plan(config_path)
    second, _ = run_plan(config_path)
    assert second.added == 0 and second.unchanged == first.jobs


def test_a_grown_aoi_adds_only_the_new_jobs(tmp_path) -> None:
    path = write_config(tmp_path)
    first, campaign = run_plan(path)
    with JobStore.open(campaign.store) as store:
        some = next(store.rows(("job_id",)))["job_id"]
        assert store.transition(some, State.SUBMITTED, backend="local", remote_id="r1")
    bigger = {
        "type": "Polygon",
        "coordinates": [[[11.5, 47.6], [12.5, 47.6], [12.5, 48.3], [11.5, 48.3], [11.5, 47.6]]],
    }
    (tmp_path / "aoi.geojson").write_text(json.dumps(bigger))
    second, _ = run_plan(path)
    assert second.unchanged == first.jobs and second.added == second.jobs - first.jobs > 0
    with JobStore.read(campaign.store) as store:
        assert store.get(some)["state"] == "submitted"


@pytest.mark.parametrize(
    "change",
    [
        {"process": {"application": "other.cwl", "inputs": {"bbox": "{tile.bbox}", "epsg": "{tile.epsg}"}}},
        {"process": {"application": "app.cwl", "inputs": {"bbox": "{tile.bbox_wgs84}"}}},
        {"resolution": 10},
        {"buffer": 5},
        {"grid": "laea-20km"},
    ],
)
def test_a_changed_config_is_refused_unless_replanned(tmp_path, change) -> None:
    path = write_config(tmp_path)
    run_plan(path)
    changed = write_config(tmp_path, **change)
    with pytest.raises(PlanConflict, match=r"would change|another grid") as err:
        run_plan(changed)
    assert "--replan" in err.value.hint
    report, _campaign = run_plan(changed, replan=True)
    assert report.jobs > 0
    again, _ = run_plan(changed)
    assert again.added == 0 and again.replanned == 0


def test_replan_resets_changed_jobs_and_drops_planned_ones_no_longer_wanted(tmp_path) -> None:
    path = write_config(tmp_path)
    first, campaign = run_plan(path)
    shorter = write_config(
        tmp_path,
        time={"start": "2024-01-01", "end": "2024-02-01", "step": "P1M"},
        process={"application": "v2.cwl", "inputs": {}},
    )
    report, _ = run_plan(shorter, replan=True)
    assert report.replanned == report.jobs == first.jobs // 3
    assert report.removed == first.jobs - report.jobs
    with JobStore.read(campaign.store) as store:
        assert store.count() == report.jobs


def test_parameter_sets_multiply_jobs_and_reach_templates(tmp_path) -> None:
    path = write_config(
        tmp_path,
        parameters={"strict": {"threshold": 0.4}, "loose": {"threshold": 0.2}},
        process={
            "inputs": {
                "t": "{params.threshold}",
                "label": "{tile.id}/{window.key}/{campaign}",
                "when": "{window.interval}",
                "nested": [{"crs": "{tile.crs}"}],
            }
        },
    )
    report, campaign = run_plan(path)
    assert report.jobs == report.tiles * report.windows * 2
    with JobStore.read(campaign.store) as store:
        row = next(r for r in store.rows() if r["job_id"].endswith("_loose"))
    inputs = json.loads(row["inputs"])
    assert inputs["t"] == 0.2
    assert inputs["label"] == f"{row['tile_id']}/{row['job_id'].split('_')[1]}/test"
    assert inputs["when"] == f"{row['window_start']}/{row['window_end']}"
    assert inputs["nested"] == [{"crs": f"EPSG:{row['epsg']}"}]


def test_a_bad_template_is_reported_before_anything_is_written(tmp_path) -> None:
    path = write_config(tmp_path, process={"inputs": {"x": "{tile.nope}"}})
    campaign = load_campaign(path)
    with JobStore.open(campaign.store) as store:
        with pytest.raises(InvalidConfig, match=r"tile\.nope"):
            plan(campaign, store)
        assert store.count() == 0


def test_the_fingerprint_tells_whether_the_store_holds_this_plan(tmp_path) -> None:
    from ogc_upscaler.plan import is_planned

    path = write_config(tmp_path)
    _, campaign = run_plan(path)
    with JobStore.read(campaign.store) as store:
        assert is_planned(load_campaign(path), store)
        assert not is_planned(load_campaign(write_config(tmp_path, buffer=2)), store)
