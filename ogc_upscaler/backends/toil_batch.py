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

This is why tiles are Toil jobs rather than a CWL scatter run by toil-cwl-runner: a
scatter fails the whole workflow when one tile fails, and reports no tile's outputs until
the last one ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from toil.common import Toil
from toil.job import Job


def run_tile(job: Job, folder: str, command: list[str], env: dict[str, str]) -> int:
    """Run one tile's command in its folder; record its exit code; never raise for the tile's failure."""
    path = Path(folder)
    if (path / "exit_code").exists():  # done before a restart of the leader
        return int((path / "exit_code").read_text().strip())
    if (path / "cancelled").exists():  # cancelled before it started
        (path / "exit_code").write_text("-15\n")
        return -15
    where = f"{socket.gethostname()} {os.getpid()} {os.environ.get('SLURM_JOB_ID', '')}"
    (path / "started").write_text(where.strip() + "\n")
    environment = {**os.environ, **env}
    with (path / "stdout").open("wb") as out, (path / "stderr.log").open("ab") as err:
        try:
            code = subprocess.run(command, stdout=out, stderr=err, cwd=path, env=environment).returncode
        except OSError as error:
            err.write(f"ogc-upscaler: cannot start {command[0]}: {error}\n".encode())
            code = 127
    tmp = path / "exit_code.tmp"
    tmp.write_text(f"{code}\n")
    tmp.replace(path / "exit_code")
    return code


def build(spec: dict[str, Any]) -> Job:
    """The batch's root job: one child per tile, with the tile's cores and memory."""
    root = Job(cores=0.1, memory="50Mi", disk="10Mi")  # it only issues the tiles
    for tile in spec["tiles"]:
        root.addChildJobFn(
            run_tile,
            tile["folder"],
            tile["command"],
            spec.get("env", {}),
            cores=spec.get("cores", 1),
            memory=spec.get("memory", "1Gi"),
            disk=spec.get("disk", "1Gi"),
        )
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
