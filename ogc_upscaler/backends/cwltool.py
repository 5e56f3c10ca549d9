"""The local backend: each job's package run by cwltool in its own folder, detached from the manager.

Every attempt gets ``WORKDIR/<job id>/attempt-<n>/`` with its ``job.yml``, the
staged inputs, cwltool's output directory, its log, and the runner's files
(see :mod:`ogc_upscaler.backends.runner`). The remote id is that folder, so a
restarted manager finds every job again from the store alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from ogc_upscaler.backends import containers, runner
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
from ogc_upscaler.backends.runner import alive, descendants, process_start
from ogc_upscaler.backends.warm import WarmCwltool
from ogc_upscaler.cwl import Package, Prepared, check_values, prepare, write_job_file
from ogc_upscaler.errors import BackendError, InvalidPackage
from ogc_upscaler.s3_access import SECRETS, S3Access, job_environment

log = logging.getLogger(__name__)

#: The runner is started as a file, not with ``-m``: importing the package would cost it a second or more.
RUNNER = runner.__file__

#: cwltool's exit code for a requirement it cannot meet (e.g. DockerRequirement without a container).
UNSUPPORTED = 33
#: Words in a failed run's log that mean the failure may pass (memory, disk, network, a kill).
TRANSIENT = re.compile(
    r"MemoryError|Cannot allocate memory|No space left on device|Connection (reset|refused|aborted)|"
    r"Temporary failure in name resolution|timed? ?out|\bKilled\b|Resource temporarily unavailable",
    re.I,
)
FINAL_STATUS = re.compile(r"Final process status is (\w+)")
#: cwltool's line for a tool's exit code. cwltool turns a declared temporary failure into permanentFail
#: when the tool wrote no outputs, so the tool's own code is read here and checked against the package.
TOOL_EXIT = re.compile(r"\[job [^\]]*\] exited with status: (-?\d+)")


class Settings(BackendSettings):
    """``type: cwltool``: each job's package run by cwltool on this machine, without a container or in
    the image its DockerRequirement names."""

    type: Literal["cwltool"] = "cwltool"
    container: Literal["none", "docker", "podman", "singularity"] = "none"
    #: Fork each job from a server that has paid cwltool's start-up once; ``false`` starts cwltool anew.
    warm: bool = True

    def build(self, context: BuildContext) -> CwltoolBackend:
        return CwltoolBackend(
            context.package(),
            context.jobs,
            self.parallel,
            self.container,
            name=self.label,
            s3=context.s3,
            warm=self.warm,
        )


class CwltoolBackend(Backend):
    """Runs application packages with cwltool on this machine, ``slots`` at a time."""

    def __init__(
        self,
        package: Package,
        workdir: Path,
        slots: int = 2,
        container: str = "none",
        *,
        name: str = "cwltool",
        s3: S3Access | None = None,
        warm: bool = True,
    ) -> None:
        self.name = name
        #: What each job's tools get to reach S3 (see :func:`passed_on`).
        self.environment = passed_on(job_environment(s3), container)
        self.workdir = workdir.resolve()
        self.prepared = ready(package, self.workdir / ".packages", container)
        self.package = self.prepared.package
        self.slots = slots
        self.container = container
        self.poll_max = 1.0  # a poll only reads a few files per running job
        #: cwltool's start-up paid once (see :mod:`~ogc_upscaler.backends.warm`), or each job cold.
        self.warm = WarmCwltool(self.workdir) if warm else None

    def submit(self, job: JobRequest) -> str:
        """Write job.yml and start cwltool on the package wrapped in its stage steps, under a detached runner."""
        folder = self._folder(job.job_id, job.attempt)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        try:
            job_file = write_job_file(self.package, job.inputs, folder, carry_assets=self.container != "none")
        except InvalidPackage as err:
            raise BackendError(f"job {job.job_id}: {err.message}", retryable=False, hint=err.hint) from None
        except (OSError, ValueError) as err:
            raise BackendError(f"job {job.job_id}: staging the inputs failed: {err}", retryable=True) from None
        cwltool = [*self._cwltool(folder), self.prepared.entry(job_file.staged), str(job_file.path)]
        env = {
            **os.environ,
            **self.environment,
            **tool_path(),
            "HOME": str(folder),
            "TMPDIR": str(folder / "tmp"),
        }
        (folder / "tmp").mkdir()
        if self.warm is not None and self.warm.start(folder, cwltool[1:], env):
            return str(folder)
        subprocess.Popen(
            [sys.executable, RUNNER, str(folder), "--", *cwltool],
            cwd=folder,
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "runner.log").open("wb"),
        )
        return str(folder)

    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """Read each job's folder: a recorded exit code, a live runner, or a lost one."""
        return {rid: self._status(Path(rid)) for rid in remote_ids}

    def close(self) -> None:
        """Stop the warm server (the jobs it forked go on)."""
        if self.warm is not None:
            self.warm.close()

    def results(self, remote_id: str) -> Outputs:
        """The output Directory's ``catalog.json`` from cwltool's output JSON."""
        return read_results(Path(remote_id))

    def cancel(self, remote_id: str) -> None:
        """Stop the runner, cwltool and the tool (wherever their sessions are): SIGTERM, then SIGKILL;
        then the tool's container, which the engine holds, not cwltool."""
        stop_tree(Path(remote_id) / "runner.pid")
        containers.stop_left(Path(remote_id), self.container)

    def check(self, job_id: str, inputs: dict[str, Any]) -> None:
        """The job's inputs against the package's, and what its tools ask (expressions evaluated) against
        this machine."""
        values = check_values(self.package, inputs, job_id)
        if self.package.resource_expressions:
            with naming(job_id):
                self.package.check_fits(*machine_size(), "this machine", values)

    def find(self, job: JobRequest, since: float, known: Callable[[str], bool]) -> Found:
        """This attempt's folder once its job file is written: from then on the runner may have started.

        A folder whose runner never wrote its pid reads as starting for a minute,
        then as lost (retryable), so an attempt is never started twice.
        """
        folder = self.started(job.job_id, job.attempt)
        return Found(folder) if folder else NOT_THERE

    def started(self, job_id: str, attempt: int) -> str | None:
        """The folder of this attempt if it was started (its job file written), else None."""
        folder = self._folder(job_id, attempt)
        return str(folder) if (folder / "job.yml").exists() else None

    def _folder(self, job_id: str, attempt: int) -> Path:
        return self.workdir / job_id / f"attempt-{attempt}"

    def _cwltool(self, folder: Path) -> list[str]:
        return cwltool_command(folder, self.container, self.environment)

    def _status(self, folder: Path) -> RemoteStatus:
        log = str(folder / "stderr.log")
        # whether the runner lives first, then its exit code: it writes the code before it dies, so a runner
        # seen dead (or not yet started) whose exit code is not there afterwards has none
        recorded = runner.recorded(folder / "runner.pid")
        alive = recorded is not None and runner.is_alive(recorded)
        if (folder / "exit_code").exists():
            return exit_status(folder, self.package.temporary_fail_codes)
        if alive:
            return RemoteStatus(RemoteState.RUNNING, "running", log_path=log)
        if recorded is None and _age(folder) < 60.0:
            return RemoteStatus(RemoteState.QUEUED, "starting", log_path=log)
        if recorded is not None:
            runner.stop_session(recorded)  # the runner was killed: its cwltool or its tool may live on
        containers.stop_left(folder, self.container)  # and a container, which the engine holds
        return RemoteStatus(
            RemoteState.LOST,
            "runner gone",
            "the runner stopped without recording an exit code",
            retryable=True,
            log_path=log,
        )


