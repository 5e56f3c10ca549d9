"""A detached runner: runs one command and records its exit code in a file, atomically.

The manager starts it in its own session, so a job goes on and its outcome is
recorded even when the manager is killed; a later ``run`` re-attaches through
the files in the job's folder::

    runner.pid     the runner's pid and start time (to tell a reused pid apart)
    stdout         the command's standard output (cwltool's output JSON)
    stderr.log     the command's standard error (cwltool's and the tool's log)
    exit_code      written last: the command's exit code, or -N if killed by signal N

``python -m ogc_upscaler.backends.runner FOLDER -- COMMAND...``
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the command; forward SIGTERM/SIGINT to it; record its exit code."""
    folder, command = Path(argv[0]), argv[2:]
    (folder / "runner.pid").write_text(f"{os.getpid()} {process_start(os.getpid())}\n")
    with (folder / "stdout").open("wb") as out, (folder / "stderr.log").open("ab") as err:
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=folder)

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = child.wait()
    tmp = folder / "exit_code.tmp"
    tmp.write_text(f"{code}\n")
    tmp.replace(folder / "exit_code")
    return 0


def process_start(pid: int) -> str:
    """The start time of a process in clock ticks since boot ('' if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid_file: Path) -> bool:
    """Whether the runner that wrote ``pid_file`` still runs (same pid and same start time)."""
    try:
        pid_text, start = pid_file.read_text().split()
    except (OSError, ValueError):
        return False
    return process_start(int(pid_text)) == start


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
