"""Python called as jobs end, for notebook users coming from openEO's job manager: ``on_job_done(job)`` when a
job is collected, ``on_job_error(job)`` when it failed.

Each job's end is told once. The store records it (``notified_at``) before the hook is called, in the
same process that owns the store, so neither a second pass nor a resumed run calls a hook twice for the
same end; a job that ended while no run was told of hooks, or whose run died before telling, is told by
the next run that has them. A run killed *while a hook runs* does not call it again: at most once, then,
never twice. A job retried after failing ends anew, and is told anew. A hook that raises is logged with
its traceback and the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ogc_upscaler.store import Job, JobStore, State

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobHooks:
    """What to call when a job ends; either may be None."""

    on_job_done: Callable[[Job], None] | None = None
    on_job_error: Callable[[Job], None] | None = None

    def __bool__(self) -> bool:
        return self.on_job_done is not None or self.on_job_error is not None

    def tell(self, store: JobStore) -> int:
        """Tell every job's end not told yet, each once; returns how many were told."""
        told = 0
        while self and (ended := store.unnotified()):
            for job in ended:
                if not store.mark_notified(job.job_id):
                    continue
                told += 1
                hook = self.on_job_done if job.state is State.COLLECTED else self.on_job_error
                if hook is None:
                    continue
                try:
                    hook(job)
                except Exception:  # a user's hook never stops the run
                    log.exception("%s: the %s hook raised", job.job_id, hook.__name__)
        return told
