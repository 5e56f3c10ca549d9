"""One batch of tiles as one Toil workflow: the leader, and the Toil job that runs one tile.

``python -m ogc_upscaler.backends.toil_batch BATCH_DIR [TOIL OPTIONS...]`` reads
``BATCH_DIR/batch.json`` (the tiles' folders and commands, and each tile's cores and
memory) and runs one Toil job per tile under one leader, on whichever batch system the
options name (``single_machine``, ``slurm``, ``kubernetes``). A tile's job runs the
package with cwltool in the tile's own folder and records what happened there, in the
files the local backend's runner writes (``started``, ``stdout``, ``stderr.log``,
``exit_code``), so:

- a failing tile is recorded and its job still ends normally: it never fails its batch,
  and Toil never re-runs its siblings;
- every tile's state reaches the manager on its own, while the batch runs;
- a leader that was killed is started again with ``--restart`` on the same job store:
  tiles already done are skipped, the rest run.

With ``staging: jobstore`` (nodes that do not see ``SHARED``, and always on Kubernetes),
a tile is three Toil jobs: :class:`StageIn` on the leader packs it into the job store,
:class:`RunStaged` runs it in the node's scratch space and sends its outcome back the same
way, and :class:`StageOut` on the leader unpacks that outcome into the tile's folder.

This is why tiles are Toil jobs rather than a CWL scatter run by toil-cwl-runner: a
scatter fails the whole workflow when one tile fails, and reports no tile's outputs until
the last one ends.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from toil.common import Toil
from toil.fileStores.abstractFileStore import AbstractFileStore
from toil.job import Job

from ogc_upscaler.backends import staging, tile_run
from ogc_upscaler.backends.cwltool import cwltool_command, tool_path
from ogc_upscaler.backends.runner import record_exit


def run_tile(job: Job, folder: str, command: list[str], engine: str) -> int:
    """One tile's Toil job: run it in its folder (see :func:`ogc_upscaler.backends.tile_run.run_tile`)."""
    return tile_run.run_tile(Path(folder), command, tool_path(), engine)


#: What a leader-side step of a staged tile asks for: it runs on the leader (packing, unpacking).
ON_LEADER: dict[str, Any] = {"cores": 0.1, "memory": "256Mi", "disk": "2Gi", "local": True}


class StageIn(Job):
    """On the leader: pack the tile (its job file, items, local assets, the package) into the job store."""

    def __init__(self, folder: str, entry: str, staged: list[str]) -> None:
        super().__init__(**ON_LEADER)
        self.folder, self.entry, self.staged = folder, entry, staged

    def run(self, fileStore: AbstractFileStore) -> str | None:
        folder = Path(self.folder)
        if tile_run.settled(folder) is not None:
            return None
        try:
            run_file = Path(self.entry.partition("#")[0])
            archive = staging.pack(folder, run_file, Path(fileStore.getLocalTempDir()) / "tile.tar", self.staged)
        except (OSError, ValueError) as error:  # an input vanished: the tile fails alone, with the reason
            with (folder / "stderr.log").open("a") as log:
                log.write(f"ogc-upscaler: staging the tile into Toil's job store failed: {error}\n")
            record_exit(folder, 1)
            return None
        (folder / "staged").write_text("staged through Toil's job store\n")
        return f"{fileStore.writeGlobalFile(str(archive))}#{self.entry.partition('#')[2]}"


class RunStaged(Job):
    """On a node without the shared path: unpack the tile in scratch, run it, send its outcome back."""

    def __init__(self, archive: Any, container: str, environment: list[str], **requirements: Any) -> None:
        super().__init__(**requirements)
        self.archive, self.container = archive, container  # the archive's id in the job store, #its entry
        self.environment = environment  # the names of the S3 variables cwltool passes on

    def run(self, fileStore: AbstractFileStore) -> str | None:
        if self.archive is None:
            return None
        archive, _, workflow = str(self.archive).partition("#")
        work = staging.unpack(Path(fileStore.readGlobalFile(archive)), Path(fileStore.getLocalTempDir()) / "tile")
        entry = f"{work / 'package.cwl'}#{workflow}"
        command = [*cwltool_command(work, self.container, self.environment), entry, str(work / "job.yml")]
        tile_run.run_tile(work, command, tool_path(), self.container)
        outcome = staging.pack_outcome(work, Path(fileStore.getLocalTempDir()) / "outcome.tar")
        return str(fileStore.writeGlobalFile(str(outcome)))


class StageOut(Job):
    """On the leader: unpack a tile's outcome into its folder, where the manager reads it."""

    def __init__(self, outcome: Any, folder: str) -> None:
        super().__init__(**ON_LEADER)
        self.outcome, self.folder = outcome, folder

    def run(self, fileStore: AbstractFileStore) -> None:
        if self.outcome is not None:
            staging.unpack_outcome(Path(fileStore.readGlobalFile(self.outcome)), Path(self.folder))


def build(spec: dict[str, Any]) -> Job:
    """The batch's root job: one child per tile (three when staged), with the tile's cores and memory."""
    root = Job(cores=0.1, memory="50Mi", disk="10Mi")  # it only issues the tiles
    batch_needs = {"cores": spec.get("cores", 1), "memory": spec.get("memory", "1Gi"), "disk": spec.get("disk", "1Gi")}
    for tile in spec["tiles"]:
        # a tile's own memory (more after running out) and cores (its resource expressions evaluated for it)
        needs = {**batch_needs, "memory": tile.get("memory", batch_needs["memory"])}
        needs["cores"] = tile.get("cores", batch_needs["cores"])
        if spec.get("staging") == "jobstore":
            stage_in = root.addChild(StageIn(tile["folder"], tile["entry"], tile["staged"]))
            name = tile_run.unit_name(Path(tile["folder"]))  # scancel finds the run by it (its files are on the node)
            environment = spec.get("environment", [])
            run = stage_in.addFollowOn(RunStaged(stage_in.rv(), spec["container"], environment, unitName=name, **needs))
            run.addFollowOn(StageOut(run.rv(), tile["folder"]))
        else:
            root.addChildJobFn(run_tile, tile["folder"], tile["command"], spec["container"], **needs)
    return root


def main(argv: list[str]) -> int:
    """Run (or restart) the batch in ``argv[0]`` with the Toil options that follow."""
    batch = Path(argv[0])
    spec = json.loads((batch / "batch.json").read_text())
    parser = Job.Runner.getDefaultArgumentParser()
    options = parser.parse_args(argv[1:])
    with Toil(options) as toil:
        if options.restart:
            toil.restart()
        else:
            toil.start(build(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
