"""Application packages: inspecting, rejecting what cannot run here, writing job files with staging."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pystac
import pytest
import yaml

from ogc_upscaler.assets import Carried
from ogc_upscaler.cwl import check_values, load_package, write_job_file
from ogc_upscaler.errors import InvalidPackage

from .conftest import PACKAGES

NDVI = PACKAGES.parent.parent / "app_packages" / "ndvi" / "ndvi.cwl"


def test_the_ndvi_package_lists_its_inputs_and_outputs() -> None:
    package = load_package(NDVI)
    assert package.workflow == "ndvi" and package.version == "0.1.0"
    assert {p.id: p.type for p in package.inputs} == {
        "items": "Directory",
        "bbox": "string",
        "epsg": "int",
        "resolution": "double",
        "tile_id": "string",
        "datetime": "string",
    }
    assert [(p.id, p.type) for p in package.outputs] == [("ndvi", "Directory")]
    assert package.entry.endswith("ndvi.cwl#ndvi")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("docker-required.cwl", "DockerRequirement under requirements"),
        ("javascript.cwl", "JavaScript"),
        ("invalid.cwl", "not valid CWL"),
        ("missing.cwl", "no such file"),
    ],
)
def test_packages_that_cannot_run_here_are_refused_with_the_reason(name, message) -> None:
    with pytest.raises(InvalidPackage, match=message) as err:
        load_package(PACKAGES / name)
    assert err.value.hint and err.value.exit_code == 2


def test_a_workflow_that_is_not_there_is_named(tmp_path) -> None:
    with pytest.raises(InvalidPackage, match="no Workflow called 'other'"):
        load_package(f"{NDVI}#other")


def test_inspect_from_the_command_line() -> None:
    exe = [sys.executable, "-m", "ogc_upscaler"]
    good = subprocess.run([*exe, "package", "inspect", str(NDVI)], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert "items" in good.stdout and "Directory" in good.stdout and "outputs:" in good.stdout
    bad = subprocess.run([*exe, "package", "inspect", str(PACKAGES / "javascript.cwl")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_job_files_convert_types_and_stage_stac_items(tmp_path, demo_archive) -> None:
    package = load_package(NDVI, validate=False)
    items = [str(p) for p in sorted(demo_archive.parent.glob("demo-s2-l2a/*/*.json"))[:2]]
    values = {
        "items": items,
        "bbox": "700000,5320000,720000,5340000",
        "epsg": "32632",
        "resolution": 20,
        "tile_id": "T",
        "datetime": "2024-04-01T00:00:00Z/2024-05-01T00:00:00Z",
    }
    job = yaml.safe_load(write_job_file(package, values, tmp_path).read_text())
    assert job["epsg"] == 32632 and job["resolution"] == 20.0
    staged = pystac.Catalog.from_file(job["items"]["location"] + "/catalog.json")
    staged_items = list(staged.get_items())
    assert len(staged_items) == 2
    href = staged_items[0].assets["B04"].href
    assert href.startswith("/") and href.endswith(".tif")


def test_a_run_in_a_container_gets_its_items_with_their_assets_inside_the_directory(tmp_path, demo_archive) -> None:
    package = load_package(NDVI, validate=False)
    items = [str(p) for p in sorted(demo_archive.parent.glob("demo-s2-l2a/*/*.json"))[:2]]
    values = {"items": items, "bbox": "0,0,20,20", "epsg": 32632, "resolution": 20, "tile_id": "T", "datetime": "d"}
    job = yaml.safe_load(write_job_file(package, values, tmp_path, carry_assets=True).read_text())
    directory = Path(job["items"]["location"])
    staged = list(pystac.Catalog.from_file(str(directory / "catalog.json")).get_items())
    assert len(staged) == 2
    for item in staged:
        original = pystac.Item.from_file(next(i for i in items if Path(i).stem == item.id))
        for key, asset in item.assets.items():  # relative in the file, so valid wherever the Directory is mounted
            raw = json.loads(Path(item.get_self_href()).read_text())["assets"][key]["href"]
            assert raw.startswith("../assets/"), raw
            carried = Path(asset.get_absolute_href())
            assert carried.is_relative_to(directory)
            # on one filesystem the asset is hard-linked: no copy of the archive
            assert carried.stat().st_ino == Path(original.assets[key].get_absolute_href()).stat().st_ino


def test_carried_assets_are_copied_across_filesystems_and_a_missing_one_is_named(tmp_path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no /dev/shm on another filesystem than the test folder")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        source = Path(other) / "B04.tif"
        source.write_bytes(b"pixels")
        carried = Carried(tmp_path / "stage")
        copy = carried.add(source)
        assert copy.read_bytes() == b"pixels" and copy.stat().st_ino != source.stat().st_ino
        assert carried.add(source) == copy, "each file is placed once"
    with pytest.raises(FileNotFoundError, match=r"B04\.tif does not exist"):
        Carried(tmp_path / "again").add(source)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bbox": "x"}, "missing"),
        (
            {"items": [], "bbox": "1,2,3,4", "epsg": 1, "resolution": 1, "tile_id": "t", "datetime": "d", "extra": 1},
            "unknown extra",
        ),
        (
            {"items": [], "bbox": "1,2,3,4", "epsg": "EPSG:32632", "resolution": 1, "tile_id": "t", "datetime": "d"},
            "'epsg' takes a int",
        ),
    ],
)
def test_values_that_do_not_fit_the_package_are_refused(values, message) -> None:
    with pytest.raises(InvalidPackage, match=message):
        check_values(load_package(NDVI, validate=False), values)


def test_the_package_declares_what_best_practice_asks() -> None:
    document = yaml.safe_load(NDVI.read_text())
    workflow, tool = document["$graph"]
    assert workflow["class"] == "Workflow" and tool["class"] == "CommandLineTool"
    assert "DockerRequirement" in tool["hints"] and "DockerRequirement" not in tool.get("requirements", {})
    assert (NDVI.parent / "Dockerfile").is_file()
    assert "$(" not in json.dumps(workflow)
