"""Every package runs inside the wrapper cwl/stage-in → package → cwl/stage-out, run for real by cwltool:
item hrefs staged by a stage-in step (scattered over a Directory[]), several result Directories made one
catalog, and a package or an item that fails a stage step failed with that step's own words."""

from __future__ import annotations

import json
from pathlib import Path

import pystac
import pytest

from ogc_upscaler.backends.base import FINISHED, JobRequest, RemoteState, RemoteStatus
from ogc_upscaler.backends.cwltool import CwltoolBackend
from ogc_upscaler.cwl import load_package, prepare
from ogc_upscaler.cwl.wrap import ENTRY, STAGE_IN, STAGE_OUT
from ogc_upscaler.errors import InvalidPackage

from ..conftest import PACKAGES

ECOSYSTEM = PACKAGES / "ecosystem"


def _run(backend: CwltoolBackend, values: dict) -> tuple[str, RemoteStatus]:
    remote = backend.submit(JobRequest("job-1", 1, values))
    status = backend.poll([remote])[remote]
    while status.state not in FINISHED:
        status = backend.poll([remote])[remote]
    return remote, status


def test_the_wrapper_stages_each_directory_given_items_and_stages_out_the_results(tmp_path) -> None:
    package = load_package(ECOSYSTEM / "scattered.cwl")
    entry = prepare(package, tmp_path, "none").entry(["scenes"])
    run_file, _, workflow = entry.partition("#")
    graph = {n["id"].lstrip("#"): n for n in json.loads(Path(run_file).read_text())["$graph"]}
    assert workflow == ENTRY and {STAGE_IN, STAGE_OUT, "main", "describe"} <= set(graph)
    steps = {s["id"].rsplit("/", 1)[-1]: s for s in graph[ENTRY]["steps"]}
    assert set(steps) == {"stage_in_scenes", "package", "stage_out"}
    assert steps["stage_in_scenes"]["scatter"].endswith("/reference"), "one stage-in per element of a Directory[]"
    assert [o["id"].rsplit("/", 1)[-1] for o in graph[ENTRY]["outputs"]] == ["results"]


@pytest.mark.slow
def test_a_scattered_package_gets_one_staged_catalog_per_element_and_returns_one_catalog(
    tmp_path, demo_archive
) -> None:
    items = [str(p) for p in sorted(demo_archive.parent.glob("demo-s2-l2a/*/*.json"))[:3]]
    backend = CwltoolBackend(load_package(ECOSYSTEM / "scattered.cwl"), tmp_path, slots=1)
    remote, status = _run(backend, {"scenes": [items[0], items[1:]], "tile_id": "t1"})
    assert status.state is RemoteState.SUCCEEDED, f"{status.error}\n{Path(status.log_path).read_text()[-3000:]}"
    catalog = pystac.Catalog.from_file(str(backend.results(remote).catalog))
    results = sorted(catalog.get_items(recursive=True), key=lambda i: i.id)
    assert [i.id for i in results] == ["t1-1", "t1-2"], "one item per element, in one catalog"
    ids = [Path(i.assets["ids"].get_absolute_href()).read_text() for i in results]
    assert ids == [Path(items[0]).stem, " ".join(sorted(Path(i).stem for i in items[1:]))]


@pytest.mark.slow
def test_a_package_that_writes_no_catalog_fails_with_stage_outs_words(tmp_path) -> None:
    backend = CwltoolBackend(load_package(ECOSYSTEM / "no-catalog.cwl"), tmp_path, slots=1)
    _, status = _run(backend, {"tile_id": "t1"})
    assert status.state is RemoteState.FAILED and not status.retryable
    assert status.error == (
        "stage-out: the package's output holds no catalog.json (result/ holds out.tif): an application package's "
        "result is a Directory with a STAC catalog.json listing its items"
    )


@pytest.mark.slow
def test_an_item_that_cannot_be_read_fails_the_job_with_stage_ins_words(tmp_path, demo_archive) -> None:
    item = str(next(demo_archive.parent.glob("demo-s2-l2a/*/*.json")))
    backend = CwltoolBackend(load_package(ECOSYSTEM / "scattered.cwl"), tmp_path, slots=1)
    _, status = _run(backend, {"scenes": [item, str(tmp_path / "gone.json")], "tile_id": "t1"})
    assert status.state is RemoteState.FAILED
    assert status.error.startswith(f"stage-in: {tmp_path / 'gone.json'} is not a STAC Item that can be read here")


def test_a_package_using_a_name_the_wrapper_keeps_is_refused_before_any_job(tmp_path) -> None:
    text = (ECOSYSTEM / "scattered.cwl").read_text().replace("id: describe", f"id: {STAGE_IN}")
    text = text.replace('"#describe"', f'"#{STAGE_IN}"')
    (tmp_path / "clash.cwl").write_text(text)
    with pytest.raises(InvalidPackage, match=f"a process is called {STAGE_IN}, a name ogc-upscaler keeps"):
        prepare(load_package(tmp_path / "clash.cwl"), tmp_path / "runs", "none")
