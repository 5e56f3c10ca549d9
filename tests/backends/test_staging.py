"""Staging through Toil's job store: a packed tile runs where the archive it reads no longer exists, and its
outcome unpacked into the tile's folder reads like a run on the shared path."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from rio_cogeo.cogeo import cog_validate

from ogc_upscaler.backends import staging, tile_run
from ogc_upscaler.backends.cwltool import cwltool_command, read_results, tool_path
from ogc_upscaler.config import load_campaign
from ogc_upscaler.cwl import prepare, write_job_file
from ogc_upscaler.demo import write_archive
from ogc_upscaler.plan import plan
from ogc_upscaler.run import package_of
from ogc_upscaler.store import JobStore

from ..conftest import demo_config

pytestmark = pytest.mark.slow


def staged_tile(tmp_path: Path, archive: Path) -> tuple[Path, str, list[str]]:
    """One planned demo tile written to its folder, as the Toil backend's submit writes it: the folder, the
    entry of its run file and the inputs its stage-in steps stage."""
    campaign = load_campaign(demo_config(tmp_path / "campaign", archive))
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        row = next(r for r in (j.columns() for j in store.jobs(with_tile=True)) if r["state"] == "planned")
    package = package_of(campaign)
    folder = tmp_path / "shared" / "tiles" / row["job_id"] / "attempt-1"
    folder.mkdir(parents=True)
    job_file = write_job_file(package, json.loads(row["inputs"]), folder)
    entry = prepare(package, tmp_path / "shared" / "packages", "none").entry(job_file.staged)
    return folder, entry, sorted(job_file.staged)


def test_a_packed_tile_runs_without_the_archive_and_its_outcome_reads_like_a_shared_run(tmp_path) -> None:
    archive = write_archive(tmp_path / "archive")
    folder, entry, staged = staged_tile(tmp_path, archive)
    run_file, _, workflow = entry.partition("#")
    job = (folder / "job.yml").read_text()
    bundle = staging.pack(folder, Path(run_file), tmp_path / "tile.tar", staged)
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert "package.cwl" in names and "job.yml" in names and "staged.json" in names
    assert any(n.startswith("items/items/0/") and n.endswith(".json") for n in names), "the items the stage-in reads"
    assert any(n.startswith("items/items/0/assets/") for n in names), "with their local assets beside them"
    assert (folder / "job.yml").read_text() == job, "packing left the tile's own files as they were"
    with tarfile.open(staging.pack(folder, Path(run_file), tmp_path / "again.tar", staged)) as tar:  # a restart
        assert any(n.startswith("items/items/0/assets/") for n in tar.getnames()), "it carries the assets again"

    shutil.rmtree(archive.parent)  # the node cannot see the archive, nor the package's folder
    work = staging.unpack(bundle, tmp_path / "node" / "tile")
    command = [*cwltool_command(work), f"{work / 'package.cwl'}#{workflow}", str(work / "job.yml")]
    assert tile_run.run_tile(work, command, tool_path()) == 0, (work / "stderr.log").read_text()[-2000:]
    outcome = staging.pack_outcome(work, tmp_path / "outcome.tar")
    shutil.rmtree(tmp_path / "node")  # Toil removes the node's scratch folder

    assert staging.unpack_outcome(outcome, folder) == 0
    assert (folder / "exit_code").read_text().strip() == "0"
    assert str(work) not in (folder / "stdout").read_text(), "the node's paths are rewritten to the folder's"
    outputs = read_results(folder)
    assert outputs.catalog.is_relative_to(folder) and outputs.catalog.is_file()
    valid, errors, _ = cog_validate(next(outputs.catalog.parent.rglob("*.tif")), quiet=True)
    assert valid, errors


def test_a_failed_run_comes_back_with_its_log_and_exit_code(tmp_path) -> None:
    work = tmp_path / "node"
    work.mkdir()
    tile_run.run_tile(work, ["python3", "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(75)"], {})
    folder = tmp_path / "tile"
    folder.mkdir()
    assert staging.unpack_outcome(staging.pack_outcome(work, tmp_path / "o.tar"), folder) == 75
    assert (folder / "stderr.log").read_text() == "boom\n"
    assert tile_run.Started.read(folder) is not None, "where it ran comes back too"
    assert not (folder / ".outcome").exists()


def test_a_missing_local_input_is_refused_when_packing(tmp_path) -> None:
    archive = write_archive(tmp_path / "archive")
    folder, entry, staged = staged_tile(tmp_path, archive)
    next((archive.parent).rglob("*.tif")).unlink()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        staging.pack(folder, Path(entry.partition("#")[0]), tmp_path / "tile.tar", staged)
    assert not (tmp_path / "tile.tar").exists() and not list(tmp_path.glob(".pack-*")), "nothing half-written"
