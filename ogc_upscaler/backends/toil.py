"""The Toil backend: tiles in batches, one Toil leader per batch, on single_machine, SLURM or Kubernetes.

``submit`` stages a tile's folder (``SHARED/tiles/<job>/attempt-<n>/``: job.yml, staged
items) and queues it; the queue is flushed into a batch of up to ``batch_size`` tiles at
the next poll (or when full): ``SHARED/batches/<id>/batch.json`` and one Toil leader,
started detached under the runner (:mod:`ogc_upscaler.backends.runner`), running
:mod:`ogc_upscaler.backends.toil_batch` with its own ``file:`` job store, work dir and
logs under ``SHARED``. Each tile is one Toil job (one SLURM job, one pod) running the
package with cwltool in the tile's folder and recording its exit code there, so 1,000
tiles are 20 leaders of 50, not 1,000, and one failing tile fails only itself.

A poll reads each tile's files (as the local backend does) and, on SLURM, asks SLURM in
one call about the tiles that started but have not ended, so a tile killed for its time
or memory limit is failed with SLURM's reason instead of waiting for ever. A leader that
is gone without having finished (its machine rebooted) is started again with
``--restart`` on its job store: tiles already done are skipped. Before that, the tile jobs
it left are dealt with: on SLURM the queued ones are cancelled and the running ones finish
first; on Kubernetes its jobs are deleted (:mod:`ogc_upscaler.backends.kubernetes`). Where
nodes do not see ``SHARED`` (``staging: jobstore``), tiles travel through Toil's job store
(:mod:`ogc_upscaler.backends.staging`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ogc_upscaler.backends import kubernetes, runner
from ogc_upscaler.backends import slurm as slurm_cli
from ogc_upscaler.backends.base import (
    NOT_THERE,
    Backend,
    BackendSettings,
    BuildContext,
    Found,
    JobRequest,
    Outputs,
    RemoteState,
    RemoteStatus,
)
from ogc_upscaler.backends.cwltool import (
    cwltool_command,
    exit_status,
    log_tail,
    machine_size,
    naming,
    passed_on,
    read_results,
    ready,
    stop_tree,
)
from ogc_upscaler.backends.runner import descendants
from ogc_upscaler.backends.tile_run import Started, unit_name
from ogc_upscaler.cwl import Package, check_values, write_job_file
from ogc_upscaler.errors import BackendError, InvalidConfig, InvalidPackage
from ogc_upscaler.s3_access import S3Access, job_environment

log = logging.getLogger(__name__)
RUNNER = runner.__file__
#: Seconds a part-full batch waits for more tiles while another batch runs.
LINGER = 15.0
#: How often a batch's leader is started again after it vanished before giving its tiles up.
LEADER_RESTARTS = 3
#: A tile's file naming what it runs: the run file's entry, and the inputs its stage-in steps stage.
RUN = "run.json"
#: A tile's file holding the factor by which its memory grows (after an attempt ran out of it).
MEMORY_SCALE = "memory_scale"


class SlurmOptions(BaseModel):
    """What Toil passes to sbatch for each tile: partition, time limit, account, extra arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partition: str | None = None
    time: str | None = Field(default=None, pattern=r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")
    account: str | None = None
    args: tuple[str, ...] = ()


class KubernetesOptions(BaseModel):
    """Where Toil's Kubernetes batch system runs tiles: namespace, an S3 job store, the appliance image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = "default"
    job_store: str | None = Field(default=None, pattern=r"^aws:[a-z0-9-]+:[a-z0-9-]+$")  # pods cannot reach file:
    image: str | None = None  # the Toil appliance image with ogc-upscaler and the packages' tools installed
    service_account: str | None = None
    host_path: str | None = None


#: Tiles per batch on Kubernetes: 3 Toil jobs each keep Toil's job numbers within 4 digits.
K8S_BATCH_MAX = 2_000


class ToilOptions(BaseModel):
    """The ``toil:`` section: batch system, shared path (job stores, work, logs), tiles per leader."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_system: Literal["single_machine", "slurm", "kubernetes"] = "single_machine"
    shared: Path | None = Field(default=None, description="shared by the leader and every node; default WORKDIR/toil")
    batch_size: int = Field(default=50, ge=1, le=10_000)
    staging: Literal["shared", "jobstore"] | None = Field(
        default=None,
        description="how tiles reach the nodes: the shared path, or Toil's job store (default: jobstore on kubernetes)",
    )
    slurm: SlurmOptions = Field(default_factory=SlurmOptions)
    kubernetes: KubernetesOptions = Field(default_factory=KubernetesOptions)
    #: A job store in S3 for every batch, on any batch system (Kubernetes needs one: here or kubernetes.job_store).
    job_store: str | None = Field(default=None, pattern=r"^aws:[a-z0-9-]+:[a-z0-9-]+$")

    @property
    def s3_job_store(self) -> str | None:
        """The ``aws:REGION:NAME`` job store the batches use, if any (each batch's bucket is NAME-BATCH--toil)."""
        return self.job_store or (self.kubernetes.job_store if self.batch_system == "kubernetes" else None)

    @model_validator(mode="after")
    def _store(self) -> ToilOptions:
        if self.batch_system == "kubernetes" and not self.s3_job_store:
            raise ValueError("kubernetes needs kubernetes.job_store (aws:REGION:NAME): pods cannot reach a file store")
        if self.batch_system == "kubernetes" and self.staging == "shared":
            raise ValueError(
                "kubernetes needs staging: jobstore: Toil mounts no shared volume into the tile pods"
                " (remove staging, or set it to jobstore)"
            )
        if self.batch_system == "kubernetes" and self.batch_size > K8S_BATCH_MAX:
            raise ValueError(
                f"kubernetes takes at most {K8S_BATCH_MAX} tiles per batch: Toil's job names"
                " (owner, run id and job number) must fit Kubernetes' 63 characters"
            )
        return self


class Settings(BackendSettings):
    """``type: toil``: tiles in batches through Toil, on one machine, SLURM or Kubernetes."""

    type: Literal["toil"] = "toil"
    container: Literal["none", "docker", "podman", "singularity"] = "none"
    toil: ToilOptions = Field(default_factory=ToilOptions)

    @model_validator(mode="after")
    def _container(self) -> Settings:
        if self.toil.batch_system == "kubernetes" and self.container != "none":
            raise ValueError(
                f"container: {self.container} cannot run inside Toil's unprivileged tile pods; on kubernetes"
                " each tile already runs in a pod of kubernetes.image: set container: none and install the"
                " package's tool in that image"
            )
        return self

    def resolve(self, base_dir: Path, workdir: Path) -> Self:
        """``toil.shared`` made absolute (relative to the config, default ``WORKDIR/toil``), staging chosen."""
        t = self.toil
        shared = (base_dir / t.shared if t.shared else workdir / "toil").resolve()
        staging = t.staging or ("jobstore" if t.batch_system == "kubernetes" else "shared")
        return self.model_copy(update={"toil": t.model_copy(update={"shared": shared, "staging": staging})})

    def build(self, context: BuildContext) -> ToilBackend:
        return ToilBackend(context.package(), self, context.s3)


class ToilBackend(Backend):
    """Runs application packages through Toil, ``slots`` tiles at a time, in batches."""

    def __init__(self, package: Package, settings: Settings, s3: S3Access | None = None) -> None:
        self.name = settings.label
        self.options = settings.toil
        self.container = settings.container
        #: What each tile's tools get to reach S3: set in the leader's environment, which Toil gives its
        #: workers (on any batch system, through the job store's copy of it), and passed on by cwltool.
        self.environment = passed_on(job_environment(s3), self.container)
        if self.options.shared is None:
            raise InvalidConfig("backend.toil.shared is not resolved", hint="build the backend from a loaded campaign")
        self.shared = Path(self.options.shared).resolve()
        self.offers = self._offers()
        self.prepared = ready(package, self.shared / "packages", self.container, self.offers)
        self.package = self.prepared.package
        self.staging = self.options.staging or ("jobstore" if self.options.batch_system == "kubernetes" else "shared")
        slots = settings.parallel
        self.slots = slots
        self.poll_interval = 1.0
        self.poll_max = 10.0
        self.pending: list[Path] = []
        self.linger = LINGER
        self._oldest = 0.0  # when the oldest queued tile was queued
        self._batches: list[Path] = []  # batches this instance started
        self._kubernetes_api: Any = None

    def _offers(self) -> tuple[float, float, str] | None:
        """What one tile can get: the largest SLURM node of the partition (unbounded if SLURM cannot say), this
        machine (None), or on Kubernetes, whose nodes are not known here, unbounded."""
        if self.options.batch_system == "slurm":
            try:
                largest = slurm_cli.largest_node(self.options.slurm.partition)
            except BackendError as err:  # not on a login node (yet): the jobs' own submission will say so
                log.warning("the package's resources are not checked against SLURM's nodes: %s", err.message)
                largest = None
            partition = self.options.slurm.partition or "the default partition"
            unknown = (float("inf"), float("inf"), "SLURM")
            return unknown if largest is None else (*largest, f"the largest SLURM node of {partition}")
        if self.options.batch_system == "kubernetes":
            return (float("inf"), float("inf"), "Kubernetes")
        return None

    # -- the backend protocol -----------------------------------------------------------------

    def submit(self, job: JobRequest) -> str:
        """Write the tile's folder (its job file, the run file it runs named in ``run.json``) and queue it."""
        folder = self.shared / "tiles" / job.job_id / f"attempt-{job.attempt}"
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "tmp").mkdir(parents=True)
        try:
            job_file = write_job_file(self.package, job.inputs, folder, carry_assets=self.container != "none")
            cores, ram = self.package.demand(job_file.values)  # its resource expressions evaluated for it
            run = {"entry": self.prepared.entry(job_file.staged), "staged": sorted(job_file.staged)}
            run |= {"cores": cores, "ram_mib": ram}
            (folder / RUN).write_text(json.dumps(run) + "\n")
        except InvalidPackage as err:
            raise BackendError(f"job {job.job_id}: {err.message}", retryable=False, hint=err.hint) from None
        except (OSError, ValueError) as err:
            raise BackendError(f"job {job.job_id}: staging the inputs failed: {err}", retryable=True) from None
        if job.memory_scale != 1.0:  # the last attempt ran out of memory
            (folder / MEMORY_SCALE).write_text(f"{job.memory_scale}\n")
        self._queue([folder])
        return str(folder)

    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """Start queued batches, then read every tile's files; SLURM is asked once about the running ones."""
        folders = [Path(r) for r in remote_ids]
        self._queue([f for f in folders if not (f / "batch").exists() and f not in self.pending])  # a resume
        self.flush(force=False)
        leading: set[Path] = set()  # batches whose leader was seen alive in this poll: looked up once
        statuses = {str(f): self._status(f, leading) for f in folders}
        if self.options.batch_system == "slurm":
            self._check_slurm(statuses)
        return statuses

    def results(self, remote_id: str) -> Outputs:
        return read_results(Path(remote_id))

    def cancel(self, remote_id: str) -> None:
        """Mark the tile cancelled (its Toil job skips it) and stop it where it runs."""
        folder = Path(remote_id)
        (folder / "cancelled").write_text("cancelled\n")
        if self.options.batch_system == "kubernetes":
            try:
                self._end_cancelled_batch(folder)
            except BackendError as err:  # cancelling is best effort, as for every backend
                log.warning("%s: the batch's pods may run on: %s %s", folder.parent.name, err.message, err.hint or "")
            return
        started = Started.read(folder)
        if started is None:
            if self.options.batch_system == "slurm" and (folder / "staged").exists():  # it runs on a node
                running = slurm_cli.live_jobs_named("_" + unit_name(folder))
                slurm_cli.cancel([job.id for job in running])
            return
        if started.slurm_id:
            slurm_cli.cancel([started.slurm_id])
        elif started.host == socket.gethostname():
            for member in descendants(started.pid):  # cwltool and the tool; the Toil job records the exit
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, signal.SIGTERM)

    def check(self, job_id: str, inputs: dict[str, Any]) -> None:
        """The job's inputs against the package's, and what its tools ask (expressions evaluated) against
        what one tile can get."""
        values = check_values(self.package, inputs, job_id)
        if self.package.resource_expressions:
            cores, ram, where = self.offers or (*machine_size(), "this machine")
            with naming(job_id):
                self.package.check_fits(cores, ram, where, values)

    def find(self, job: JobRequest, since: float, known: Callable[[str], bool]) -> Found:
        """The tile's folder once its job file is written (from then on a batch may run it)."""
        folder = self.shared / "tiles" / job.job_id / f"attempt-{job.attempt}"
        return Found(str(folder)) if (folder / RUN).exists() else NOT_THERE

    # -- batches ------------------------------------------------------------------------------

    def flush(self, force: bool = True) -> None:
        """Start leaders for the queued tiles, ``batch_size`` at a time.

        Unless forced, a part-full batch waits (up to ``linger`` seconds) while another batch
        runs, so that tiles freed one by one still travel in batches.
        """
        size = self.options.batch_size
        while len(self.pending) >= size:
            tiles, self.pending = self.pending[:size], self.pending[size:]
            self._start_batch(tiles)
        self._batches = [b for b in self._batches if _leader_live_or_starting(b)]
        idle = not self._batches
        if self.pending and (force or idle or time.monotonic() - self._oldest >= self.linger):
            tiles, self.pending = self.pending, []
            self._start_batch(tiles)
        if self.pending and not self._oldest:
            self._oldest = time.monotonic()

    def _queue(self, folders: list[Path]) -> None:
        if folders and not self.pending:
            self._oldest = time.monotonic()
        self.pending += folders
        if len(self.pending) >= self.options.batch_size:
            self.flush(force=False)

    def toil_options(self, batch: Path, restart: bool = False) -> list[str]:
        """The leader's Toil command-line options for ``batch``."""
        s = self.options
        store = f"file:{batch / 'jobstore'}"
        if s.s3_job_store:
            store = f"{s.s3_job_store}-{batch.name}"
        options = [
            store,
            "--batchSystem",
            s.batch_system,
            "--workDir",
            str(self.shared / "toil-work"),
            "--coordinationDir",
            str(batch),
            "--batchLogsDir",
            str(batch / "logs"),
            "--logFile",
            str(batch / "leader.log"),
            "--retryCount",
            "0",  # the manager retries tiles, one by one
            "--caching",
            "false",
            "--clean",
            "onSuccess",
            "--maxCores",
            str(max(self.slots, 1)),
        ]
        if s.batch_system == "slurm":
            if s.slurm.partition:
                options += ["--slurmPartition", s.slurm.partition]
            if s.slurm.time:
                options += ["--slurmTime", s.slurm.time]
            extra = ([f"--account={s.slurm.account}"] if s.slurm.account else []) + list(s.slurm.args)
            if extra:
                options += ["--slurmArgs", " ".join(extra)]
        if s.batch_system == "kubernetes":
            k = s.kubernetes
            if k.service_account:
                options += ["--kubernetesServiceAccount", k.service_account]
            if k.host_path:
                options += ["--kubernetesHostPath", k.host_path]
        if restart:
            options.append("--restart")
        return options

    def leader_environment(self, batch: Path) -> dict[str, str]:
        """The leader's environment: our venv first on PATH (Toil's workers must find ``_toil_worker``)."""
        env = {
            **os.environ,
            **self.environment,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(batch),
            "TMPDIR": str(batch / "tmp"),
        }
        k = self.options.kubernetes
        if self.options.batch_system == "kubernetes":
            env["TOIL_KUBERNETES_OWNER"] = kubernetes.owner(batch.name)
            if k.image:
                env["TOIL_APPLIANCE_SELF"] = k.image
            env["KUBERNETES_NAMESPACE"] = k.namespace
        return env

    def batch_spec(self, tiles: list[Path]) -> dict[str, Any]:
        """What a batch's leader runs (``batch.json``): each tile's folder, command, run file and memory (more
        for a tile whose last attempt ran out of it), and the batch's staging and resources."""
        specs = []
        for t in tiles:
            run = json.loads((t / RUN).read_text())
            specs.append(
                {
                    "folder": str(t),
                    "command": [
                        *cwltool_command(t, self.container, self.environment),
                        run["entry"],
                        str(t / "job.yml"),
                    ],
                    "entry": run["entry"],
                    "staged": run["staged"],
                    "cores": run.get("cores", self.package.cores),
                    "memory": f"{round(run.get('ram_mib', self.package.ram_mib) * _memory_scale(t))}Mi",
                }
            )
        return {
            "tiles": specs,
            "staging": self.staging,
            "container": self.container,
            "environment": sorted(self.environment),
            "cores": self.package.cores,
            "memory": f"{self.package.ram_mib}Mi",
            "disk": "2Gi",
        }

    def _start_batch(self, tiles: list[Path], batch: Path | None = None, restart: bool = False) -> None:
        self._oldest = 0.0 if not self.pending else self._oldest
        if batch is None:
            batch = self.shared / "batches" / uuid.uuid4().hex[:12]
            self._batches.append(batch)
            (batch / "tmp").mkdir(parents=True)
            (batch / "logs").mkdir()
            spec = self.batch_spec(tiles)
            (batch / "batch.json").write_text(json.dumps(spec, indent=1))
            for tile in tiles:
                (tile / "batch").write_text(str(batch) + "\n")
        else:
            for name in ("exit_code", "runner.pid"):
                (batch / name).unlink(missing_ok=True)
        command = [
            sys.executable,
            RUNNER,
            str(batch),
            "--",
            sys.executable,
            "-m",
            "ogc_upscaler.backends.toil_batch",
            str(batch),
            *self.toil_options(batch, restart),
        ]
        subprocess.Popen(
            command,
            cwd=batch,
            env=self.leader_environment(batch),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(batch / "runner.log").open("ab"),
        )

    # -- status -------------------------------------------------------------------------------

    def _status(self, folder: Path, leading: set[Path]) -> RemoteStatus:
        log = str(folder / "stderr.log")
        if (folder / "exit_code").exists():
            return exit_status(folder, self.package.temporary_fail_codes)
        batch_file = folder / "batch"
        if not batch_file.exists():
            return RemoteStatus(RemoteState.QUEUED, "queued for a batch", log_path=log)
        batch = Path(batch_file.read_text().strip())
        recorded = None if batch in leading else runner.recorded(batch / "runner.pid")  # read once: see below
        if recorded is not None and runner.is_alive(recorded):
            leading.add(batch)
        if batch in leading:
            if (folder / "started").exists():
                return RemoteStatus(RemoteState.RUNNING, "running", log_path=log)
            if (folder / "staged").exists():  # its log comes back with its outcome
                return RemoteStatus(RemoteState.RUNNING, "staged through Toil's job store", log_path=log)
            return RemoteStatus(RemoteState.QUEUED, "queued in Toil", log_path=str(batch / "leader.log"))
        if (batch / "exit_code").exists():
            if (folder / "exit_code").exists():  # recorded just before its leader ended
                return exit_status(folder, self.package.temporary_fail_codes)
            # the tile's own log, when it ran, says why it stopped (SLURM's time limit, a signal); else the leader's
            said = [ln for ln in log_tail(folder / "stderr.log").splitlines() if ln.strip()]
            reason = f"the Toil leader ended without this tile's outcome: {_tail(batch / 'leader.log')}"
            return RemoteStatus(
                RemoteState.LOST,
                "leader ended",
                f"{reason}; the tile's log ends: {said[-1].strip()[:300]}" if said else reason,
                retryable=True,
                log_path=log if said else str(batch / "leader.log"),
            )
        if recorded is None:  # not written when it was read: the leader is starting (never restart it then)
            return RemoteStatus(RemoteState.QUEUED, "leader starting", log_path=str(batch / "leader.log"))
        return self._restart_leader(batch, log)

    def _restart_leader(self, batch: Path, log: str) -> RemoteStatus:
        """The leader vanished (its machine went down): restart it on its job store, a few times."""
        count_file = batch / "restarts"
        count = int(count_file.read_text()) if count_file.exists() else 0
        if count >= LEADER_RESTARTS:
            return RemoteStatus(
                RemoteState.LOST,
                "leader gone",
                f"the Toil leader of {batch.name} vanished {count + 1} times; see {batch / 'leader.log'}",
                retryable=True,
                log_path=log,
            )
        if self.options.batch_system == "kubernetes":
            try:  # its pods run on without it (Toil issue #3498): clear them, the new leader issues them again
                kubernetes.delete_batch_jobs(self.kubernetes_api(), self.options.kubernetes.namespace, batch.name)
            except BackendError as err:
                return RemoteStatus(RemoteState.QUEUED, f"leader gone; {err.message}", log_path=log)
        if self.options.batch_system == "slurm" and self._orphans_on_slurm(batch):
            waiting = "waiting for the SLURM jobs of a vanished leader"
            return RemoteStatus(RemoteState.QUEUED, waiting, log_path=str(batch / "leader.log"))
        count_file.write_text(str(count + 1))
        self._start_batch([], batch, restart=(batch / "jobstore").exists())
        return RemoteStatus(RemoteState.QUEUED, "leader restarted", log_path=str(batch / "leader.log"))

    def kubernetes_api(self) -> Any:
        """The ``BatchV1Api`` the backend clears leftover tile jobs with (made on first use)."""
        if self._kubernetes_api is None:
            self._kubernetes_api = kubernetes.batch_api()
        return self._kubernetes_api

    def _end_cancelled_batch(self, folder: Path) -> None:
        """Stop a batch on Kubernetes once none of its tiles is left to run: its leader, then its pods.

        A tile's pod cannot be told apart from our side (its name is Toil's), so a cancelled tile
        whose pod already runs finishes, and its outcome is ignored; a whole batch is stopped.
        """
        try:
            batch = Path((folder / "batch").read_text().strip())
            tiles = [Path(t["folder"]) for t in json.loads((batch / "batch.json").read_text())["tiles"]]
        except (OSError, ValueError, KeyError):
            return  # not in a batch yet: it is skipped when its batch starts
        if any(not (t / "cancelled").exists() and not (t / "exit_code").exists() for t in tiles):
            return
        stop_tree(batch / "runner.pid")  # the runner, the leader and its local jobs
        kubernetes.delete_batch_jobs(self.kubernetes_api(), self.options.kubernetes.namespace, batch.name)

    def _orphans_on_slurm(self, batch: Path) -> bool:
        """Whether the vanished leader of ``batch`` left tile jobs on SLURM; the queued ones are cancelled.

        The running ones are left to finish: they record their tiles and complete their Toil
        jobs, so the restarted leader issues only what is left, and no tile runs twice at once.
        """
        try:
            live = slurm_cli.live_jobs_logging_to(str(batch / "logs"))
        except BackendError:
            return True  # SLURM did not answer: ask again at the next poll
        queued = [job.id for job in live if job.remote_state is RemoteState.QUEUED]
        if queued:
            slurm_cli.cancel(queued)
        return bool(live)

    def _check_slurm(self, statuses: dict[str, RemoteStatus]) -> None:
        """Fail tiles whose SLURM job ended without the tile recording an exit (time or memory limit, node)."""
        running = {}
        for rid, status in statuses.items():
            started = Started.read(Path(rid)) if status.state is RemoteState.RUNNING else None
            if started and started.slurm_id:
                running[started.slurm_id] = rid
        if not running:
            return
        for slurm_id, job in slurm_cli.states(list(running)).items():
            if job.remote_state in (RemoteState.FAILED, RemoteState.CANCELLED):
                rid = running[slurm_id]
                if (Path(rid) / "exit_code").exists():
                    continue  # it recorded its own end after all
                statuses[rid] = RemoteStatus(
                    RemoteState.FAILED,
                    f"slurm {job.state}",
                    f"SLURM job {slurm_id} ended {job.state} ({job.reason}) before the tile finished",
                    retryable=job.retryable,
                    log_path=str(Path(rid) / "stderr.log"),
                    out_of_memory=job.out_of_memory,
                )


def _leader_live_or_starting(batch: Path) -> bool:
    recorded = runner.recorded(batch / "runner.pid")
    return recorded is None or runner.is_alive(recorded)


def _memory_scale(folder: Path) -> float:
    """How much more memory than the package asks this tile's attempt gets (after running out of it)."""
    try:
        return max(1.0, float((folder / MEMORY_SCALE).read_text()))
    except (OSError, ValueError):
        return 1.0


def _tail(path: Path, lines: int = 3) -> str:
    """The last lines of a leader's log (read from its end: leader logs grow long)."""
    if not path.is_file():
        return "no leader log"
    text = [ln.strip() for ln in log_tail(path, 16_000).splitlines() if ln.strip()]
    return " ".join(text[-lines:])[:400]
