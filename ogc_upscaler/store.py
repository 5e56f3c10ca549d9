"""The job store: one SQLite row per job, every state transition one short transaction.

The store is the campaign's ledger. It is written by one process at a time
(the planner or the manager), enforced by an exclusive ``flock`` on a lock file
beside the database that the kernel releases when the process dies, even by
SIGKILL. Readers (``status``, ``export``) never take the lock and read a
consistent snapshot through SQLite's WAL.

States (see DESIGN.md)::

    planned → submitted → running → succeeded → collected
              ↘ waiting (back-off) → submitted …
              ↘ failed | cancelled                 (terminal)
    no_inputs: planned with no input items found   (terminal, never run)

A transition names its target state; it applies only if the job is in one of
the target's allowed source states, so a late status can never move a job out
of a terminal state.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ogc_upscaler.errors import StoreError, StoreLocked

SCHEMA_VERSION = 2


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


TERMINAL = frozenset({State.COLLECTED, State.FAILED, State.CANCELLED, State.NO_INPUTS})
ACTIVE = frozenset({State.SUBMITTED, State.RUNNING})

#: For each target state, the states a job may be in to move there.
SOURCES: dict[State, frozenset[State]] = {
    State.SUBMITTED: frozenset({State.PLANNED, State.WAITING}),
    State.RUNNING: frozenset({State.SUBMITTED, State.RUNNING}),
    State.SUCCEEDED: frozenset({State.SUBMITTED, State.RUNNING}),
    State.WAITING: frozenset({State.SUBMITTED, State.RUNNING}),
    State.FAILED: frozenset({State.SUBMITTED, State.RUNNING, State.WAITING, State.SUCCEEDED}),
    State.CANCELLED: frozenset({State.PLANNED, State.WAITING, State.SUBMITTED, State.RUNNING}),
    State.COLLECTED: frozenset({State.SUCCEEDED}),
}

#: Columns a transition may set besides the state and its timestamp.
MUTABLE = frozenset(
    {"backend", "remote_id", "backend_status", "retry_at", "error", "error_kind", "log_path", "outputs"}
)

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tiles (
    tile_id   TEXT PRIMARY KEY,
    epsg      INTEGER NOT NULL,
    xmin REAL NOT NULL, ymin REAL NOT NULL, xmax REAL NOT NULL, ymax REAL NOT NULL,
    footprint BLOB NOT NULL,
    area_km2  REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE jobs (
    seq            INTEGER PRIMARY KEY,
    job_id         TEXT NOT NULL UNIQUE,
    tile_id        TEXT NOT NULL REFERENCES tiles (tile_id),
    window_start   TEXT NOT NULL,
    window_end     TEXT NOT NULL,
    params_name    TEXT NOT NULL,
    params         TEXT NOT NULL,
    inputs         TEXT NOT NULL,
    spec_hash      TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'planned',
    backend        TEXT,
    remote_id      TEXT,
    backend_status TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    retry_at       TEXT,
    error          TEXT,
    error_kind     TEXT,
    log_path       TEXT,
    outputs        TEXT,
    {", ".join(f"{s.value}_at TEXT" for s in State)},
    updated_at     TEXT NOT NULL
);
CREATE INDEX jobs_state ON jobs (state, backend);
CREATE INDEX jobs_queue ON jobs (state, seq);
CREATE INDEX jobs_tile ON jobs (tile_id);
PRAGMA user_version = {SCHEMA_VERSION};
"""

#: Statements that bring a store from version N (the key) to N + 1.
_MIGRATIONS = {
    1: "BEGIN IMMEDIATE; ALTER TABLE jobs ADD COLUMN no_inputs_at TEXT; "
    "CREATE INDEX jobs_queue ON jobs (state, seq); PRAGMA user_version = 2; COMMIT;",
}

TILE_COLUMNS = ("tile_id", "epsg", "xmin", "ymin", "xmax", "ymax", "footprint", "area_km2")
SPEC_COLUMNS = ("job_id", "tile_id", "window_start", "window_end", "params_name", "params", "inputs", "spec_hash")


