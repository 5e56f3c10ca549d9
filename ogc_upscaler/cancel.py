"""Cancelling a campaign: stop its running manager, cancel its jobs on the backend, record it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ogc_upscaler.campaign import Campaign
from ogc_upscaler.errors import StoreLocked
from ogc_upscaler.run import make_backend
from ogc_upscaler.store import JobStore, State


def stop_running_manager(store: Path, timeout: float = 60.0) -> int | None:
    """SIGTERM the manager holding the store's lock on this host and wait for it to let go; its pid."""
    try:
        JobStore.open(store).close()
        return None
    except StoreLocked:
        pass
    holder = store.with_name(store.name + ".lock").read_text().split()
    pid = int(holder[1]) if len(holder) > 1 and holder[0] == "pid" else None
    if pid is None:
        raise StoreLocked(f"store {store} is locked by an unknown process", hint="stop it, then cancel again")
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
    """Cancel every unfinished job: on the backend if it holds it, then in the store; how many."""
    backend = make_backend(campaign) if store.active() else None
    n = 0
    for row in store.active():
        if backend is not None and row["remote_id"]:
            backend.cancel(row["remote_id"])
        n += store.transition(row["job_id"], State.CANCELLED, backend_status="cancelled by user")
    for state in (State.PLANNED, State.WAITING):
        for row in list(store.rows(("job_id",), state=state)):
            n += store.transition(row["job_id"], State.CANCELLED)
    return n
