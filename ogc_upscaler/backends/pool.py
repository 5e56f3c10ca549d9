"""Several backends as one: a campaign spread over several OGC API endpoints.

Each job goes to the member with the most free slots (relative to its own limit) that
is not asking us to slow down; a member answering 429/503 is paused alone while the
others go on, and only when every member is full or paused does the pool itself ask
the manager to wait. Remote ids are ``<member>|<member's id>``, so a resumed run routes
every poll, result and cancel to the member that holds the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ogc_upscaler.backends.base import FINISHED, Backend, BackPressure, JobRequest, Outputs, RemoteStatus
from ogc_upscaler.errors import BackendError, InvalidConfig

SEPARATOR = "|"


class Pool(Backend):
    """Routes jobs over ``members`` (backends with distinct names)."""

    def __init__(self, members: Sequence[Backend], name: str = "pool", clock: Callable[[], float] = time.monotonic):
        names = [m.name for m in members]
        if len(set(names)) != len(names) or any(SEPARATOR in n for n in names):
            raise InvalidConfig(
                f"backends: names must be distinct and free of {SEPARATOR!r}, got {', '.join(names)}",
                hint="give each backend its own `name`",
            )
        self.name = name
        self.members = {m.name: m for m in members}
        self.slots = sum(m.slots for m in members)
        self.poll_interval = min(m.poll_interval for m in members)
        self.poll_max = min(m.poll_max for m in members)
        self.clock = clock
        self.held: dict[str, set[str]] = {n: set() for n in names}
        self.paused: dict[str, float] = {}

    def submit(self, job: JobRequest) -> str:
        """Submit to the least loaded member that takes it."""
        now = self.clock()
        ready = [m for n, m in self.members.items() if self.paused.get(n, 0.0) <= now and len(self.held[n]) < m.slots]
        for member in sorted(ready, key=lambda m: len(self.held[m.name]) / m.slots):
            try:
                remote_id = member.submit(job)
            except BackPressure as err:
                self.paused[member.name] = now + err.retry_after
                continue
            self.held[member.name].add(remote_id)
            return member.name + SEPARATOR + remote_id
        waits = [until - now for until in self.paused.values() if until > now]
        raise BackPressure("every backend of the pool is full or asks to slow down", max(0.5, min(waits, default=1.0)))

    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """Each member polled once for its own jobs."""
        grouped: dict[str, list[str]] = {}
        for rid in remote_ids:
            member, remote = self._split(rid)
            grouped.setdefault(member, []).append(remote)
        statuses: dict[str, RemoteStatus] = {}
        for member, remotes in grouped.items():
            for remote, status in self.members[member].poll(remotes).items():
                held = self.held[member]
                held.discard(remote) if status.state in FINISHED else held.add(remote)
                statuses[member + SEPARATOR + remote] = status
        return statuses

    def results(self, remote_id: str) -> Outputs:
        member, remote = self._split(remote_id)
        return self.members[member].results(remote)

    def cancel(self, remote_id: str) -> None:
        member, remote = self._split(remote_id)
        self.members[member].cancel(remote)
        self.held[member].discard(remote)

    def find(self, job_id: str, attempt: int) -> str | None:
        for name, member in self.members.items():
            remote = member.find(job_id, attempt)
            if remote is not None:
                return name + SEPARATOR + remote
        return None

    def close(self) -> None:
        for member in self.members.values():
            member.close()

    def _split(self, remote_id: str) -> tuple[str, str]:
        member, sep, remote = remote_id.partition(SEPARATOR)
        if not sep or member not in self.members:
            raise BackendError(
                f"job id {remote_id!r} names no backend of this pool ({', '.join(self.members)})",
                retryable=False,
                hint="a backend was renamed or removed from the config while its jobs ran; restore it",
            )
        return member, remote
