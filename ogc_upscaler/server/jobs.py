"""The endpoint's jobs, in SQLite: one row per execution, written before its worker starts.

pygeoapi keeps jobs in the web worker (threads, lost on restart); ours live in this
table and run in detached worker processes (:mod:`ogc_upscaler.server.worker`), so
any web worker of any server generation reads the same truth. Every change is one
guarded statement: a worker cannot turn a dismissed job back into a successful one;
of two web workers that both see a dead worker, only one restarts it; of two requests
that both start a ``created`` job (OGC API – Processes Part 4), only one launches its
worker; and a worker claims only the job it was launched for.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: A job recorded but not started (Part 4's ``Prefer: status="created"``): it waits for a start.
CREATED = "created"
ACTIVE = ("accepted", "running")
STATUSES = (CREATED, *ACTIVE, "successful", "failed", "dismissed")
MESSAGES = {CREATED: "created, waiting to be started", "accepted": "accepted, waiting for its worker"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    identifier TEXT PRIMARY KEY,
    process_id TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    progress INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    started TEXT,
    updated TEXT NOT NULL,
    finished TEXT,
    inputs TEXT NOT NULL,
    processor TEXT NOT NULL,
    folder TEXT NOT NULL,
    worker TEXT NOT NULL DEFAULT '',
    launched REAL NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    mimetype TEXT,
    location TEXT,
    definition TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""
#: Columns added since the table's first version: added on open to a table written by an older endpoint.
ADDED_COLUMNS = {"definition": "TEXT NOT NULL DEFAULT '{}'"}


def now() -> str:
    """The current time as pygeoapi writes it (ISO 8601, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class EndpointJob:
    """One row: what the API shows (status, message, progress, times), what runs it, and what was asked.

    ``inputs`` are the checked values the worker runs with; ``definition`` is the execute request as
    submitted (``process``, ``inputs``, ``outputs``, ``response``, ``prefer``).
    """

    identifier: str
    process_id: str
    status: str
    message: str
    progress: int
    created: str
    started: str | None
    updated: str
    finished: str | None
    inputs: dict[str, Any]
    processor: dict[str, Any]
    folder: Path
    worker: str
    launched: float
    restarts: int
    mimetype: str | None
    location: str | None
    definition: dict[str, Any]

    @property
    def active(self) -> bool:
        """Whether the job was started and has not ended yet (a created job is not active)."""
        return self.status in ACTIVE

    def as_pygeoapi(self) -> dict[str, Any]:
        """The job as pygeoapi's API layer reads it."""
        return {
            "type": "process",
            "identifier": self.identifier,
            "process_id": self.process_id,
            "status": self.status,
            "message": self.message,
            "progress": self.progress,
            "created": self.created,
            "started": self.started or self.created,
            "updated": self.updated,
            "finished": self.finished,
            "mimetype": self.mimetype,
            "location": self.location,
        }


class EndpointJobs:
    """The job table at ``path`` (created on first use). Safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            present = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
            for column, declaration in ADDED_COLUMNS.items():
                if column not in present:
                    with contextlib.suppress(sqlite3.OperationalError):  # another process added it just now
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {declaration}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    def add(
        self,
        identifier: str,
        process_id: str,
        inputs: dict[str, Any],
        processor: dict[str, Any],
        folder: Path,
        *,
        definition: dict[str, Any] | None = None,
        status: str = "accepted",
    ) -> None:
        """Record a new job: ``accepted`` (its worker is launched next) or ``created`` (it waits for a start)."""
        if status not in MESSAGES:
            raise ValueError(f"a new job is {' or '.join(MESSAGES)}, not {status!r}")
        stamp = now()
        with self._connect() as db:
            db.execute(
                "INSERT INTO jobs (identifier, process_id, status, message, progress, created, updated, inputs,"
                " processor, folder, launched, definition) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
                (
                    identifier,
                    process_id,
                    status,
                    MESSAGES[status],
                    stamp,
                    stamp,
                    json.dumps(inputs),
                    json.dumps(processor),
                    str(folder),
                    0.0 if status == CREATED else time.time(),
                    json.dumps(definition or {}),
                ),
            )

    def get(self, identifier: str) -> EndpointJob | None:
        """The job, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE identifier = ?", (identifier,)).fetchone()
        return _job(row) if row else None

    def list(
        self,
        limit: int | None = None,
        offset: int = 0,
        *,
        process_ids: Sequence[str] = (),
        statuses: Sequence[str] = (),
    ) -> tuple[list[EndpointJob], int]:
        """Jobs, newest first, of these processes and in these states (any, when empty); and how many match."""
        where: list[str] = []
        arguments: list[Any] = []
        for column, values in (("process_id", process_ids), ("status", statuses)):
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                arguments += list(values)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._connect() as db:
            total = db.execute(f"SELECT count(*) FROM jobs{clause}", arguments).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM jobs{clause} ORDER BY created DESC, identifier LIMIT ? OFFSET ?",
                [*arguments, -1 if limit is None else limit, offset],
            ).fetchall()
        return [_job(r) for r in rows], total

    def active(self) -> list[EndpointJob]:
        """Jobs started that have not ended."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM jobs WHERE status IN (?, ?)", ACTIVE).fetchall()
        return [_job(r) for r in rows]

    def start(self, identifier: str) -> bool:
        """A created job becomes accepted, its worker to be launched next; of concurrent callers only one
        wins (False: the job was started already, or was never a created job)."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'accepted', message = ?, launched = ?, updated = ?"
                " WHERE identifier = ? AND status = ?",
                (MESSAGES["accepted"], time.time(), now(), identifier, CREATED),
            )
        return cursor.rowcount == 1

    def launched(self, identifier: str, worker: str) -> bool:
        """Record the worker just launched for an active job, unless one is recorded already (it claimed the
        job first): a worker still starting up is then known alive, never taken for a lost one."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE jobs SET worker = ? WHERE identifier = ? AND worker = '' AND status IN (?, ?)",
                (worker, identifier, *ACTIVE),
            )
        return cursor.rowcount == 1

    def claim(self, identifier: str, worker: str) -> bool:
        """A worker takes the job: it becomes running under ``worker`` (pid and start time). Only the worker
        recorded as launched for it may (or any, while none is): a superseded launch finds the job taken."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'running', worker = ?, started = coalesce(started, ?), updated = ?,"
                " message = 'running' WHERE identifier = ? AND status IN (?, ?) AND worker IN ('', ?)",
                (worker, now(), now(), identifier, *ACTIVE, worker),
            )
        return cursor.rowcount == 1

    def progress(self, identifier: str, percent: int, message: str) -> None:
        """Record progress of a running job."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET progress = ?, message = ?, updated = ? WHERE identifier = ? AND status = 'running'",
                (max(0, min(99, percent)), message, now(), identifier),
            )

    def finish(
        self, identifier: str, status: str, message: str, *, location: str | None = None, mimetype: str | None = None
    ) -> bool:
        """End an active job (successful, failed or dismissed); False if it had already ended."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = ?, message = ?, progress = CASE WHEN ? = 'successful' THEN 100"
                " ELSE progress END, finished = ?, updated = ?, location = ?, mimetype = ?"
                " WHERE identifier = ? AND status IN (?, ?)",
                (status, message, status, now(), now(), location, mimetype, identifier, *ACTIVE),
            )
        return cursor.rowcount == 1

    def relaunch(self, identifier: str, old_worker: str) -> bool:
        """Take over a job whose worker is gone, to start another; only one caller wins."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE jobs SET worker = '', launched = ?, restarts = restarts + 1, updated = ?,"
                " message = 'resuming after its worker stopped' WHERE identifier = ? AND worker = ?"
                " AND status IN (?, ?)",
                (time.time(), now(), identifier, old_worker, *ACTIVE),
            )
        return cursor.rowcount == 1

    def delete(self, identifier: str) -> None:
        """Forget the job."""
        with self._connect() as db:
            db.execute("DELETE FROM jobs WHERE identifier = ?", (identifier,))


def _job(row: sqlite3.Row) -> EndpointJob:
    values = dict(row)
    values["inputs"] = json.loads(values["inputs"])
    values["processor"] = json.loads(values["processor"])
    values["folder"] = Path(values["folder"])
    values["definition"] = json.loads(values.get("definition") or "{}")
    return EndpointJob(**values)
