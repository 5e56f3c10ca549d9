"""The processors also run under pygeoapi's own managers: ``execute`` checks, runs and answers in one call."""

from __future__ import annotations

import pytest
from pygeoapi.process.base import ProcessorExecuteError

from ogc_upscaler.server.processes import PackageProcessor

from ..conftest import PACKAGES
from .test_manager import flaky

pytestmark = pytest.mark.slow


def processor(tmp_path) -> PackageProcessor:
    definition = {"name": "PackageProcessor", "package": str(PACKAGES / "flaky.cwl"), "state": str(tmp_path),
                  "url": "http://example.org/api/"}  # fmt: skip
    return PackageProcessor(definition)


def test_execute_runs_the_package_and_links_its_outputs(tmp_path) -> None:
    p = processor(tmp_path)
    p.set_job_id("job-1")
    mimetype, results = p.execute(flaky(0, tile="T7"))
    assert mimetype == "application/json"
    assert results["result"][0] == {
        "href": "http://example.org/api/outputs/job-1/result/T7.tif",
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "rel": "item",
    }
    assert (tmp_path / "jobs" / "job-1" / "outputs" / "result" / "T7.tif").is_file()


def test_execute_answers_bad_inputs_with_a_400_and_failures_with_the_reason(tmp_path) -> None:
    p = processor(tmp_path)
    with pytest.raises(ProcessorExecuteError) as bad:
        p.execute({**flaky(0), "epsg": "EPSG:4326"})
    assert bad.value.http_status_code == 400 and "expected integer" in bad.value.message
    with pytest.raises(ProcessorExecuteError, match=r"the package failed: .*broken"):
        p.execute({**flaky(0, tile="B1"), "broken_tile": "B1"})
