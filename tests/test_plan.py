"""Planning: deterministic jobs, idempotence, growth, refusal of silent changes, templates."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import shapely

from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidConfig, PlanConflict
from ogc_upscaler.grid import tiles as tiles_module
from ogc_upscaler.plan import campaign_parts, plan
from ogc_upscaler.store import JobStore, Move, State

from .conftest import write_config

plan_module = importlib.import_module("ogc_upscaler.plan")  # the package exports plan, the function, by that name


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
        jobs = list(store.jobs(with_tile=True))
    assert [j.state for j in jobs] == [State.PLANNED] * report.jobs
    first = jobs[0]
    assert first.job_id == f"{tiles.ids[0]}_20240101-20240201"
    assert first.inputs == {"bbox": tiles[0].bbox, "epsg": int(tiles.epsg[0])}
    assert shapely.from_wkb(first.tile.footprint).equals_exact(tiles.footprints[0], 1e-9)


def test_planning_twice_adds_nothing(config_path) -> None:
    first, _ = run_plan(config_path)
    second, _ = run_plan(config_path)
    assert second.added == 0 and second.unchanged == first.jobs


def test_a_grown_aoi_adds_only_the_new_jobs(tmp_path) -> None:
    path = write_config(tmp_path)
    first, campaign = run_plan(path)
    with JobStore.open(campaign.store) as store:
        some = next(store.jobs()).job_id
        assert store.move(some, Move.SUBMIT, backend="local", remote_id="r1")
    bigger = {
        "type": "Polygon",
        "coordinates": [[[11.5, 47.6], [12.5, 47.6], [12.5, 48.3], [11.5, 48.3], [11.5, 47.6]]],
    }
    (tmp_path / "aoi.geojson").write_text(json.dumps(bigger))
    second, _ = run_plan(path)
    assert second.unchanged == first.jobs and second.added == second.jobs - first.jobs > 0
    with JobStore.read(campaign.store) as store:
        assert store.get(some).state is State.SUBMITTED


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
        job = next(j for j in store.jobs(with_tile=True) if j.job_id.endswith("_loose"))
    inputs = job.inputs
    assert inputs["t"] == 0.2
    assert inputs["label"] == f"{job.tile_id}/{job.job_id.split('_')[1]}/test"
    assert inputs["when"] == f"{job.window_start}/{job.window_end}"
    assert inputs["nested"] == [{"crs": f"EPSG:{job.tile.epsg}"}]


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


def test_replan_leaves_running_and_collected_jobs_and_says_why(tmp_path) -> None:
    """--replan used to reset running and collected jobs to planned, orphaning their remote executions."""
    path = write_config(tmp_path)
    first, campaign = run_plan(path)
    with JobStore.open(campaign.store) as store:
        ids = [j.job_id for j in store.jobs()]
        store.move(ids[0], Move.SUBMIT, backend="ogcapi", remote_id="http://x/jobs/1")
        store.move(ids[0], Move.START)
        store.move(ids[1], Move.SUBMIT, backend="ogcapi", remote_id="http://x/jobs/2")
        store.move(ids[1], Move.SUCCEED)
        store.move(ids[1], Move.COLLECT)
        store.move(ids[2], Move.SUBMIT, backend="ogcapi", remote_id="http://x/jobs/3")
        store.move(ids[2], Move.FAIL, error="broken")
    changed = write_config(tmp_path, buffer=3)
    report, _ = run_plan(changed, replan=True)
    assert dict(report.left) == {"collected": 1, "running": 1}
    assert report.replanned == first.jobs - 2
    assert "1 running jobs left as they are: they run with the old config" in report.summary()
    with JobStore.read(campaign.store) as store:
        assert store.get(ids[0]).state is State.RUNNING and store.get(ids[0]).remote_id == "http://x/jobs/1"
        assert store.get(ids[1]).state is State.COLLECTED
        assert store.get(ids[2]).state is State.PLANNED and store.get(ids[2]).attempts == 0


def test_a_refused_check_writes_nothing_so_the_corrected_config_plans(tmp_path) -> None:
    """A run refused by its pre-run check used to leave a planned store that blocked the corrected config."""
    from ogc_upscaler.errors import InvalidPackage

    path = write_config(tmp_path, process={"inputs": {"bbox": "{tile.bbox}", "epsg": "{tile.id}"}})

    def check(spec) -> None:
        if not isinstance(json.loads(spec.inputs)["epsg"], int):
            raise InvalidPackage(f"job {spec.job_id}: epsg takes an int")

    campaign = load_campaign(path)
    with JobStore.open(campaign.store) as store:
        with pytest.raises(InvalidPackage, match="epsg takes an int"):
            plan(campaign, store, check=check)
        assert store.count() == 0
    report, _ = run_plan(write_config(tmp_path), check=check)
    assert report.added == report.jobs > 0


def test_jobs_without_inputs_are_planned_again_when_the_archive_grew(tmp_path, demo_archive) -> None:
    """no_inputs was not part of a job's fingerprint: a grown archive then conflicted."""
    import shutil

    import pystac

    archive = tmp_path / "archive"
    shutil.copytree(demo_archive.parent, archive)
    catalog = pystac.Catalog.from_file(str(archive / "catalog.json"))
    may = [i for i in catalog.get_items(recursive=True) if i.datetime and i.datetime.month == 5]
    assert may, "the demo archive has May items"
    removed = {}
    for item in may:
        parent = item.get_parent()
        removed[item.id] = (parent, item)
        parent.remove_item(item.id)
    catalog.save()
    path = write_config(
        tmp_path,
        aoi="11.9,47.8,12.1,47.95",
        grid="utm-20km",
        time={"start": "2024-05-01", "end": "2024-06-01", "step": "P1M"},
        inputs={"stac": str(archive / "catalog.json")},
        process={"inputs": {"items": "{inputs.stac_items}"}},
    )
    first, campaign = run_plan(path)
    assert first.no_inputs == first.jobs > 0
    for parent, item in removed.values():
        parent.add_item(item)
    catalog.save()
    second, _ = run_plan(path)
    assert second.grown == first.jobs and second.no_inputs == 0
    with JobStore.read(campaign.store) as store:
        assert all(j.state is State.PLANNED and j.inputs["items"] for j in store.jobs())


