"""One job's input file: values converted to the package's types, STAC item hrefs left to the stage-in step."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml

from ogc_upscaler.assets import Carried
from ogc_upscaler.cwl import check_values, load_package, write_job_file
from ogc_upscaler.errors import InvalidPackage

from ..conftest import PACKAGES

NDVI = PACKAGES.parent.parent / "app_packages" / "ndvi" / "ndvi.cwl"
TYPES = PACKAGES / "ecosystem" / "types.cwl"


def test_job_files_convert_types_and_leave_stac_items_to_the_stage_in_step(tmp_path, demo_archive) -> None:
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
    job_file = write_job_file(package, values, tmp_path)
    job = yaml.safe_load(job_file.path.read_text())
    assert job["epsg"] == 32632 and job["resolution"] == 20.0
    assert job["items"] == items and job_file.staged == {"items"}, "the run's stage-in step stages the items"
    assert not (tmp_path / "stage").exists()


def test_a_local_folder_given_for_a_directory_is_passed_as_it_is(tmp_path, demo_archive) -> None:
    package = load_package(NDVI, validate=False)
    folder = tmp_path / "catalog"
    folder.mkdir()
    values = {"items": str(folder), "bbox": "0,0,2,2", "epsg": 32632, "resolution": 2, "tile_id": "T", "datetime": "d"}
    job_file = write_job_file(package, values, tmp_path)
    assert yaml.safe_load(job_file.path.read_text())["items"] == {"class": "Directory", "location": str(folder)}
    assert job_file.staged == frozenset()


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


def test_every_kind_of_input_is_converted_and_directories_of_a_list_are_staged_each(tmp_path, demo_archive) -> None:
    package = load_package(TYPES)
    items = [str(p) for p in sorted(demo_archive.parent.glob("demo-s2-l2a/*/*.json"))[:3]]
    values = {
        "aoi": {"bbox": ["1", 2, 3, 4.5], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
        "catalog": {"value": "https://example.org/catalog.json"},
        "scenes": [items[0], items[1:]],  # one item, then a group of two: a Directory each
        "seed": "12345678901",
        "gain": "0.5",
        "mode": "accurate",
    }
    job_file = write_job_file(package, values, tmp_path)
    job = yaml.safe_load(job_file.path.read_text())
    assert job["aoi"] == {"bbox": [1.0, 2.0, 3.0, 4.5], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    assert job["seed"] == 12345678901 and job["gain"] == 0.5 and job["mode"] == "accurate"
    assert "bands" not in job and "strict" not in job, "inputs left out take the package's defaults"
    assert job["scenes"] == [[items[0]], items[1:]], "one list of item hrefs per Directory: stage-in stages each"
    assert job_file.staged == {"scenes"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "quick"}, r"input 'mode' takes one of fast, accurate; got 'quick'"),
        ({"aoi": {"bbox": [1, 2, 3, 4], "crs": "EPSG:4326"}}, r"input 'aoi'.crs takes one of http://www.opengis"),
        ({"aoi": {"bbox": [1, 2], "crs": "x", "srs": 1}}, r"BBox has no field srs; its fields are bbox \(double\[\]\)"),
        ({"catalog": "https://example.org"}, r"input 'catalog' takes a URI record \(an object\)"),
        ({"seed": 1.5}, r"input 'seed' takes a long, got 1.5"),
        ({"strict": "yes"}, r"input 'strict' takes a boolean, got 'yes'"),
        ({"bands": "red"}, r"input 'bands' takes a string\[\] \(a list\)"),
    ],
)
def test_values_that_do_not_fit_a_type_are_refused_naming_the_input(change, message) -> None:
    values = {
        "aoi": {"bbox": [1, 2, 3, 4], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
        "catalog": {"value": "https://example.org/catalog.json"},
        "scenes": [],
        "seed": 1,
        "gain": 1,
    }
    with pytest.raises(InvalidPackage, match=message):
        check_values(load_package(TYPES), {**values, **change})


def test_the_package_declares_what_best_practice_asks() -> None:
    document = yaml.safe_load(NDVI.read_text())
    workflow, tool = document["$graph"]
    assert workflow["class"] == "Workflow" and tool["class"] == "CommandLineTool"
    assert "DockerRequirement" in tool["hints"] and "DockerRequirement" not in tool.get("requirements", {})
    assert (NDVI.parent / "Dockerfile").is_file()
    assert "$(" not in json.dumps(workflow)
