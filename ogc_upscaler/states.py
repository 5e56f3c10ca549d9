"""A job's states, our own and kept apart from the backend's raw status (the store records them; see
DESIGN.md for the moves between them). A module of its own so that the command line can name them
without opening the store's machinery."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ACTIVE", "TERMINAL", "UNRESOLVED", "State"]


class State(StrEnum):
    """Our own state of a job, kept apart from the backend's raw status."""

    PLANNED = "planned"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COLLECTED = "collected"
    WAITING = "waiting"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NO_INPUTS = "no_inputs"
    IN_DOUBT = "in_doubt"


TERMINAL = frozenset({State.COLLECTED, State.FAILED, State.CANCELLED, State.NO_INPUTS})
#: States in which the backend holds the job (or may: a submission not yet answered).
ACTIVE = frozenset({State.SUBMITTED, State.RUNNING})
#: States a campaign can end in without every job done: they need a person (``retry``).
UNRESOLVED = frozenset({State.FAILED, State.IN_DOUBT})