#: 2.5°E to 20.5°E: four UTM zones (31N to 34N), so the plan is made in parts.
ACROSS_ZONES = {
    "type": "Polygon",
    "coordinates": [[[2.5, 47.6], [20.5, 47.6], [20.5, 47.8], [2.5, 47.8], [2.5, 47.6]]],
}


def _across_zones(tmp_path, monkeypatch, **overrides):
    monkeypatch.setattr(tiles_module, "PART_TILES", 10)  # several parts per zone too
    path = write_config(tmp_path, **overrides)
    (tmp_path / "aoi.geojson").write_text(json.dumps(ACROSS_ZONES))
    return path


def test_the_plan_is_written_a_part_at_a_time_and_committed_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(plan_module, "PART_JOBS", 7)  # and each part's jobs in batches
    campaign = load_campaign(_across_zones(tmp_path, monkeypatch))
    parts = list(campaign_parts(campaign))
    assert len(parts) > 4 and {int(p.epsg[0]) for p in parts} == {32631, 32632, 32633, 32634}
    written, seen_by_a_reader = [], []
    with JobStore.open(campaign.store) as store:

        def fed():
            for part in parts:
                written.append(store.count())  # this connection sees its own transaction
                with JobStore.read(campaign.store) as reader:
                    seen_by_a_reader.append(reader.count())
                yield part

        report = plan(campaign, store, parts=fed())
        assert store.count() == report.jobs == report.added == 3 * sum(len(p) for p in parts)
    assert written == np.cumsum([0] + [3 * len(p) for p in parts[:-1]]).tolist(), "each part written before the next"
    assert set(seen_by_a_reader) == {0}, "nothing is visible to others before the whole plan is written"


