"""The backend protocol: submit, poll in bulk, fetch results, cancel, and find a lost submission.

Backends never touch the job store; the manager records what they answer.
Each classifies its failures: ``retryable`` says whether trying again may help, and
three kinds say more: :class:`BackPressure` (slow down; not the job's fault),
:class:`Unreachable` (the request never left: safe to send elsewhere or later) and
:class:`InDoubt` (a submission whose answer was lost: it may have reached the backend,
so it is looked up with :meth:`Backend.find` before anything is sent again).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field

from ogc_upscaler.errors import BackendError

if TYPE_CHECKING:
    from ogc_upscaler.cwl import Package
    from ogc_upscaler.s3_access import S3Access


class BackPressure(BackendError):
    """The backend asked us to slow down (429, 503, a concurrent-job limit): not a failure of the job."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retryable=True, hint="ogc-upscaler waits and tries again by itself")
        self.retry_after = retry_after


class Unreachable(BackendError):
    """The backend could not be reached at all (connection refused, no route, name unknown):
    the request never left, so nothing was created there."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, retryable=True, hint=hint or "check that the backend is up and its URL is right")


class InDoubt(BackendError):
    """A submission whose answer was lost after the request left: the job may exist on the backend.

    ``settle`` is how long to wait before looking it up (a slow server may still be creating it).
    """

    def __init__(self, message: str, settle: float = 0.0) -> None:
        super().__init__(message, retryable=True, hint="ogc-upscaler looks the job up before it sends anything again")
        self.settle = settle


@dataclass(frozen=True)
class Found:
    """What :meth:`Backend.find` learnt of a submission whose answer never came.

    ``remote_id`` is the backend's id for it when it reached the backend. ``certain`` is
    False when the backend cannot tell (``reason`` says why): the job is then *in doubt*.
    """

    remote_id: str | None
    certain: bool = True
    reason: str = ""


NOT_THERE = Found(None)


@dataclass(frozen=True)
class Submission:
    """One job's last submission as the campaign recorded it: when it began, and its remote id once answered."""

    job_id: str
    attempt: int
    at: float
    remote_id: str | None


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
    out_of_memory: bool = False


@dataclass(frozen=True)
class JobRequest:
    """One attempt of one job, as handed to a backend."""

    job_id: str
    attempt: int
    inputs: dict[str, Any] = field(default_factory=dict)
    memory_scale: float = 1.0  # > 1 after an attempt ran out of memory: ask for that much more


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
        """Start the job; return the backend's id for it.

        Raises :class:`BackendError`; :class:`InDoubt` when the request left but its answer was lost.
        """

    @abstractmethod
    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """The status of each job, in as few calls as the backend allows.

        An id the backend cannot read this time may be left out (it is asked again later).
        """

    @abstractmethod
    def results(self, remote_id: str) -> Outputs:
        """The outputs of a succeeded job; safe to call again. Raises BackendError."""

    @abstractmethod
    def cancel(self, remote_id: str) -> None:
        """Stop the job if it still runs; safe to call on a finished or unknown one.

        Returns once the backend confirmed; raises :class:`BackendError` when it could not
        (``retryable``: the manager tries again; permanent: the backend cannot stop jobs).
        """

    @abstractmethod
    def find(self, job: JobRequest, since: float, known: Callable[[str], bool]) -> Found:
        """Whether this attempt's submission reached the backend, begun at ``since`` (epoch seconds).

        ``known(remote_id)`` tells whether the campaign already holds a remote id, so a
        backend that looks submissions up in its job list never adopts another job's.
        """

    def remember(self, submissions: Sequence[Submission]) -> None:  # noqa: B027 - optional hook
        """Learn the campaign's recent submissions to this backend, in the order they were made, before
        :meth:`find` is asked about the unanswered ones among them (after a restart)."""

    def check(self, job_id: str, inputs: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Refuse, before anything runs, inputs this backend could never run (raise InvalidInput)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release what the backend holds (connections); running jobs go on."""


@dataclass(frozen=True)
class BuildContext:
    """What a backend's settings need to build the backend: the folder for its job folders, the
    campaign's application package (loaded only by the backends that run it), and how jobs reach the
    ``s3://`` inputs (None: as the environment says)."""

    jobs: Path
    package: Callable[[], Package]
    s3: S3Access | None = None


class BackendSettings(BaseModel):
    """One backend's section of a campaign config, as written; ``type`` chooses the backend.

    Each backend module defines its own subclass named ``Settings`` (with ``type`` a
    ``Literal`` of its name, and the keys it takes), registered under that name in the
    ``ogc_upscaler.backends`` entry points (:mod:`ogc_upscaler.backends.registry`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][-_.A-Za-z0-9]*$")
    parallel: int = Field(default=2, ge=1, le=1024, description="jobs at once")

    def resolve(self, base_dir: Path, workdir: Path) -> Self:
        """These settings with their paths made absolute (relative to the config's folder ``base_dir``,
        or in the campaign's ``workdir``); most backends have none."""
        return self

    def build(self, context: BuildContext) -> Backend:
        """The backend these settings describe."""
        raise NotImplementedError(f"backend type {self.type!r} does not say how it is built")

    @property
    def label(self) -> str:
        """The backend's name in the store and in messages."""
        return self.name or self.type
