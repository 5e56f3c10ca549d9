"""Real package patterns served as they are (tests/packages/ecosystem): each top-level Workflow a process,
described for OWSLib with defaults, enums and records, a refused package skipped with its reason, and a
platform-style package executed to the end with its defaults."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import requests
from owslib.ogcapi.processes import Processes

from ogc_upscaler.server.settings import ServerSettings, prepare

from ..conftest import PACKAGES, running_endpoint

pytestmark = pytest.mark.slow
ECOSYSTEM = PACKAGES / "ecosystem"


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_archive) -> Any:
    state = tmp_path_factory.mktemp("ecosystem")
    with running_endpoint(state, (demo_archive.parent,), packages=(ECOSYSTEM,)) as url:
        yield url


def test_each_top_level_workflow_is_a_process_and_a_refused_one_is_skipped(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="ogc_upscaler.server.settings"):
        prepare(ServerSettings(state=tmp_path, packages=(ECOSYSTEM,)))
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serving")]
    assert line.startswith("serving 10 package process(es): ")
    processes = ("vegetation", "vegetation-image", "expressions", "ndvi-fine", "ndvi-coarse", "main", "types")
    for process in (*processes, "scattered", "no-catalog", "resource-expressions"):
        assert process in line
    assert "refused: missing-command.cwl#image-only (tool tool runs 'water-bodies-detect'" in line


def test_owslib_reads_defaults_enums_and_records(served) -> None:
    client = Processes(served)
    ids = {p["id"] for p in client.processes()}
    assert {"vegetation", "ndvi-fine", "ndvi-coarse", "types", "upscale"} <= ids and "image-only" not in ids
    vegetation = client.process("vegetation")["inputs"]
    assert vegetation["epsg"]["minOccurs"] == 0 and vegetation["epsg"]["schema"] == {
        "type": "integer",
        "default": 32632,
    }
    assert vegetation["items"]["minOccurs"] == 1 and vegetation["items"]["schema"]["type"] == "array"
    types = client.process("types")["inputs"]
    assert types["mode"]["schema"] == {"type": "string", "enum": ["fast", "accurate"], "default": "fast"}
    aoi = types["aoi"]["schema"]
    assert aoi["type"] == "object" and aoi["title"] == "BBox" and aoi["required"] == ["bbox", "crs"]
    assert aoi["properties"]["crs"]["enum"][0] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert types["scenes"]["schema"]["items"]["type"] == "array", "a Directory[]: one list of item URLs each"
    assert types["limit"]["minOccurs"] == 0 and types["limit"]["schema"]["type"] == ["integer", "null"]


def test_a_wrong_enum_is_a_400_naming_the_symbols(served) -> None:
    inputs = {
        "aoi": {"bbox": [1, 2, 3, 4], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
        "catalog": {"value": "https://example.org/catalog.json"},
        "scenes": [],
        "seed": 1,
        "gain": 1.0,
        "mode": "quick",
    }
    reply = requests.post(f"{served}/processes/types/execution", json={"inputs": inputs}, timeout=60)
    assert reply.status_code == 400 and "takes one of fast, accurate" in reply.json()["description"]


def test_a_platform_package_runs_to_the_end_with_its_defaults(served, demo_archive) -> None:
    items = [str(p) for p in sorted(demo_archive.parent.glob("demo-s2-l2a/*/*.json"))[:2]]
    inputs = {"items": items, "bbox": "700000,5320000,701280,5321280", "tile_id": "t1"}
    reply = requests.post(
        f"{served}/processes/vegetation/execution",
        json={"inputs": inputs},
        headers={"Prefer": "respond-async", "Accept": "application/json"},
        timeout=60,
    )
    assert reply.status_code == 201, reply.text
    status_url = reply.headers["Location"]
    deadline = time.monotonic() + 900
    while (status := requests.get(status_url, params={"f": "json"}, timeout=10).json())["status"] in (
        "accepted",
        "running",
    ):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["status"] == "successful", status
    results = requests.get(f"{status_url}/results", params={"f": "json"}, timeout=30).json()
    assert any(link["type"].startswith("image/tiff") for link in results["vegetation"])
