"""ResourceRequirement expressions evaluated for each job with cwltool's engine, before it runs: what a tile
asks Toil and SLURM for, and a job asking more than the backend offers refused by the checks of plan."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ogc_upscaler.backends.base import FINISHED, JobRequest, RemoteState
from ogc_upscaler.backends.cwltool import CwltoolBackend, machine_size
from ogc_upscaler.config import load_campaign
from ogc_upscaler.cwl import load_package
from ogc_upscaler.cwl.resources import Expressions
from ogc_upscaler.errors import InvalidPackage
from ogc_upscaler.run import make_backend

from ..conftest import PACKAGES, demo_config

PACKAGE = PACKAGES / "ecosystem" / "resource-expressions.cwl"


def test_expressions_are_evaluated_for_each_job_and_left_out_inputs_take_their_defaults() -> None:
    package = load_package(PACKAGE)
    assert package.resource_expressions
    assert package.demand({"threads": 2, "bands": ["a", "b", "c"], "tile_id": "t"}) == (2.0, 900.0)
    assert package.demand({"tile_id": "t"}) == (1.0, 600.0), "threads and bands take their defaults"
    assert package.demand() == (1.0, 1024.0), "without a job: CWL's default cores, our default memory"


def test_an_expression_that_needs_what_a_job_cannot_say_is_read_as_the_default_with_a_warning(caplog) -> None:
    expressions = Expressions((("coresMin", "$(inputs.missing.size)"),), "{}", "[]")
    with caplog.at_level(logging.WARNING, logger="ogc_upscaler.cwl.resources"):
        assert expressions.evaluate({}, "tool t") == {}
    assert "tool t: coresMin ($(inputs.missing.size)) cannot be evaluated before the job runs" in caplog.text


def test_an_expression_giving_no_number_is_refused() -> None:
    expressions = Expressions((("ramMin", "$(inputs.name)"),), '{"name": {"input": "name"}}', "[]")
    with pytest.raises(InvalidPackage, match=r"tool t: ResourceRequirement ramMin: \$\(inputs.name\) gives 'x'"):
        expressions.evaluate({"name": "x"}, "tool t")


def test_a_job_asking_more_than_this_machine_is_refused_naming_it(tmp_path) -> None:
    backend = CwltoolBackend(load_package(PACKAGE), tmp_path, slots=1)
    cores = int(machine_size()[0])
    backend.check("job-1", {"threads": cores, "tile_id": "t"})
    with pytest.raises(
        InvalidPackage, match=rf"job job-2: package resource-expressions.cwl: tool measure asks {cores * 8} cores"
    ):
        backend.check("job-2", {"threads": cores * 8, "tile_id": "t"})


def test_each_tile_asks_toil_for_what_its_own_expressions_give(tmp_path, demo_archive) -> None:
    process = {"application": str(PACKAGE), "inputs": {"threads": 1, "tile_id": "{tile.id}"}}
    toil = {"batch_system": "single_machine", "batch_size": 50}
    config = demo_config(tmp_path, demo_archive, process=process, backend={"type": "toil", "toil": toil})
    campaign = load_campaign(config)
    backend = make_backend(campaign)
    backend.flush = lambda force=True: None  # queue only: no leader is started here
    tiles = [
        Path(backend.submit(JobRequest("a", 1, {"threads": 1, "tile_id": "a"}))),
        Path(backend.submit(JobRequest("b", 1, {"threads": 2, "bands": ["r", "g", "b", "n"], "tile_id": "b"}))),
    ]
    spec = backend.batch_spec(tiles)
    assert [(t["cores"], t["memory"]) for t in spec["tiles"]] == [(1.0, "600Mi"), (2.0, "1200Mi")]


@pytest.mark.slow
def test_cwltool_gives_the_tool_the_cores_its_expression_asks(tmp_path) -> None:
    backend = CwltoolBackend(load_package(PACKAGE), tmp_path, slots=1)
    remote = backend.submit(JobRequest("job-1", 1, {"threads": 2, "tile_id": "t1"}))
    status = backend.poll([remote])[remote]
    while status.state not in FINISHED:
        status = backend.poll([remote])[remote]
    assert status.state is RemoteState.SUCCEEDED, status.error
    assert (backend.results(remote).catalog.parent / "cores.txt").read_text() == "2"
