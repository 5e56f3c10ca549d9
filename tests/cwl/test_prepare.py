"""Packages prepared for a container mode: unmodified in their own file, adapted (with a warning) in the run
file, refused before any job runs when a command is missing; and run for real by cwltool."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pystac
import pytest

from ogc_upscaler.backends.base import FINISHED, JobRequest, RemoteState
from ogc_upscaler.backends.cwltool import CwltoolBackend, tool_path
from ogc_upscaler.cwl import load_package, prepare
from ogc_upscaler.errors import InvalidPackage

from ..conftest import PACKAGES

ECOSYSTEM = PACKAGES / "ecosystem"


def _nodes(path: Path) -> dict[str, dict]:
    return {n["id"].lstrip("#"): n for n in json.loads(path.read_text())["$graph"]}


def test_without_a_container_a_required_image_becomes_a_hint_and_path_is_ours(tmp_path) -> None:
    package = load_package(ECOSYSTEM / "image-required.cwl")
    original = (ECOSYSTEM / "image-required.cwl").read_text()
    prepared = prepare(package, tmp_path, "none", tool_path()["PATH"])
    assert not list(tmp_path.iterdir()), "nothing is written before a job needs it"
    entry = prepared.entry()
    run_file, _, workflow = entry.partition("#")
    assert workflow == "ogc-upscaler" and Path(run_file).parent == tmp_path.resolve()
    assert (ECOSYSTEM / "image-required.cwl").read_text() == original, "the user's file is never changed"
    tool = _nodes(Path(run_file))["clt"]
    assert "DockerRequirement" not in {r["class"] for r in tool["requirements"]}
    assert "DockerRequirement" in {h["class"] for h in tool["hints"]}
    env = next(r for r in tool["requirements"] if r["class"] == "EnvVarRequirement")
    assert "PATH" not in {d["envName"] for d in env["envDef"]}
    assert [w.split(" ", 1)[1] for w in prepared.warnings] == [
        "requires the image localhost/ndvi-tile:0.1.0; with container: none its command runs from this machine's PATH",
        "sets PATH=$PATH:/usr/local/bin:/usr/bin:/bin for its image; with container: none that is ignored"
        " and this machine's PATH is used",
    ]
    again = prepare(package, tmp_path, "none", tool_path()["PATH"])
    assert again.entry() == entry, "the same run file, written once"
    assert again.entry(["items"]) != entry, "a job staging items runs a wrapper with a stage-in step"


def test_with_an_engine_nothing_is_changed(tmp_path) -> None:
    package = load_package(ECOSYSTEM / "image-required.cwl")
    prepared = prepare(package, tmp_path, "podman")
    assert prepared.warnings == ()
    tool = _nodes(Path(prepared.entry().partition("#")[0]))["clt"]
    assert "DockerRequirement" in {r["class"] for r in tool["requirements"]}


def test_a_command_only_its_image_has_is_refused_without_a_container(tmp_path) -> None:
    package = load_package(ECOSYSTEM / "missing-command.cwl")
    with pytest.raises(InvalidPackage, match=r"tool tool runs 'water-bodies-detect', which is not on this") as err:
        prepare(package, tmp_path, "none", tool_path()["PATH"])
    assert "ghcr.io/example/water-bodies:1.0.0" in err.value.message and "container: podman" in err.value.hint
    assert prepare(package, tmp_path, "podman").warnings == ()  # in its image it would run


def _tile_values(demo_archive: Path) -> dict:
    items = [str(p) for p in sorted(demo_archive.parent.glob("demo-s2-l2a/*/*.json"))[:2]]
    return {"items": items, "bbox": "700000,5320000,701280,5321280", "tile_id": "t1"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reference", "change"),
    [
        ("platform-style.cwl", {}),  # defaults fill epsg, resolution, datetime
        ("image-required.cwl", {}),
        ("packed.cwl", {"epsg": 32632, "resolution": 20, "datetime": "2024-04-01T00:00:00Z/2024-05-01T00:00:00Z"}),
        ("variants.cwl#ndvi-coarse", {"epsg": 32632, "datetime": "2024-04-01T00:00:00Z/2024-05-01T00:00:00Z"}),
        (
            "expressions.cwl",
            {
                "bbox": None,
                "bounds": [700003.0, 5319998.0, 701281.0, 5321279.0],
                "tile_id": "T1",
                "epsg": 32632,
                "resolution": 20,
                "datetime": "2024-04-01T00:00:00Z/2024-05-01T00:00:00Z",
            },
        ),
    ],
)
def test_real_package_patterns_run_to_the_end_with_cwltool(tmp_path, demo_archive, reference, change, caplog) -> None:
    values = {k: v for k, v in {**_tile_values(demo_archive), **change}.items() if v is not None}
    package = load_package(ECOSYSTEM / reference)
    backend = CwltoolBackend(package, tmp_path, slots=1)
    remote = backend.submit(JobRequest("job-1", 1, values))
    status = backend.poll([remote])[remote]
    while status.state not in FINISHED:
        status = backend.poll([remote])[remote]
    log = Path(status.log_path).read_text() if status.log_path else ""
    assert status.state is RemoteState.SUCCEEDED, f"{status.error}\n{log[-2000:]}"
    catalog = pystac.Catalog.from_file(str(backend.results(remote).catalog))
    (item,) = catalog.get_items(recursive=True)
    assert item.id.lower().startswith("t1") and any(a.href.endswith(".tif") for a in item.assets.values())
    if reference == "expressions.cwl":  # the ${...} block snapped the bounds to the pixel grid
        assert "--bbox 700000,5320000,701280,5321280 --tile-id t1" in " ".join(log.replace("\\", " ").split())
    if reference == "image-required.cwl":
        assert any("requires the image localhost/ndvi-tile:0.1.0" in r.getMessage() for r in caplog.records)


def test_the_tools_path_is_this_machines(tmp_path) -> None:
    assert tool_path()["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


@pytest.mark.slow
@pytest.mark.usefixtures("podman")
@pytest.mark.parametrize("name", ["image-required.cwl", "platform-style.cwl"])
def test_in_podman_a_package_runs_in_its_image_with_its_own_path(tmp_path, demo_archive, name) -> None:
    package = load_package(ECOSYSTEM / name)
    backend = CwltoolBackend(package, tmp_path, slots=1, container="podman")
    assert backend.prepared.warnings == (), "with an engine nothing is changed"
    remote = backend.submit(JobRequest("job-1", 1, _tile_values(demo_archive)))
    status = backend.poll([remote])[remote]
    while status.state not in FINISHED:
        status = backend.poll([remote])[remote]
    log = " ".join(Path(status.log_path).read_text().replace("\\", " ").split())
    assert status.state is RemoteState.SUCCEEDED, f"{status.error}\n{log[-2000:]}"
    assert "podman run" in log and "localhost/ndvi-tile:0.1.0 ndvi-tile" in log, log[-2000:]
    path = "$PATH:/usr/local/bin:/usr/bin:/bin" if name == "image-required.cwl" else "/usr/local/bin:/usr/bin:/bin"
    assert f"--env=PATH={path}" in log, "the package's PATH is the container's"
