"""One tile's run on a cluster node, recorded in the tile's folder as the local runner records it.

The files: ``started`` (where it runs: host, pid and start time, SLURM job id or ``-``),
``stdout`` (cwltool's output JSON), ``stderr.log``, and ``exit_code``, written last and
atomically. A tile's run never raises for the tile's failure: its exit code says it.

A Toil leader restarted on its job store issues again the tiles that were running when it
died, and their first runs may still be going (SLURM jobs outlive their leader). Before it
runs, a tile therefore waits for an earlier run that is still alive, and takes its outcome:
a tile never runs twice at once.

A tile stopped while its tool runs in a podman or docker container (cancelled, its SLURM job
cancelled or out of time) kills that container before it ends: the engine, not cwltool, holds
it (:mod:`ogc_upscaler.backends.containers`). So does a run that finds an earlier run's
``started`` without its outcome.

Only the standard library, :mod:`ogc_upscaler.backends.slurm` (SLURM's command line) and
:mod:`ogc_upscaler.backends.containers` (the engine's) are used: this runs on compute nodes,
inside Toil's workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ogc_upscaler.backends import containers, runner, slurm
from ogc_upscaler.backends.base import RemoteState
from ogc_upscaler.backends.runner import record_exit
from ogc_upscaler.errors import BackendError

#: Seconds between two looks at an earlier run of the same tile that is still alive.
WAIT = 5.0


@dataclass(frozen=True)
class Started:
    """Where a tile's run is: host, process (pid and start time), SLURM job id ('' outside SLURM)."""

    host: str
    pid: int
    start: str
    slurm_id: str = ""

    @classmethod
    def here(cls) -> Started:
        """This process, on this host, under this SLURM job if any."""
        pid = os.getpid()
        return cls(socket.gethostname(), pid, runner.process_start(pid), os.environ.get("SLURM_JOB_ID", ""))

    @classmethod
    def read(cls, folder: Path) -> Started | None:
        """The run recorded in ``folder/started``, if any."""
        try:
            host, pid, start, slurm_id = (folder / "started").read_text().split()
            return cls(host, int(pid), start, "" if slurm_id == "-" else slurm_id)
        except (OSError, ValueError):
            return None

    def write(self, folder: Path) -> None:
        runner.write_atomically(folder / "started", f"{self.host} {self.pid} {self.start} {self.slurm_id or '-'}\n")

    def alive(self) -> bool:
        """Whether this run is still going: its SLURM job is queued or running, or its process lives."""
        if self.slurm_id:
            try:
                job = slurm.states([self.slurm_id]).get(self.slurm_id)
            except BackendError:
                return True  # the controller did not answer: assume it runs, and ask again
            return job is not None and job.remote_state in (RemoteState.QUEUED, RemoteState.RUNNING)
        return self.host == socket.gethostname() and runner.is_alive(f"{self.pid} {self.start}")


def exit_code(folder: Path) -> int | None:
    """The recorded exit code of the tile's run, once it ended."""
    try:
        return int((folder / "exit_code").read_text().strip())
    except (OSError, ValueError):
        return None


def settled(folder: Path) -> int | None:
    """The exit code of a tile that needs no run: one that ended (before its leader was restarted),
    or one cancelled before it started (``-15``, recorded here). None for a tile still to run."""
    done = exit_code(folder)
    if done is None and (folder / "cancelled").exists():
        record_exit(folder, -15)
        return -15
    return done


def unit_name(folder: Path) -> str:
    """The name a tile's Toil job carries (and so its SLURM job's name ends with): ``tile-<job>.<attempt>``."""
    return f"tile-{folder.parent.name}.{folder.name}"


def wait_for_earlier_run(folder: Path, wait: float = WAIT) -> None:
    """Wait while an earlier run of this tile (not this process) is alive and has not recorded its end."""
    me = Started.here()
    while exit_code(folder) is None:
        earlier = Started.read(folder)
        if earlier is None or (earlier.host, earlier.pid, earlier.slurm_id) == (me.host, me.pid, me.slurm_id):
            return
        if not earlier.alive():
            return
        time.sleep(wait)


def run_tile(folder: Path, command: list[str], env: dict[str, str], engine: str = "none") -> int:
    """Run one tile's command in ``folder`` and record its outcome; an earlier live run is waited for.

    ``engine`` is the container engine cwltool runs the tool in (``none`` for none). Returns the
    tile's exit code (``-15`` when it was cancelled before it started).
    """
    wait_for_earlier_run(folder)
    done = settled(folder)
    if done is not None:
        return done
    if (folder / "started").exists():  # an earlier run ended without its outcome: its container may live on
        containers.stop_left(folder, engine)
    Started.here().write(folder)
    with (folder / "stdout").open("wb") as out, (folder / "stderr.log").open("ab") as err:
        try:
            with _terminated_raises():
                code = subprocess.run(command, stdout=out, stderr=err, cwd=folder, env={**os.environ, **env}).returncode
        except OSError as error:
            err.write(f"ogc-upscaler: cannot start {command[0]}: {error}\n".encode())
            code = 127
        except _Terminated:  # scancel (or Toil) ends this job: leave no container running, then end as told
            containers.stop_left(folder, engine)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            raise
        except KeyboardInterrupt:  # Toil's worker turns SLURM's time-limit warning (SIGUSR2) into this
            err.write(b"ogc-upscaler: stopped 30 s before the SLURM job's time limit (raise toil.slurm.time)\n")
            containers.stop_left(folder, engine)
            raise
    if code != 0:  # a run stopped from outside may have left its tool running in the engine
        containers.stop_left(folder, engine)
    record_exit(folder, code)
    return code


class _Terminated(BaseException):
    """SIGTERM arrived while a tile ran (raised from the handler, so the tile can clean up)."""


@contextlib.contextmanager
def _terminated_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`_Terminated` (in the main thread; elsewhere no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: object) -> None:
        raise _Terminated(signum)

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