def read_results(folder: Path) -> Outputs:
    """A finished run's outputs: the output Directory's ``catalog.json`` from cwltool's output JSON (the
    stage-out step has checked it)."""
    try:
        raw = json.loads((folder / "stdout").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BackendError(f"{folder}: cwltool's output JSON is unreadable ({err})", retryable=True) from None
    for value in raw.values():
        if isinstance(value, dict) and value.get("class") == "Directory":
            catalog = Path(value["path"]) / "catalog.json"
            if catalog.is_file():
                return Outputs(catalog, raw)
    raise BackendError(
        f"{folder}: the package wrote no output Directory holding a catalog.json",
        retryable=False,
        hint="an application package's output is a Directory with a STAC catalog.json",
    )


def ready(package: Package, folder: Path, container: str, offers: tuple[float, float, str] | None = None) -> Prepared:
    """The package prepared to run with ``container`` (its run files to be written into ``folder`` when a
    job needs them), each adaptation logged as a warning. Refused before any job runs: a tool
    whose command is missing, or one asking more than ``offers`` (cores, MiB, where: this machine unless
    said otherwise)."""
    cores, ram, where = offers or (*machine_size(), "this machine")
    package.check_fits(cores, ram, where)
    prepared = prepare(package, folder, container, tool_path()["PATH"])
    for warning in prepared.warnings:
        log.warning("package %s: %s", package.path.name, warning)
    return prepared


@contextlib.contextmanager
def naming(job_id: str) -> Iterator[None]:
    """An InvalidPackage raised for one job's values, its message naming the job."""
    try:
        yield
    except InvalidPackage as err:
        raise InvalidPackage(f"job {job_id}: {err.message}", hint=err.hint) from None


def machine_size() -> tuple[float, float]:
    """This machine's CPUs and memory (MiB)."""
    pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return float(os.cpu_count() or 1), pages * size / 2**20


def tool_path() -> dict[str, str]:
    """cwltool's PATH: our venv first (cwltool, the packages' tools), then this host's own PATH, sbin
    included (podman's network plugins look for iptables there)."""
    own = os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{own}"}


def passed_on(environment: dict[str, str], container: str) -> dict[str, str]:
    """The S3 variables a job's tools get: all of them, or in a container none of the secrets (cwltool would
    print them in the job's log, as the container's ``--env``; a container reaches a private bucket by the
    node's role)."""
    return environment if container == "none" else {k: v for k, v in environment.items() if k not in SECRETS}


def cwltool_command(folder: Path, container: str = "none", environment: Iterable[str] = ()) -> list[str]:
    """cwltool's command line for a run in ``folder`` (the package and job file follow), passing the
    variables named in ``environment`` on to the tools (cwltool gives them only ``HOME``, ``TMPDIR``, ``PATH``)."""
    cwltool = Path(sys.executable).with_name("cwltool")
    command = [
        str(cwltool) if cwltool.exists() else "cwltool",
        "--outdir",
        str(folder / "out"),
        "--tmpdir-prefix",
        str(folder / "tmp") + "/",
        "--disable-color",
        "--no-compute-checksum",  # the collector checksums the one file that matters
    ]
    for name in sorted(environment):
        command += ["--preserve-environment", name]
    if container == "none":
        command.append("--no-container")
    elif container == "podman":
        command += ["--user-space-docker-cmd", "podman"]
    elif container == "singularity":
        command.append("--singularity")
    return command


def exit_status(folder: Path, temporary: frozenset[int]) -> RemoteStatus:
    """The status of a run whose ``exit_code`` is recorded in ``folder``, classified from its log."""
    log = str(folder / "stderr.log")
    code = int((folder / "exit_code").read_text().strip())
    if code == 0:
        return RemoteStatus(RemoteState.SUCCEEDED, "exit 0", log_path=log)
    return _failure(code, folder, log, temporary)


def stop_tree(pid_file: Path) -> None:
    """Stop the process that wrote ``pid_file`` and all its descendants: SIGTERM, then SIGKILL."""
    if not alive(pid_file):
        return
    pid = int(pid_file.read_text().split()[0])
    tree = [pid, *descendants(pid)]
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 1.0)):
        for member in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and alive(pid_file):
            time.sleep(0.1)
        if not alive(pid_file) and not any(process_start(m) for m in tree[1:]):
            return