def test_a_check_refused_in_the_last_part_leaves_the_store_as_it_was(tmp_path, monkeypatch) -> None:
    from ogc_upscaler.errors import InvalidPackage

    campaign = load_campaign(_across_zones(tmp_path, monkeypatch))

    def check(spec) -> None:
        if json.loads(spec.inputs)["epsg"] == 32634:
            raise InvalidPackage(f"job {spec.job_id}: refused")

    with JobStore.open(campaign.store) as store:
        with pytest.raises(InvalidPackage, match="refused"):
            plan(campaign, store, check=check)
        assert store.count() == 0 and list(store.tiles()) == [] and store.get_meta("fingerprint") is None
        store.set_meta("after", 1)  # no transaction is left open: a later write is committed at once
        with JobStore.read(campaign.store) as reader:
            assert reader.get_meta("after") == 1


def test_a_conflict_counts_the_changed_jobs_of_every_part_and_writes_none(tmp_path, monkeypatch) -> None:
    path = _across_zones(tmp_path, monkeypatch)
    first, campaign = run_plan(path)
    with JobStore.open(campaign.store) as store:
        before = {j.job_id: j.spec_hash for j in store.jobs()}
    path = _across_zones(
        tmp_path, monkeypatch, process={"application": "app.cwl", "inputs": {"bbox": "{tile.bbox_wgs84}"}}
    )
    with pytest.raises(PlanConflict, match=f"{first.jobs:,} jobs already planned would change"):
        run_plan(path)
    with JobStore.read(campaign.store) as store:
        assert {j.job_id: j.spec_hash for j in store.jobs()} == before


def test_jobs_of_parts_no_longer_planned_are_found_and_dropped_on_replan(tmp_path, monkeypatch) -> None:
    path = _across_zones(tmp_path, monkeypatch)
    _, campaign = run_plan(path)
    west = {**ACROSS_ZONES, "coordinates": [[[2.5, 47.6], [12.0, 47.6], [12.0, 47.8], [2.5, 47.8], [2.5, 47.6]]]}
    (tmp_path / "aoi.geojson").write_text(json.dumps(west))
    still = set(load_campaign(path).grid.tiles(load_campaign(path).aoi).ids.tolist())
    with JobStore.open(campaign.store) as store:
        gone = sum(1 for j in store.jobs() if j.tile_id not in still)
        kept = store.count() - gone
        assert gone and kept and {t.split("-")[1] for t in still} == {"31N", "32N"}
        some = next(j.job_id for j in store.jobs() if "-34N-" in j.job_id)
        assert store.move(some, Move.SUBMIT, backend="local", remote_id="r")
    second, _ = run_plan(path)
    assert (second.jobs, second.unchanged, second.stale, second.removed) == (kept, kept, gone, 0)
    third, _ = run_plan(path, replan=True)
    assert (third.removed, third.stale) == (gone - 1, 1), "the submitted job is kept"
    with JobStore.read(campaign.store) as store:
        assert store.count() == kept + 1 and store.get(some).state is State.SUBMITTED


def test_planning_again_rewrites_no_unchanged_tile(tmp_path, monkeypatch) -> None:
    import sqlite3

    path = _across_zones(tmp_path, monkeypatch)
    first, campaign = run_plan(path)
    db = sqlite3.connect(campaign.store)  # count every row the next plan writes to the tiles table
    db.executescript(
        "CREATE TABLE written (n INTEGER); INSERT INTO written VALUES (0);"
        "CREATE TRIGGER on_insert AFTER INSERT ON tiles BEGIN UPDATE written SET n = n + 1; END;"
        "CREATE TRIGGER on_update AFTER UPDATE ON tiles BEGIN UPDATE written SET n = n + 1; END;"
    )
    db.close()
    again, _ = run_plan(path)
    assert again.unchanged == first.jobs and again.added == 0
    assert sqlite3.connect(campaign.store).execute("SELECT n FROM written").fetchone()[0] == 0
