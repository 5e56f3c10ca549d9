"""A detached runner: runs one command and records its exit code in a file, atomically.

The manager starts it in its own session, so a job goes on and its outcome is
recorded even when the manager is killed; a later ``run`` re-attaches through
the files in the job's folder::

    runner.pid     the runner's pid and start time (to tell a reused pid apart)
    stdout         the command's standard output (cwltool's output JSON)
    stderr.log     the command's standard error (cwltool's and the tool's log)
    exit_code      written last: the command's exit code, or -N if killed by signal N

``python runner.py FOLDER -- COMMAND...`` (started by file path: it needs only the standard library)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the command; forward SIGTERM/SIGINT to it; record its exit code.

    The handlers are in place before the command starts, so a stop that arrives while it
    starts is passed on (or, before it started, keeps it from starting); the pid file is
    written atomically, so a reader never sees it empty.
    """
    folder, command = Path(argv[0]), argv[2:]
    child: subprocess.Popen[bytes] | None = None
    stopped: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        stopped.append(signum)
        if child is not None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    write_atomically(folder / "runner.pid", record(os.getpid()) + "\n")
    with (folder / "stdout").open("wb") as out, (folder / "stderr.log").open("ab") as err:
        if stopped:
            code = -stopped[0]
        else:
            child = subprocess.Popen(command, stdout=out, stderr=err, cwd=folder)
            if stopped:  # a signal came while it started: it never saw it
                child.send_signal(stopped[0])
            code = child.wait()
    record_exit(folder, code)
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` so that a reader sees the old content or the new, never a part of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def record_exit(folder: Path, code: int) -> None:
    """Write ``folder/exit_code`` atomically: it is the last file a run writes."""
    write_atomically(folder / "exit_code", f"{code}\n")


def process_start(pid: int) -> str:
    """The start time of a live process in clock ticks since boot ('' if it is gone or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    return "" if fields[0] in {"Z", "X"} else fields[19]


def record(pid: int) -> str:
    """How a process is recorded to be found again: its pid and start time (a reused pid is told apart)."""
    return f"{pid} {process_start(pid)}"


def is_alive(recorded: str) -> bool:
    """Whether the process :func:`record` described still runs (same pid and same start time)."""
    try:
        pid_text, start = recorded.split()
        pid = int(pid_text)
    except ValueError:
        return False
    _reap(pid)
    return process_start(pid) == start


def alive(pid_file: Path) -> bool:
    """Whether the runner that wrote ``pid_file`` still runs."""
    text = recorded(pid_file)
    return text is not None and is_alive(text)


def recorded(pid_file: Path) -> str | None:
    """What ``pid_file`` records (see :func:`record`), or None while it is not written."""
    try:
        return pid_file.read_text()
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children in other sessions too), read from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_session(recorded: str) -> None:
    """Kill what is left of the session of a runner :func:`record` described and that died without its exit
    code (killed): the tools it started, which would go on writing while the job runs again. Nothing is
    touched while that pid lives, or lives again as another process."""
    try:
        leader = int(recorded.split()[0])
    except (ValueError, IndexError):
        return
    if process_start(leader):
        return
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == leader:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stat.parent.name), signal.SIGKILL)


def _reap(pid: int) -> None:
    """Collect the exit status of a runner this process started, so that it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