def _failure(code: int, folder: Path, log: str, temporary: frozenset[int]) -> RemoteStatus:
    text = log_tail(folder / "stderr.log")
    tool_codes = [int(c) for c in TOOL_EXIT.findall(text)]
    status = FINAL_STATUS.findall(text)
    final = status[-1] if status else None
    last = _last_error_line(text)
    if code < 0:
        return RemoteStatus(RemoteState.FAILED, f"signal {-code}", f"killed by signal {-code}", True, log)
    if code == UNSUPPORTED:
        return RemoteStatus(RemoteState.FAILED, "exit 33", f"cwltool cannot meet a requirement: {last}", False, log)
    own = _tool_message(text)
    detail = own or last
    if final == "temporaryFail" or any(c in temporary for c in tool_codes):
        return RemoteStatus(RemoteState.FAILED, "temporaryFail", f"temporary failure: {detail}", True, log)
    transient = TRANSIENT.search(text) is not None
    # the tool's own words are the cause; cwltool's summary (permanentFail…) only when the tool said nothing
    reason = own if own else f"{final or f'exit {code}'}: {detail}"
    return RemoteStatus(RemoteState.FAILED, final or f"exit {code}", reason, transient, log)


def _tool_message(text: str) -> str | None:
    """The failed tool's own last line: what it wrote after cwltool echoed its command (continued over
    lines ending in ``\\``) and before cwltool reported its exit status, leaving out cwltool's own log
    lines, which can come in between (the memory report, other jobs' lines), however loaded the machine."""
    own = re.compile(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) ")  # cwltool's lines: its level, a space
    lines = [line.strip() for line in text.splitlines()]
    exits = [(i, m) for i, m in enumerate(map(TOOL_EXIT.search, lines)) if m]
    failed = [(i, m) for i, m in exits if int(m[1]) != 0] or exits
    if not failed:
        return None
    end, exit_line = failed[-1]
    job = exit_line[0][: exit_line[0].index("]") + 1]  # "[job name]"
    echo = next((i for i in range(end - 1, -1, -1) if own.match(lines[i]) and job in lines[i] and "$ " in lines[i]), -1)
    start = echo + 1
    while 0 < start < end and lines[start - 1].endswith("\\"):
        start += 1
    for i in range(end - 1, start - 1, -1):
        continued = i > 0 and lines[i - 1].endswith("\\")  # a line of another job's echoed command
        if lines[i] and not own.match(lines[i]) and not continued:
            return lines[i][:300]
    return None


def log_tail(path: Path, size: int = 64_000) -> str:
    """The last ``size`` bytes of a log, as text ('' if it cannot be read)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Final process status" in line or line.startswith("INFO"):
            continue
        if re.search(r"error|fail|exception|exit", line, re.I):
            return line[:300]
    return lines[-1][:300] if lines else "no log"


def _age(folder: Path) -> float:
    try:
        return time.time() - folder.stat().st_mtime
    except OSError:
        return 0.0
