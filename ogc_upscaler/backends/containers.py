"""The containers a tile's run leaves behind when it is stopped, found and killed.

A tool that cwltool runs in podman or docker is not a process of cwltool's: the engine's
monitor (podman's conmon, docker's daemon) holds it. Stopping cwltool stops only the engine's
client, and the tool runs on as PID 1 of its container, which ignores SIGTERM. With
``--user-space-docker-cmd`` cwltool keeps no container id either. But every container of a
run mounts the run's output and temporary folders, which cwltool makes under the tile's
folder (``--tmpdir-prefix``), so the containers of a tile are the ones with a mount from its
folder. Two engine calls find them all; one more kills them (``--rm`` then removes them).
Singularity needs none of this: its tool is a child of cwltool.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

#: The engines whose containers outlive the client that started them.
DAEMONIZED = ("podman", "docker")


def of_folder(folder: Path, engine: str) -> list[str]:
    """The ids of the running containers of ``engine`` that mount anything from under ``folder``."""
    ids = _call([engine, "ps", "--quiet", "--no-trunc"]).split()
    if not ids:
        return []
    root = folder.resolve()
    described = _call([engine, "container", "inspect", "--format", "{{.Id}}{{range .Mounts}} {{.Source}}{{end}}", *ids])
    found = []
    for line in described.splitlines():
        container, *sources = line.split()
        if any(Path(source).is_relative_to(root) for source in sources):
            found.append(container)
    return found


def stop_left(folder: Path, engine: str) -> list[str]:
    """Kill the containers a stopped run in ``folder`` left running; their ids. Best effort: logged."""
    if engine not in DAEMONIZED:
        return []
    try:
        found = of_folder(folder, engine)
        if found:
            _call([engine, "kill", *found])
            log.info("%s: killed %d container(s) its run left: %s", folder, len(found), " ".join(c[:12] for c in found))
        return found
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("%s: could not look for containers its run left (%s): %s", folder, engine, err)
        return []


#: Seconds an engine call may take: a SLURM job has KillWait (30 s by default) between SIGTERM and SIGKILL.
TIMEOUT = 8.0


def _call(command: list[str]) -> str:
    """Run an engine command; its output. Containers that ended meanwhile are no error (their
    lines are missing from the output, the others are there)."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    gone = ("no such container", "no such object")
    if done.returncode != 0 and not any(word in done.stderr.lower() for word in gone):
        raise subprocess.SubprocessError(f"{' '.join(command[:2])} failed: {done.stderr.strip()[-300:]}")
    return done.stdout
