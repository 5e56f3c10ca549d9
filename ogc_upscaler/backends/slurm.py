"""SLURM's command line as a client: job states in bulk, submission and cancellation.

States come from one ``squeue --states=all -j ID,ID,...`` per 500 jobs (slurmctld keeps
finished jobs for ``MinJobAge``), exit codes of failed jobs from one ``scontrol show job``
each, and jobs slurmctld no longer knows from ``sacct`` where accounting is on. A backend
that runs many jobs on SLURM asks about all of them at once, never one command per job.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ogc_upscaler.backends.base import RemoteState
from ogc_upscaler.errors import BackendError

CHUNK = 500
STATES = {
    "PENDING": RemoteState.QUEUED,
    "CONFIGURING": RemoteState.QUEUED,
    "REQUEUED": RemoteState.QUEUED,
    "REQUEUE_HOLD": RemoteState.QUEUED,
    "REQUEUE_FED": RemoteState.QUEUED,
    "RESV_DEL_HOLD": RemoteState.QUEUED,
    "SUSPENDED": RemoteState.QUEUED,
    "PREEMPTED": RemoteState.QUEUED,
    "RUNNING": RemoteState.RUNNING,
    "COMPLETING": RemoteState.RUNNING,
    "STAGE_OUT": RemoteState.RUNNING,
    "SIGNALING": RemoteState.RUNNING,
    "COMPLETED": RemoteState.SUCCEEDED,
    "CANCELLED": RemoteState.CANCELLED,
    "FAILED": RemoteState.FAILED,
    "TIMEOUT": RemoteState.FAILED,
    "OUT_OF_MEMORY": RemoteState.FAILED,
    "NODE_FAIL": RemoteState.FAILED,
    "BOOT_FAIL": RemoteState.FAILED,
    "DEADLINE": RemoteState.FAILED,
}
#: Failures that may pass when the job runs again (elsewhere, or after the node recovers). Running out of
#: memory is not one: the manager retries it with more memory, or fails it (``retries.oom_factor``).
TRANSIENT = frozenset({"NODE_FAIL", "BOOT_FAIL"})


@dataclass(frozen=True)
class SlurmJob:
    """One job as SLURM reports it: id, raw state, reason, name, and exit code once it ended."""

    id: str
    state: str
    reason: str = ""
    name: str = ""
    exit_code: int | None = None

    @property
    def remote_state(self) -> RemoteState:
        """The state in our words."""
        return STATES.get(self.state.split()[0].rstrip("+"), RemoteState.RUNNING)

    @property
    def retryable(self) -> bool:
        """Whether running it again (as it was) may help."""
        return self.state in TRANSIENT or self.state == "PREEMPTED"

    @property
    def out_of_memory(self) -> bool:
        """Whether SLURM killed it for its memory limit (running again needs more)."""
        return self.state.startswith("OUT_OF_MEMORY")


def states(ids: Sequence[str]) -> dict[str, SlurmJob]:
    """The state of every job in ``ids`` that SLURM still knows; unknown ids are left out."""
    found: dict[str, SlurmJob] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        out = _squeue(chunk)
        for line in out.splitlines():
            job_id, state, reason, name = ([*line.split("|", 3), "", "", ""])[:4]
            found[job_id] = SlurmJob(job_id, state, reason, name)
    missing = [i for i in ids if i not in found]
    if missing and _accounting():
        found.update(_sacct(missing))
    for job_id, job in list(found.items()):
        if job.remote_state is RemoteState.FAILED and job.exit_code is None:
            found[job_id] = SlurmJob(job.id, job.state, job.reason, job.name, _exit_code(job_id))
    return found


def live_jobs_logging_to(directory: str) -> list[SlurmJob]:
    """The queued and running jobs whose standard output goes under ``directory``: one ``squeue`` call.

    This finds the jobs a batch system submitted (Toil's ``--batchLogsDir``) when their ids
    were never recorded, for instance those a leader left behind when it died.
    """
    prefix = directory.rstrip("/") + "/"
    return [job for job, stdout in _live_jobs("STDOUT") if stdout.startswith(prefix)]


def live_jobs_named(ending: str) -> list[SlurmJob]:
    """The queued and running jobs whose name ends with ``ending``: one ``squeue`` call.

    Toil names a tile's SLURM job ``toil_job_<n>_<unit name>``; a staged tile's run sets its unit
    name, so it is found while its ``started`` file is still on the node.
    """
    return [job for job, name in _live_jobs("Name") if name.endswith(ending)]


def _live_jobs(field: str) -> list[tuple[SlurmJob, str]]:
    """Every queued and running job with the value of one more squeue ``field`` (last: it may be long)."""
    out = _run(["squeue", "-h", f"--Format=JobID:|,State:|,Reason:|,Name:|,{field}:"])
    jobs = []
    for line in out.splitlines():
        job_id, state, reason, name, value = ([*line.split("|", 4), "", "", "", ""])[:5]
        jobs.append((SlurmJob(job_id.strip(), state.strip(), reason.strip(), name.strip()), value.strip()))
    return jobs


def submit(
    script: str, *, name: str, output: str, workdir: str, options: Sequence[str] = (), env: dict[str, str] | None = None
) -> str:
    """``sbatch`` a shell script (text); the job id."""
    command = ["sbatch", "--parsable", f"--job-name={name}", f"--output={output}", f"--chdir={workdir}", *options]
    try:
        reply = subprocess.run(command, input=script, capture_output=True, text=True, timeout=60, env=env)
    except FileNotFoundError:
        raise _not_installed("sbatch") from None
    except subprocess.TimeoutExpired:
        raise BackendError("sbatch did not answer within 60 s", retryable=True) from None
    if reply.returncode != 0:
        message = reply.stderr.strip().splitlines()[-1] if reply.stderr.strip() else f"exit {reply.returncode}"
        transient = any(w in message for w in ("Socket timed out", "Unable to contact", "try again", "busy"))
        raise BackendError(f"sbatch refused the job: {message}", retryable=transient)
    return reply.stdout.strip().split(";")[0]


def cancel(ids: Sequence[str]) -> None:
    """``scancel`` the jobs (finished ones are ignored)."""
    for start in range(0, len(ids), CHUNK):
        _run(["scancel", *ids[start : start + CHUNK]], allow_fail=True)


def _squeue(ids: Sequence[str]) -> str:
    """squeue's lines for ``ids``; '' when none is known; :class:`BackendError` if slurmctld does not answer."""
    if shutil.which("squeue") is None:
        raise _not_installed("squeue")
    command = ["squeue", "-h", "--states=all", "-j", ",".join(ids), "-o", "%i|%T|%r|%j"]
    try:
        reply = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise BackendError("squeue did not answer within 60 s", retryable=True) from None
    if reply.returncode != 0 and "Invalid job id" not in reply.stderr:
        raise BackendError(f"squeue: {reply.stderr.strip()[:300]}", retryable=True, hint="is slurmctld up?")
    return reply.stdout


def _exit_code(job_id: str) -> int | None:
    out = _run(["scontrol", "show", "job", "-o", job_id], allow_fail=True)
    for field in out.split():
        if field.startswith("ExitCode="):
            code, _, signal = field[len("ExitCode=") :].partition(":")
            return -int(signal) if signal and signal != "0" and code == "0" else int(code)
    return None


def _accounting() -> bool:
    out = _run(["scontrol", "show", "config"], allow_fail=True)
    return "AccountingStorageType" in out and "accounting_storage/none" not in out


def _sacct(ids: Sequence[str]) -> dict[str, SlurmJob]:
    out = _run(["sacct", "-n", "-P", "-X", "-j", ",".join(ids), "-o", "JobID,State,Reason,JobName,ExitCode"], True)
    found = {}
    for line in out.splitlines():
        job_id, state, reason, name, exit_code = (line.split("|") + [""] * 5)[:5]
        code = exit_code.partition(":")[0]
        found[job_id] = SlurmJob(job_id, state.split()[0] if state else "", reason, name, int(code) if code else None)
    return found


def largest_node(partition: str | None = None) -> tuple[int, int] | None:
    """The most CPUs and memory (MiB) one node of ``partition`` (the default one if None) offers a job,
    from ``sinfo``; None if SLURM reports no node."""
    command = ["sinfo", "-h", "-o", "%c %m", *(["-p", partition] if partition else [])]
    sizes = []
    for line in _run(command).splitlines():
        numbers = [re.match(r"\d+", field) for field in line.split()]
        if len(numbers) == 2 and all(numbers):
            sizes.append((int(numbers[0][0]), int(numbers[1][0])))  # type: ignore[index]
    return (max(c for c, _ in sizes), max(m for _, m in sizes)) if sizes else None


def _run(command: list[str], allow_fail: bool = False) -> str:
    if shutil.which(command[0]) is None:
        raise _not_installed(command[0])
    try:
        reply = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise BackendError(f"{command[0]} did not answer within 60 s", retryable=True) from None
    if reply.returncode != 0 and not allow_fail:
        raise BackendError(f"{' '.join(command[:3])}: {reply.stderr.strip()[:300]}", retryable=True)
    return reply.stdout


def _not_installed(command: str) -> BackendError:
    return BackendError(
        f"{command} is not installed here: this machine is not a SLURM login node",
        retryable=False,
        hint="run ogc-upscaler where sbatch works; for the tests, `sudo bash scripts/slurm.sh start`",
    )
