"""Several backends as one: a campaign spread over several OGC API endpoints.

Each job goes to the member with the most free slots (relative to its own limit) that
is not paused. A member is paused alone when it asks us to slow down (429/503, for as long
as it asks) or cannot be reached at all (for a back-off that grows while it stays
unreachable), and the others take the work; only when every member is full or paused does
the pool itself ask the manager to wait. Remote ids are ``<member>|<member's id>``, so a
resumed run routes every poll, result and cancel to the member that holds the job; an id
naming no member (one removed from the config) is lost for its job alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ogc_upscaler.backends.base import (
    FINISHED,
    NOT_THERE,
    Backend,
    BackPressure,
    Found,
    JobRequest,
    Outputs,
    RemoteState,
    RemoteStatus,
    Submission,
    Unreachable,
)
from ogc_upscaler.errors import BackendError, InvalidConfig

log = logging.getLogger(__name__)
SEPARATOR = "|"
#: First pause of an unreachable member, in seconds; it doubles while the member stays unreachable.
UNREACHABLE_PAUSE = 10.0
UNREACHABLE_MAX = 300.0


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
        self.poll_interval = min(m.poll_interval for m in members)
        self.poll_max = min(m.poll_max for m in members)
        self.clock = clock
        self.held: dict[str, set[str]] = {n: set() for n in names}
        self.paused: dict[str, float] = {}
        self._unreachable: dict[str, float] = {}  # the member's current pause length
        self.excluded: dict[str, str] = {}  # members that could not be checked, and why: no jobs for them

    def submit(self, job: JobRequest) -> str:
        """Submit to the least loaded member that takes it."""
        now = self.clock()
        ready = [
            m
            for n, m in self.members.items()
            if n not in self.excluded and self.paused.get(n, 0.0) <= now and len(self.held[n]) < m.slots
        ]
        for member in sorted(ready, key=lambda m: len(self.held[m.name]) / m.slots):
            try:
                remote_id = member.submit(job)
            except BackPressure as err:
                self.paused[member.name] = now + err.retry_after
                continue
            except Unreachable as err:
                pause = min(UNREACHABLE_MAX, 2 * self._unreachable.get(member.name, UNREACHABLE_PAUSE / 2))
                self._unreachable[member.name] = pause
                self.paused[member.name] = now + pause
                log.warning("%s is unreachable (%s); the others take its work for %.0f s", member.name, err, pause)
                continue
            self._unreachable.pop(member.name, None)
            self.held[member.name].add(remote_id)
            return member.name + SEPARATOR + remote_id
        waits = [until - now for until in self.paused.values() if until > now]
        if len(waits) < len(self.members) - len(self.excluded):  # some are only full: a slot frees soon
            raise BackPressure("every backend of the pool that takes jobs now is full", 1.0)
        raise BackPressure("every backend of the pool asks to slow down", max(0.5, min(waits, default=1.0)))

    @property
    def slots(self) -> int:  # type: ignore[override]
        """Jobs the pool may hold now: each member that takes jobs its own slots, each paused or excluded one
        the jobs it holds already (so the manager offers no job that only a paused member could take)."""
        now = self.clock()
        taking = {n for n in self.members if n not in self.excluded and self.paused.get(n, 0.0) <= now}
        return sum(m.slots if n in taking else len(self.held[n]) for n, m in self.members.items())

    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """Each member polled once for its own jobs; one member's failure leaves only its jobs unread."""
        grouped: dict[str, list[str]] = {}
        statuses: dict[str, RemoteStatus] = {}
        for rid in remote_ids:
            member, _, remote = rid.partition(SEPARATOR)
            if member in self.members and remote:
                grouped.setdefault(member, []).append(remote)
            else:
                statuses[rid] = RemoteStatus(RemoteState.LOST, "no such backend", _stale(rid, self.members), False)
        for member, remotes in grouped.items():
            try:
                answered = self.members[member].poll(remotes)
            except BackendError as err:
                log.warning("polling %s failed (will retry): %s", member, err.message)
                continue
            for remote, status in answered.items():
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

    def find(self, job: JobRequest, since: float, known: Callable[[str], bool]) -> Found:
        """Asks every member: found where one found it; in doubt where one cannot tell; else not there."""
        doubts = []
        for name, member in self.members.items():
            found = member.find(job, since, lambda rid, name=name: known(name + SEPARATOR + rid))
            if found.remote_id is not None:
                self.held[name].add(found.remote_id)
                return Found(name + SEPARATOR + found.remote_id)
            if not found.certain:
                doubts.append(f"{name}: {found.reason}")
        return Found(None, certain=False, reason="; ".join(doubts)) if doubts else NOT_THERE

    def remember(self, submissions: Sequence[Submission]) -> None:
        """Each member its own answered submissions; an unanswered one may be any member's, so all hear of it."""
        for name, member in self.members.items():
            prefix = name + SEPARATOR
            member.remember(
                [
                    replace(s, remote_id=s.remote_id.removeprefix(prefix) if s.remote_id else None)
                    for s in submissions
                    if s.remote_id is None or s.remote_id.startswith(prefix)
                ]
            )

    def check(self, job_id: str, inputs: dict[str, Any]) -> None:
        """Every member must take the job: any of them may get it.

        A member that cannot be asked (unreachable, failing) takes no jobs in this run, with a
        warning; the others go on. When none can be asked, the run cannot start.
        """
        for name, member in self.members.items():
            if name in self.excluded:
                continue
            try:
                member.check(job_id, inputs)
            except BackendError as err:
                self.excluded[name] = err.message
                log.warning("%s cannot be checked (%s): it takes no jobs in this run", name, err.message)
        if len(self.excluded) == len(self.members):
            reasons = "; ".join(f"{n}: {why}" for n, why in self.excluded.items())
            raise BackendError(f"no backend of the pool can take jobs: {reasons}", retryable=True)

    def close(self) -> None:
        for member in self.members.values():
            member.close()

    def _split(self, remote_id: str) -> tuple[str, str]:
        member, sep, remote = remote_id.partition(SEPARATOR)
        if not sep or member not in self.members:
            raise BackendError(_stale(remote_id, self.members), retryable=False, hint=STALE_HINT)
        return member, remote


STALE_HINT = "a backend was renamed or removed from the config while its jobs ran; restore it"


def _stale(remote_id: str, members: dict[str, Backend]) -> str:
    return f"job id {remote_id!r} names no backend of this pool ({', '.join(members)}); {STALE_HINT}"
