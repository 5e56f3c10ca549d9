"""The warm cwltool server: jobs forked from it keep a cold run's files and its isolation."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from ogc_upscaler.backends.base import JobRequest, RemoteState
from ogc_upscaler.backends.cwltool import CwltoolBackend, cwltool_command
from ogc_upscaler.backends.runner import alive
from ogc_upscaler.backends.warm import SERVE, Loaded
from ogc_upscaler.cwl import load_package

from ..conftest import PACKAGES, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def backend(tmp_path) -> CwltoolBackend:
    made = CwltoolBackend(load_package(PACKAGES / "flaky.cwl"), tmp_path / "jobs", slots=4)
    yield made
    made.close()


def request(folder: Path, job_id: str, *, seconds: float = 0.0, fail_times: int = 0) -> JobRequest:
    inputs = {
        "tile_id": job_id,
        "bbox": "600000,5300000,600640,5300640",
        "epsg": 32632,
        "state_dir": str(folder / "state"),
        "fail_times": fail_times,
        "broken_tile": "none",
        "seconds": float(seconds),
    }
    return JobRequest(job_id, 1, inputs)


def pid_of(remote: str) -> int:
    wait_for(lambda: (Path(remote) / "runner.pid").exists())
    return int((Path(remote) / "runner.pid").read_text().split()[0])


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def settled(backend: CwltoolBackend, remote: str):
    wait_for(lambda: backend.poll([remote])[remote].state not in {RemoteState.QUEUED, RemoteState.RUNNING})
    return backend.poll([remote])[remote]


def test_every_job_is_forked_from_one_server_and_leaves_a_cold_runs_files(backend, tmp_path) -> None:
    remotes = [backend.submit(request(tmp_path, f"t{i}", seconds=1.0)) for i in range(2)]
    parents = {parent_of(pid_of(remote)) for remote in remotes}
    assert len(parents) == 1 and parents != {os.getpid()}
    server = Path(f"/proc/{parents.pop()}/cmdline").read_bytes().split(b"\0")
    assert SERVE.encode() in server
    for remote in remotes:
        assert settled(backend, remote).state is RemoteState.SUCCEEDED
        folder = Path(remote)
        assert (folder / "exit_code").read_text().strip() == "0"
        assert "Final process status is success" in (folder / "stderr.log").read_text()
        assert backend.results(remote).catalog.is_file()  # cwltool's output JSON in stdout, as cold
        assert (tmp_path / "state" / f"{folder.parent.name}.count").read_text() == "1"


def test_a_job_killed_is_lost_alone_and_the_server_runs_the_next(backend, tmp_path) -> None:
    doomed = backend.submit(request(tmp_path, "doomed", seconds=60.0))
    wait_for(lambda: "flaky.py doomed" in _commands_under(pid_of(doomed)))
    os.kill(pid_of(doomed), signal.SIGKILL)
    status = settled(backend, doomed)
    assert status.state is RemoteState.LOST and status.retryable
    assert "flaky.py doomed" not in _all_commands()  # its tool went with it, stopped when it was found lost
    after = backend.submit(request(tmp_path, "after"))
    assert settled(backend, after).state is RemoteState.SUCCEEDED


def test_a_job_outlives_its_server_and_the_next_job_starts_another(backend, tmp_path) -> None:
    long = backend.submit(request(tmp_path, "long", seconds=3.0))
    server = parent_of(pid_of(long))
    os.kill(server, signal.SIGKILL)
    assert settled(backend, long).state is RemoteState.SUCCEEDED
    nxt = backend.submit(request(tmp_path, "next"))
    assert settled(backend, nxt).state is RemoteState.SUCCEEDED


def test_cancel_stops_the_job_and_its_tool_and_records_the_stop(backend, tmp_path) -> None:
    remote = backend.submit(request(tmp_path, "stopped", seconds=60.0))
    wait_for(lambda: "flaky.py stopped" in _commands_under(pid_of(remote)))
    backend.cancel(remote)
    assert not alive(Path(remote) / "runner.pid")
    assert "flaky.py stopped" not in _all_commands()
    assert (Path(remote) / "exit_code").read_text().strip() == "-15"


def test_a_manager_that_comes_back_finds_the_same_server(tmp_path) -> None:
    package = load_package(PACKAGES / "flaky.cwl")
    first, second = (CwltoolBackend(package, tmp_path / "jobs", slots=1) for _ in range(2))
    try:
        a = first.submit(request(tmp_path, "a"))
        b = second.submit(request(tmp_path, "b"))  # a restarted manager: a new backend, the same jobs folder
        assert settled(second, a).state is RemoteState.SUCCEEDED and settled(second, b).state is RemoteState.SUCCEEDED
        assert first.warm.address == second.warm.address
    finally:
        first.close()


def test_without_warm_each_job_has_a_runner_of_its_own(tmp_path) -> None:
    backend = CwltoolBackend(load_package(PACKAGES / "flaky.cwl"), tmp_path / "jobs", slots=1, warm=False)
    remote = backend.submit(request(tmp_path, "cold", seconds=1.0))
    runner = Path(f"/proc/{pid_of(remote)}/cmdline").read_bytes()
    assert b"runner.py" in runner
    assert settled(backend, remote).state is RemoteState.SUCCEEDED


def _commands_under(pid: int) -> str:
    from ogc_upscaler.backends.runner import descendants

    lines = []
    for child in descendants(pid):
        try:
            lines.append(Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return "\n".join(lines)


def _all_commands() -> str:
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return "\n".join(lines)


def test_the_server_loads_a_run_file_once_for_all_its_jobs(backend, tmp_path) -> None:
    entry = backend.prepared.entry()
    argv = [[*cwltool_command(tmp_path / job)[1:], entry, str(tmp_path / job / "job.yml")] for job in ("a", "b")]
    loaded = Loaded()
    first = loaded.get(argv[0])
    assert first is not None and loaded.get(argv[1]) is first  # the jobs' own folders are not part of it
    assert first.tool.tool["id"].endswith("#ogc-upscaler")


def test_a_run_file_the_server_cannot_load_is_left_to_the_run_to_report(tmp_path, capsys) -> None:
    broken = tmp_path / "broken.cwl"
    broken.write_text("cwlVersion: v1.2\nclass: Workflow\ninputs: 3\n")
    assert Loaded().get([*cwltool_command(tmp_path)[1:], str(broken), str(tmp_path / "job.yml")]) is None
    assert "broken.cwl" in capsys.readouterr().err


NOBODY = 65534
#: Another user's program: a Python that user can run (this venv's lies under root's home); stdlib only.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
as_root = pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")


def as_nobody(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [SYSTEM_PYTHON, "-c", code, *args], preexec_fn=lambda: os.setuid(NOBODY), stderr=subprocess.PIPE
    )


@as_root
def test_the_server_runs_nothing_another_user_asks(backend, tmp_path) -> None:
    first = backend.submit(request(tmp_path, "mine"))  # the server is up
    assert settled(backend, first).state is RemoteState.SUCCEEDED
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o777)
    ask = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect("\\0" + sys.argv[1])
try:
    s.sendall(json.dumps({"folder": sys.argv[2], "argv": ["--version"], "env": {}}).encode() + b"\\n")
    print(s.recv(64) or "refused", file=sys.stderr)
except OSError:
    print("refused", file=sys.stderr)
"""
    asked = as_nobody(ask, backend.warm.address, str(folder))
    _, err = asked.communicate(timeout=60)
    assert err.strip() == b"refused", err  # no pid answered: nothing forked
    assert not (folder / "runner.pid").exists()


@as_root
def test_a_warm_address_held_by_another_user_gets_no_job_and_jobs_run_cold(tmp_path) -> None:
    backend = CwltoolBackend(load_package(PACKAGES / "flaky.cwl"), tmp_path / "jobs", slots=1)
    squat = "import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.bind('\\0' + sys.argv[1]); s.listen(); "
    squatter = as_nobody(squat + "print('up', file=sys.stderr, flush=True); time.sleep(120)", backend.warm.address)
    try:
        assert squatter.stderr.readline().strip() == b"up"
        remote = backend.submit(request(tmp_path, "cold", seconds=1.0))
        assert b"runner.py" in Path(f"/proc/{pid_of(remote)}/cmdline").read_bytes()
        assert settled(backend, remote).state is RemoteState.SUCCEEDED
    finally:
        squatter.kill()
        squatter.wait()
