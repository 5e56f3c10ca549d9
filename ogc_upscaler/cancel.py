"""Cancelling a campaign: stop its running manager, cancel its jobs on the backend, record it."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from ogc_upscaler.backends.base import Backend
from ogc_upscaler.campaign import Campaign
from ogc_upscaler.errors import StoreLocked
from ogc_upscaler.run import make_backend
from ogc_upscaler.store import JobStore, lock_holder
from ogc_upscaler.withdraw import withdraw


def stop_running_manager(store: Path, timeout: float = 60.0) -> int | None:
    """SIGTERM the manager holding the store's lock on this host and wait for it to let go; its pid.

    A manager on another host (a store on a shared filesystem) is never signalled: a pid means
    nothing there.
    """
    try:
        JobStore.open(store).close()
        return None
    except StoreLocked:
        pass
    holder = lock_holder(store)
    if holder is None:
        raise StoreLocked(f"store {store} is locked by an unknown process", hint="stop it, then cancel again")
    pid, host = holder
    if host != socket.gethostname():
        raise StoreLocked(
            f"store {store} is being written by pid {pid} on {host}, not on this host ({socket.gethostname()})",
            hint=f"run `ogc-upscaler cancel` on {host}, or stop that manager there, then cancel again",
        )
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            JobStore.open(store).close()
            return pid
        except StoreLocked:
            time.sleep(0.2)
    raise StoreLocked(f"the manager (pid {pid}) did not stop within {timeout:.0f} s", hint=f"kill {pid}, then cancel")


def cancel_jobs(campaign: Campaign, store: JobStore) -> int:
    """Cancel every unfinished job of a campaign no manager runs: on the backend if it holds it, then in
    the store; how many (see :func:`~ogc_upscaler.withdraw.withdraw`)."""
    made: list[Backend] = []

    def backend() -> Backend:
        made.append(make_backend(campaign))
        return made[0]

    try:
        return len(withdraw(store, backend))
    finally:
        for b in made:
            b.close()