@dataclass(frozen=True)
class TileRecord:
    """A tile as the store keeps it: id, CRS, native bounds, WGS84 footprint (WKB) and area."""

    tile_id: str
    epsg: int
    bounds: tuple[float, float, float, float]
    footprint: bytes
    area_km2: float

    def row(self) -> tuple[Any, ...]:
        """The values of :data:`TILE_COLUMNS`."""
        return (self.tile_id, self.epsg, *self.bounds, self.footprint, self.area_km2)


@dataclass(frozen=True)
class JobSpec:
    """What the plan writes for one job: which tile, when, with what (JSON), and a hash of it all."""

    job_id: str
    tile_id: str
    window_start: str
    window_end: str
    params_name: str
    params: str
    inputs: str
    spec_hash: str
    state: State = State.PLANNED

    def row(self) -> tuple[Any, ...]:
        """The values of :data:`SPEC_COLUMNS`."""
        return (
            self.job_id,
            self.tile_id,
            self.window_start,
            self.window_end,
            self.params_name,
            self.params,
            self.inputs,
            self.spec_hash,
        )


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobStore:
    """A campaign's jobs in SQLite. Open with :meth:`open` (writer) or :meth:`read` (reader)."""

    def __init__(self, path: Path, connection: sqlite3.Connection, lock_fd: int | None) -> None:
        self.path = path
        self._db = connection
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: str | Path) -> JobStore:
        """Open (creating if needed) the store for writing; :class:`StoreLocked` if another process writes it."""
        path = Path(path)
        if path.parent and not path.parent.is_dir():
            raise StoreError(f"store {path}: folder {path.parent} does not exist", hint="create it or change `store:`")
        lock_fd = _lock(path)
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            store = cls(path, db, lock_fd)
            store._migrate()
        except sqlite3.DatabaseError as err:
            os.close(lock_fd)
            raise StoreError(
                f"store {path}: not a usable SQLite job store ({err})", hint="give another store path"
            ) from None
        except BaseException:
            os.close(lock_fd)
            raise
        return store

    @classmethod
    def read(cls, path: str | Path) -> JobStore:
        """Open an existing store read-only, without the writer lock."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"store {path}: no such store", hint="run `ogc-upscaler plan CONFIG` first")
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30.0)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise StoreError(f"store {path}: not a SQLite job store ({err})") from None
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"store {path}: schema version {version}, this ogc-upscaler reads {SCHEMA_VERSION}",
                hint="open it with the ogc-upscaler version that wrote it",
            )
        return cls(path, db, None)

    def close(self) -> None:
        """Close the database and release the writer lock."""
        self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        """A JSON value stored under ``key``, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key``."""
        self._writer()
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # -- the plan -----------------------------------------------------------------------------

    def spec_hashes(self) -> dict[str, str]:
        """Every job id with the hash of its spec."""
        return dict(self._db.execute("SELECT job_id, spec_hash FROM jobs"))

    def put_tiles(self, tiles: Iterable[TileRecord]) -> None:
        """Add tiles, or update the ones already known, in one transaction."""
        self._writer()
        marks = ", ".join("?" * len(TILE_COLUMNS))
        with self._transaction():
            self._db.executemany(
                f"INSERT OR REPLACE INTO tiles ({', '.join(TILE_COLUMNS)}) VALUES ({marks})", (t.row() for t in tiles)
            )

    def insert(self, specs: Iterable[JobSpec]) -> int:
        """Add new jobs in state ``planned``, in one transaction; returns how many."""
        self._writer()
        stamp = now()
        columns = ", ".join((*SPEC_COLUMNS, "state", "planned_at", "updated_at"))
        marks = ", ".join("?" * (len(SPEC_COLUMNS) + 3))
        with self._transaction():
            cursor = self._db.executemany(
                f"INSERT INTO jobs ({columns}) VALUES ({marks})",
                ((*s.row(), s.state.value, stamp, stamp) for s in specs),
            )
        return cursor.rowcount

    def replace_specs(self, specs: Iterable[JobSpec]) -> int:
        """Re-plan existing jobs: new spec, back to ``planned`` with no attempts, history cleared."""
        self._writer()
        stamp = now()
        sets = ", ".join(f"{c} = ?" for c in SPEC_COLUMNS[1:])
        cleared = ", ".join(
            f"{c} = NULL" for c in sorted(MUTABLE) + [f"{s.value}_at" for s in State if s != State.PLANNED]
        )
        with self._transaction():
            cursor = self._db.executemany(
                f"UPDATE jobs SET {sets}, {cleared}, state = ?, attempts = 0, planned_at = ?, updated_at = ? "
                "WHERE job_id = ?",
                ((*s.row()[1:], s.state.value, stamp, stamp, s.job_id) for s in specs),
            )
        return cursor.rowcount

    def delete(self, job_ids: Iterable[str], *, only_state: State = State.PLANNED) -> int:
        """Remove jobs that are still in ``only_state``; returns how many."""
        self._writer()
        with self._transaction():
            cursor = self._db.executemany(
                "DELETE FROM jobs WHERE job_id = ? AND state = ?", ((j, only_state.value) for j in job_ids)
            )
        return cursor.rowcount

    # -- transitions --------------------------------------------------------------------------

    def transition(
        self, job_id: str, to: State, *, attempt: int | None = None, refund: bool = False, **fields: Any
    ) -> bool:
        """Move one job to state ``to`` if it is in an allowed source state; True if it moved.

        Moving to ``submitted`` counts an attempt. ``attempt``, when given, must
        match the job's attempt count, so a status of an earlier attempt is ignored. ``refund``
        gives back the attempt (a submission refused for back-pressure).
        ``fields`` set other columns (see :data:`MUTABLE`); ``outputs`` is stored as JSON.
        """
        self._writer()
        if to not in SOURCES:
            raise ValueError(f"no transition leads to {to.value!r}: jobs get there by planning only")
        unknown = set(fields) - MUTABLE
        if unknown:
            raise ValueError(f"transition cannot set {sorted(unknown)}; settable: {sorted(MUTABLE)}")
        if "outputs" in fields and fields["outputs"] is not None:
            fields["outputs"] = json.dumps(fields["outputs"])
        stamp = now()
        sets = ["state = ?", f"{to.value}_at = ?", "updated_at = ?", *(f"{k} = ?" for k in fields)]
        if to is State.SUBMITTED:
            sets.append("attempts = attempts + 1")
        elif refund:  # the backend refused for load, not for the job: this attempt does not count
            sets.append("attempts = max(0, attempts - 1)")
        sources = SOURCES[to]
        where = f"job_id = ? AND state IN ({', '.join('?' * len(sources))})"
        args: list[Any] = [to.value, stamp, stamp, *fields.values(), job_id, *sorted(s.value for s in sources)]
        if attempt is not None:
            where += " AND attempts = ?"
            args.append(attempt)
        cursor = self._db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE {where}", args)
        return cursor.rowcount == 1

    def update(self, job_id: str, *, state: State, **fields: Any) -> bool:
        """Set columns of a job that is still in ``state``, without moving it; True if it was."""
        self._writer()
        unknown = set(fields) - MUTABLE
        if unknown:
            raise ValueError(f"update cannot set {sorted(unknown)}; settable: {sorted(MUTABLE)}")
        sets = ", ".join([*(f"{k} = ?" for k in fields), "updated_at = ?"])
        cursor = self._db.execute(
            f"UPDATE jobs SET {sets} WHERE job_id = ? AND state = ?", [*fields.values(), now(), job_id, state.value]
        )
        return cursor.rowcount == 1

    def requeue(self, states: Iterable[State]) -> int:
        """Put jobs in ``states`` (failed, cancelled…) back to ``planned`` with fresh attempts; how many."""
        self._writer()
        chosen = sorted({s.value for s in states})
        cleared = ", ".join(f"{c} = NULL" for c in sorted(MUTABLE - {"log_path"}))
        with self._transaction():
            cursor = self._db.execute(
                f"UPDATE jobs SET state = 'planned', attempts = 0, {cleared}, planned_at = ?, updated_at = ? "
                f"WHERE state IN ({', '.join('?' * len(chosen))})",
                [now(), now(), *chosen],
            )
        return cursor.rowcount

    # -- reading ------------------------------------------------------------------------------

    def due(self, limit: int, at: str) -> list[dict[str, Any]]:
        """Up to ``limit`` jobs to submit now, in plan order: planned ones and waiting ones whose back-off ended."""
        if limit <= 0:
            return []
        columns = "seq, job_id, state, attempts, inputs"
        cursor = self._db.execute(
            f"SELECT {columns} FROM ("
            f" SELECT {columns} FROM (SELECT {columns} FROM jobs WHERE state = 'planned' ORDER BY seq LIMIT ?)"
            f" UNION ALL"
            f" SELECT {columns} FROM (SELECT {columns} FROM jobs WHERE state = 'waiting' AND retry_at <= ?"
            f"  ORDER BY seq LIMIT ?)"
            ") ORDER BY seq LIMIT ?",
            (limit, at, limit, limit),
        )
        return [_as_dict(cursor, row) for row in cursor.fetchall()]

    def next_retry(self) -> str | None:
        """The earliest end of a back-off among waiting jobs, or None."""
        return self._db.execute("SELECT min(retry_at) FROM jobs WHERE state = 'waiting'").fetchone()[0]

    def active(self) -> list[dict[str, Any]]:
        """Jobs submitted or running, with what re-attaching them needs."""
        cursor = self._db.execute(
            "SELECT job_id, state, backend, remote_id, attempts, submitted_at FROM jobs "
            "WHERE state IN ('submitted', 'running') ORDER BY seq"
        )
        return [_as_dict(cursor, row) for row in cursor.fetchall()]

    def counts(self) -> list[tuple[str, str | None, int]]:
        """Jobs per (state, backend)."""
        return list(self._db.execute("SELECT state, backend, count(*) FROM jobs GROUP BY state, backend"))

    def count(self) -> int:
        """The number of jobs."""
        return self._db.execute("SELECT count(*) FROM jobs").fetchone()[0]

    def get(self, job_id: str) -> dict[str, Any] | None:
        """One job's row, with its tile's columns, as a dict; or None."""
        cursor = self._db.execute("SELECT * FROM jobs JOIN tiles USING (tile_id) WHERE job_id = ?", (job_id,))
        row = cursor.fetchone()
        return None if row is None else _as_dict(cursor, row)

    def rows(self, columns: Iterable[str] = ("*",), *, state: State | None = None) -> Iterator[dict[str, Any]]:
        """Jobs in plan order as dicts, with their tile's columns, streamed (memory stays flat)."""
        names = ", ".join(_column(c) for c in columns)
        sql, args = f"SELECT {names} FROM jobs JOIN tiles USING (tile_id)", ()
        if state is not None:
            sql, args = sql + " WHERE state = ?", (state.value,)
        cursor = self._db.execute(sql + " ORDER BY seq", args)
        while batch := cursor.fetchmany(1000):
            for row in batch:
                yield _as_dict(cursor, row)

    def check(self) -> str:
        """SQLite's integrity check: ``"ok"`` for an intact store."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    # -- internals ----------------------------------------------------------------------------

    def _writer(self) -> None:
        if self._lock_fd is None:
            raise StoreError(f"store {self.path} was opened read-only", hint="open it with JobStore.open to write")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise StoreError(
                    f"store {self.path}: a SQLite database that is not a job store",
                    hint="give a new file name for the store",
                )
            self._db.executescript(_SCHEMA)
            self.set_meta("created_at", now())
        elif version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path}: schema version {version} is newer than this ogc-upscaler's ({SCHEMA_VERSION})",
                hint="upgrade ogc-upscaler",
            )
        for step in range(version or SCHEMA_VERSION, SCHEMA_VERSION):
            self._db.executescript(_MIGRATIONS[step])  # each script is one transaction


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if kind else "COMMIT")


_COLUMNS = frozenset(
    (
        *SPEC_COLUMNS,
        *TILE_COLUMNS,
        "seq",
        "state",
        "attempts",
        "updated_at",
        *MUTABLE,
        *(f"{s.value}_at" for s in State),
        "*",
    )
)


def _column(name: str) -> str:
    if name not in _COLUMNS:
        raise ValueError(f"no column {name!r} in the job store")
    return name


def _as_dict(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _lock(path: Path) -> int:
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StoreLocked(
            f"store {path} is being written by {holder}",
            hint="wait for that run to end or stop it; read-only commands (status, export) work meanwhile",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
    return fd
