"""The backend protocol: submit, poll in bulk, fetch results, cancel, and find a lost submission.

Backends never touch the job store; the manager records what they answer.
Each classifies its failures: ``retryable`` says whether trying again may help.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ogc_upscaler.errors import BackendError


class BackPressure(BackendError):
    """The backend asked us to slow down (429, 503, a concurrent-job limit): not a failure of the job."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retryable=True, hint="ogc-upscaler waits and tries again by itself")
        self.retry_after = retry_after


class RemoteState(StrEnum):
    """A backend's status of one job, in our words (the raw status is kept beside it)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"


FINISHED = frozenset({RemoteState.SUCCEEDED, RemoteState.FAILED, RemoteState.CANCELLED, RemoteState.LOST})


@dataclass(frozen=True)
class RemoteStatus:
    """What a backend says of one job: state, raw status, and for failures why and whether to retry."""

    state: RemoteState
    raw: str
    error: str | None = None
    retryable: bool = True
    log_path: str | None = None


@dataclass(frozen=True)
class JobRequest:
    """One attempt of one job, as handed to a backend."""

    job_id: str
    attempt: int
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outputs:
    """Where a finished job's results are: the STAC catalog it wrote, and the raw output document."""

    catalog: Path | None
    raw: dict[str, Any]


class Backend(ABC):
    """Where jobs run. ``slots`` is how many may run at once; the manager polls at least
    ``poll_interval`` seconds apart, backing off while nothing changes up to ``poll_max``
    (cheap polls can afford a low ceiling, remote APIs want a higher one)."""

    name: str
    slots: int
    poll_interval: float = 0.2
    poll_max: float = 5.0

    @abstractmethod
    def submit(self, job: JobRequest) -> str:
        """Start the job; return the backend's id for it. Raises BackendError."""

    @abstractmethod
    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """The status of each job, in as few calls as the backend allows."""

    @abstractmethod
    def results(self, remote_id: str) -> Outputs:
        """The outputs of a succeeded job. Raises BackendError."""

    @abstractmethod
    def cancel(self, remote_id: str) -> None:
        """Stop the job if it still runs; safe to call on a finished one."""

    @abstractmethod
    def find(self, job_id: str, attempt: int) -> str | None:
        """The remote id of this attempt if its submission reached the backend, else None."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release what the backend holds (connections); running jobs go on."""
