"""The job store: one SQLite row per job, every state transition in a short transaction.

The store is the campaign's ledger. It is written by one process at a time
(the planner or the manager), enforced by an exclusive ``flock`` on a lock file
beside the database (named after the resolved path, so a symlink cannot give a
second writer a second lock) that the kernel releases when the process dies,
even by SIGKILL. Readers (``status``, ``export``) never take the lock and read a
consistent snapshot through SQLite's WAL.

States (see DESIGN.md)::

    planned → submitted → running → succeeded → collected
              ↘ waiting (back-off) → submitted …
              ↘ failed | cancelled                 (terminal)
              ↘ in_doubt (the submission's answer was lost and could not be reconciled)
    no_inputs: planned with no input items found   (terminal, never run)

Jobs move only by the named :class:`Move` operations of :data:`MOVES`, each with its
allowed source states, so a late status can never move a job out of a terminal state.
The store hands out frozen :class:`Job` records; nothing outside this module reads a
column by name.

Each move commits on its own, or with the others of a :meth:`JobStore.batch` (one commit
for a manager's pass). The write-ahead log is synced to disk at checkpoints, not at every commit
(``synchronous = NORMAL``): a commit survives the death of the process the moment it returns; a
power loss or an OS crash leaves an intact store that may have lost its last commits (the README's
job store says what that means for a campaign, and why the store does not sync each one).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import EllipsisType
from typing import Any, NamedTuple

from ogc_upscaler.errors import StoreError, StoreLocked
from ogc_upscaler.states import ACTIVE, State

SCHEMA_VERSION = 6
#: Bytes of write-ahead log kept after a checkpoint (SQLite's journal_size_limit).
WAL_LIMIT = 64 * 2**20


class Move(StrEnum):
    """The named ways a job changes state; :data:`MOVES` gives each one's sources and target."""

    SUBMIT = "submit"  # handed to a backend: counts an attempt
    START = "start"  # the backend runs it
    SUCCEED = "succeed"  # the backend says it succeeded
    COLLECT = "collect"  # its outputs are in the catalog
    DEFER = "defer"  # tried again after a back-off (or a lost submission found not to have arrived)
    DOUBT = "doubt"  # the submission may or may not have reached the backend, and we cannot tell
    FAIL = "fail"  # no more attempts, or a permanent error
    CANCEL = "cancel"  # stopped by a person


@dataclass(frozen=True)
class Rule:
    """Where a move may start from and where it leads."""

    sources: frozenset[State]
    target: State


MOVES: dict[Move, Rule] = {
    Move.SUBMIT: Rule(frozenset({State.PLANNED, State.WAITING}), State.SUBMITTED),
    Move.START: Rule(frozenset({State.SUBMITTED, State.RUNNING}), State.RUNNING),
    Move.SUCCEED: Rule(frozenset({State.SUBMITTED, State.RUNNING}), State.SUCCEEDED),
    Move.COLLECT: Rule(frozenset({State.SUCCEEDED}), State.COLLECTED),
    Move.DEFER: Rule(frozenset({State.SUBMITTED, State.RUNNING, State.IN_DOUBT}), State.WAITING),
    Move.DOUBT: Rule(frozenset({State.SUBMITTED}), State.IN_DOUBT),
    Move.FAIL: Rule(
        frozenset({State.SUBMITTED, State.RUNNING, State.WAITING, State.SUCCEEDED, State.IN_DOUBT}), State.FAILED
    ),
    Move.CANCEL: Rule(
        frozenset({State.PLANNED, State.WAITING, State.SUBMITTED, State.RUNNING, State.IN_DOUBT}), State.CANCELLED
    ),
}

#: Columns a move (or :meth:`JobStore.note`) may set besides the state and its timestamp.
MUTABLE = frozenset(
    {"backend", "remote_id", "backend_status", "retry_at", "error", "error_kind", "log_path", "outputs"}
)

_STATE_TIMES = ", ".join(f"{s.value}_at TEXT" for s in State)
_SCHEMA = f"""
BEGIN IMMEDIATE;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tiles (
    tile_id   TEXT PRIMARY KEY,
    epsg      INTEGER NOT NULL,
    xmin REAL NOT NULL, ymin REAL NOT NULL, xmax REAL NOT NULL, ymax REAL NOT NULL,
    footprint BLOB NOT NULL,
    area_km2  REAL NOT NULL,
    props     TEXT NOT NULL DEFAULT '{{}}'
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
    {_STATE_TIMES},
    updated_at     TEXT NOT NULL,
    rank           REAL NOT NULL DEFAULT 0,
    notified_at    TEXT
);
CREATE INDEX jobs_state ON jobs (state, backend);
CREATE INDEX jobs_queue ON jobs (state, rank, seq);
CREATE INDEX jobs_tile ON jobs (tile_id);
CREATE INDEX jobs_remote ON jobs (remote_id);
CREATE INDEX jobs_unnotified ON jobs (seq) WHERE notified_at IS NULL AND state IN ('collected', 'failed');
CREATE TABLE remotes (remote_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, attempt INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('created_at', json_quote(strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
PRAGMA user_version = {SCHEMA_VERSION};
COMMIT;
"""

#: Statements that bring a store from version N (the key) to N + 1, each one transaction.
_MIGRATIONS = {
    1: "BEGIN IMMEDIATE; ALTER TABLE jobs ADD COLUMN no_inputs_at TEXT; "
    "CREATE INDEX jobs_queue ON jobs (state, seq); PRAGMA user_version = 2; COMMIT;",
    2: "BEGIN IMMEDIATE; ALTER TABLE jobs ADD COLUMN in_doubt_at TEXT; "
    "CREATE INDEX jobs_remote ON jobs (remote_id); "
    "CREATE TABLE remotes (remote_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, attempt INTEGER NOT NULL) WITHOUT ROWID; "
    "INSERT OR IGNORE INTO remotes SELECT remote_id, job_id, attempts FROM jobs WHERE remote_id IS NOT NULL; "
    "PRAGMA user_version = 3; COMMIT;",
    3: "BEGIN IMMEDIATE; ALTER TABLE tiles ADD COLUMN props TEXT NOT NULL DEFAULT '{}'; "
    "PRAGMA user_version = 4; COMMIT;",
    4: "BEGIN IMMEDIATE; ALTER TABLE jobs ADD COLUMN rank REAL NOT NULL DEFAULT 0; DROP INDEX jobs_queue; "
    "CREATE INDEX jobs_queue ON jobs (state, rank, seq); PRAGMA user_version = 5; COMMIT;",
    5: "BEGIN IMMEDIATE; ALTER TABLE jobs ADD COLUMN notified_at TEXT; CREATE INDEX jobs_unnotified ON jobs (seq) "
    "WHERE notified_at IS NULL AND state IN ('collected', 'failed'); PRAGMA user_version = 6; COMMIT;",
}

TILE_COLUMNS = ("tile_id", "epsg", "xmin", "ymin", "xmax", "ymax", "footprint", "area_km2", "props")
SPEC_COLUMNS = ("job_id", "tile_id", "window_start", "window_end", "params_name", "params", "inputs", "spec_hash")
JOB_COLUMNS = (
    "seq",
    *SPEC_COLUMNS,
    "state",
    "backend",
    "remote_id",
    "backend_status",
    "attempts",
    "retry_at",
    "error",
    "error_kind",
    "log_path",
    "outputs",
    *(f"{s.value}_at" for s in State),
    "updated_at",
)
#: Every column of a job joined with its tile, in the order :meth:`Job.columns` gives them.
COLUMNS = (*JOB_COLUMNS, *TILE_COLUMNS[1:])


@dataclass(frozen=True)
class TileRecord:
    """A tile as the store keeps it: id, CRS, native bounds, WGS84 footprint (WKB), area and attributes."""

    tile_id: str
    epsg: int
    bounds: tuple[float, float, float, float]
    footprint: bytes
    area_km2: float
    props: Mapping[str, Any] = field(default_factory=dict)

    def row(self) -> tuple[Any, ...]:
        """The values of :data:`TILE_COLUMNS`."""
        props = json.dumps(dict(self.props), sort_keys=True, default=str)
        return (self.tile_id, self.epsg, *self.bounds, self.footprint, self.area_km2, props)


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
    #: Jobs run in order of rank, then of planning: ``priority`` gives a tile's jobs a rank (0 without it).
    rank: float = 0.0

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


@dataclass(frozen=True)
class JobOutputs:
    """What a job produced, as the store keeps it.

    ``catalog`` and ``raw`` are the backend's (the STAC catalog the job wrote, the raw
    output document); ``item``, ``cog`` and ``results`` are set once it is collected
    (paths relative to the campaign's output folder).
    """

    catalog: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    item: str | None = None
    cog: str | None = None
    results: str | None = None

    def to_json(self) -> str:
        """The JSON text the store keeps."""
        body = {"catalog": self.catalog, "raw": dict(self.raw), "item": self.item}
        body.update({k: v for k, v in (("cog", self.cog), ("results", self.results)) if v is not None})
        return json.dumps(body)

    @classmethod
    def from_json(cls, text: str | None) -> JobOutputs | None:
        """The outputs stored as ``text`` (None for none)."""
        if not text:
            return None
        body = json.loads(text)
        raw = body.get("raw")
        return cls(
            catalog=body.get("catalog"),
            raw=raw if isinstance(raw, dict) else {},
            item=body.get("item"),
            cog=body.get("cog"),
            results=body.get("results"),
        )


@dataclass(frozen=True)
class Job:
    """One job as the store holds it: its spec, its state and history, and (when asked for) its tile."""

    seq: int
    job_id: str
    tile_id: str
    window_start: str
    window_end: str
    params_name: str
    params: Mapping[str, Any]
    inputs: Mapping[str, Any]
    spec_hash: str
    state: State
    backend: str | None
    remote_id: str | None
    backend_status: str | None
    attempts: int
    retry_at: str | None
    error: str | None
    error_kind: str | None
    log_path: str | None
    outputs: JobOutputs | None
    times: Mapping[State, str]
    updated_at: str
    tile: TileRecord | None = None

    def at(self, state: State) -> str | None:
        """When the job last entered ``state`` (ISO 8601), or None."""
        return self.times.get(state)

    def columns(self) -> dict[str, Any]:
        """The job's columns by name, as stored (JSON columns as text), its tile's too when it has one."""
        values: dict[str, Any] = {
            "seq": self.seq,
            "job_id": self.job_id,
            "tile_id": self.tile_id,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "params_name": self.params_name,
            "params": json.dumps(self.params, sort_keys=True),
            "inputs": json.dumps(self.inputs, sort_keys=True),
            "spec_hash": self.spec_hash,
            "state": self.state.value,
            "backend": self.backend,
            "remote_id": self.remote_id,
            "backend_status": self.backend_status,
            "attempts": self.attempts,
            "retry_at": self.retry_at,
            "error": self.error,
            "error_kind": self.error_kind,
            "log_path": self.log_path,
            "outputs": None if self.outputs is None else self.outputs.to_json(),
            **{f"{s.value}_at": self.times.get(s) for s in State},
            "updated_at": self.updated_at,
        }
        if self.tile is not None:
            xmin, ymin, xmax, ymax = self.tile.bounds
            values.update(
                epsg=self.tile.epsg,
                xmin=xmin,
                ymin=ymin,
                xmax=xmax,
                ymax=ymax,
                footprint=self.tile.footprint,
                area_km2=self.tile.area_km2,
                props=json.dumps(dict(self.tile.props), sort_keys=True, default=str),
            )
        return values


class _Clock:
    """UTC time as ISO 8601 with microseconds, strictly increasing within the process: two moves in the same
    microsecond are stamped one after the other, so ordering by a state's time is ordering by when it happened
    (the lookup of unanswered submissions relies on it)."""

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            moment = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
            self._last = moment
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


now = _Clock()


class JobStore:
    """A campaign's jobs in SQLite. Open with :meth:`open` (writer) or :meth:`read` (reader)."""

    def __init__(self, path: Path, connection: sqlite3.Connection, lock_fd: int | None) -> None:
        self.path = path
        self._db = connection
        self._lock_fd = lock_fd
        self._within: str | None = None  # "a plan" or "a batch" while one is open: writes join its transaction

    @classmethod
    def open(cls, path: str | Path) -> JobStore:
        """Open (creating if needed) the store for writing; :class:`StoreLocked` if another process writes it."""
        path = Path(path)
        if path.parent and not path.parent.is_dir():
            raise StoreError(f"store {path}: folder {path.parent} does not exist", hint="create it or change `store:`")
        real = path.resolve()  # one file, one lock: whatever symlinks lead to it
        lock_fd = _lock(real, shown=path)
        try:
            if not real.exists():
                _create(real)
            db = sqlite3.connect(real, isolation_level=None, timeout=30.0)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # chosen: see the module's text
            db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")  # a whole globe's plan leaves no GBs of WAL
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
            db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, isolation_level=None, timeout=30.0)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise StoreError(f"store {path}: not a SQLite job store ({err})") from None
        if version != SCHEMA_VERSION:
            hint = (
                "open it once for writing (`ogc-upscaler plan` or `run`) to migrate it"
                if version < SCHEMA_VERSION
                else "open it with the ogc-upscaler version that wrote it"
            )
            raise StoreError(
                f"store {path}: schema version {version}, this ogc-upscaler reads {SCHEMA_VERSION}", hint=hint
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

    def planning(self) -> Planning:
        """A plan written as one transaction, a part at a time: ``with store.planning() as planning: ...``.

        Every write inside (:meth:`put_tiles`, :meth:`insert`, ...) joins it, so a plan refused
        half-way leaves the store as it was; the jobs it names are kept in a temporary table
        (on disk, not in memory), so a whole globe's plan finds the jobs it no longer names.
        """
        self._writer()
        self._alone("a plan")
        return Planning(self)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Moves and notes made inside ``with store.batch():`` commit together at its end, as one transaction.

        A manager records the moves of one pass this way: one commit per pass instead of one per job. Each
        move is still checked (one that does not apply returns False and leaves the others be); an exception
        inside rolls the whole batch back. A submission cannot join a batch: it must be committed before the
        backend is asked, not at the end of the batch (see :meth:`move`).
        """
        self._writer()
        self._alone("a batch")
        with self._transaction():
            self._within = "a batch"
            try:
                yield
            finally:
                self._within = None

    def put_tiles(self, tiles: Iterable[TileRecord]) -> None:
        """Add tiles, or update the ones already known, in one transaction; a tile that is the same as the
        store's is not written again (planning a whole globe again rewrote GBs of unchanged tiles)."""
        self._writer()
        with self._transaction():
            self._db.executemany(_PUT_TILE, (t.row() for t in tiles))

    def insert(self, specs: Iterable[JobSpec]) -> int:
        """Add new jobs in state ``planned`` (or ``no_inputs``), in one transaction; returns how many."""
        self._writer()
        stamp = now()
        columns = ", ".join((*SPEC_COLUMNS, "state", "rank", "planned_at", "updated_at"))
        marks = ", ".join("?" * (len(SPEC_COLUMNS) + 4))
        with self._transaction():
            cursor = self._db.executemany(
                f"INSERT INTO jobs ({columns}) VALUES ({marks})",
                ((*s.row(), s.state.value, s.rank, stamp, stamp) for s in specs),
            )
        return cursor.rowcount

    def replace_specs(self, specs: Iterable[JobSpec], *, only: Iterable[State] = (State.PLANNED,)) -> int:
        """Re-plan jobs still in one of the ``only`` states: new spec, back to ``planned`` (or ``no_inputs``)
        with no attempts and their history cleared; returns how many were replaced."""
        self._writer()
        stamp = now()
        allowed = sorted({s.value for s in only})
        sets = ", ".join(f"{c} = ?" for c in SPEC_COLUMNS[1:])
        cleared = ", ".join(
            f"{c} = NULL"
            for c in [*sorted(MUTABLE), *(f"{s.value}_at" for s in State if s != State.PLANNED), "notified_at"]
        )
        with self._transaction():
            cursor = self._db.executemany(
                f"UPDATE jobs SET {sets}, {cleared}, state = ?, rank = ?, attempts = 0, planned_at = ?, "
                f"updated_at = ? WHERE job_id = ? AND state IN ({', '.join('?' * len(allowed))})",
                ((*s.row()[1:], s.state.value, s.rank, stamp, stamp, s.job_id, *allowed) for s in specs),
            )
        return cursor.rowcount

    # -- moves --------------------------------------------------------------------------------

    def move(self, job_id: str, move: Move, *, attempt: int | None = None, refund: bool = False, **fields: Any) -> bool:
        """Apply ``move`` to one job if it is in one of the move's source states; True if it moved.

        :attr:`Move.SUBMIT` counts an attempt, and is committed on its own before this returns
        (never in a :meth:`batch`): the backend is asked next. ``attempt``, when given, must match the
        job's attempt count, so a status of an earlier attempt is ignored. ``refund`` gives
        back the attempt (a submission refused for back-pressure). ``fields`` set other
        columns (see :data:`MUTABLE`); ``outputs`` is a :class:`JobOutputs`.
        """
        self._writer()
        if move is Move.SUBMIT and self._within:
            raise StoreError(
                f"job {job_id}: a submission cannot join {self._within}: it must be committed before the backend "
                "is asked, not at the end",
                hint="this is a bug; report it",
            )
        rule = MOVES[move]
        values = self._fields(fields)
        stamp = now()
        sets = ["state = ?", f"{rule.target.value}_at = ?", "updated_at = ?", *(f"{k} = ?" for k in values)]
        if move is Move.SUBMIT:
            sets.append("attempts = attempts + 1")
        elif refund:  # the backend refused for load, not for the job: this attempt does not count
            sets.append("attempts = max(0, attempts - 1)")
        sources = sorted(s.value for s in rule.sources)
        where = f"job_id = ? AND state IN ({', '.join('?' * len(sources))})"
        args: list[Any] = [rule.target.value, stamp, stamp, *values.values(), job_id, *sources]
        if attempt is not None:
            where += " AND attempts = ?"
            args.append(attempt)
        with self._transaction():
            moved = self._db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE {where}", args).rowcount == 1
            if moved and values.get("remote_id"):
                self._remember(job_id, values["remote_id"])
        return moved

    def note(self, job_id: str, *, state: State, **fields: Any) -> bool:
        """Set columns of a job that is still in ``state``, without moving it; True if it was."""
        self._writer()
        values = self._fields(fields)
        sets = ", ".join([*(f"{k} = ?" for k in values), "updated_at = ?"])
        args = [*values.values(), now(), job_id, state.value]
        with self._transaction():
            noted = self._db.execute(f"UPDATE jobs SET {sets} WHERE job_id = ? AND state = ?", args).rowcount == 1
            if noted and values.get("remote_id"):
                self._remember(job_id, values["remote_id"])
        return noted

    def requeue(self, states: Iterable[State], *, job_ids: Iterable[str] | None = None) -> int:
        """Put jobs in ``states`` (failed, cancelled…) back to ``planned`` with fresh attempts (only those
        of ``job_ids``, if given); how many."""
        self._writer()
        chosen = sorted({s.value for s in states})
        if State.IN_DOUBT.value in chosen:
            raise ValueError("jobs in doubt may have run: give them back with resubmit_in_doubt, not requeue")
        cleared = ", ".join(f"{c} = NULL" for c in sorted(MUTABLE - {"log_path"}))
        sql = (
            f"UPDATE jobs SET state = 'planned', attempts = 0, {cleared}, notified_at = NULL, planned_at = ?, "
            f"updated_at = ? WHERE state IN ({', '.join('?' * len(chosen))})"
        )
        stamp = now()
        with self._transaction():
            if job_ids is None:
                return self._db.execute(sql, [stamp, stamp, *chosen]).rowcount
            sql += " AND job_id = ?"
            return sum(self._db.execute(sql, [stamp, stamp, *chosen, job_id]).rowcount for job_id in job_ids)

    def resubmit_in_doubt(self) -> int:
        """Jobs in doubt become waiting, due now, keeping their attempts: the next run submits them again
        (the person asking accepts that a job may then run twice); how many."""
        self._writer()
        stamp = now()
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE jobs SET state = 'waiting', waiting_at = ?, retry_at = ?, remote_id = NULL,"
                " error_kind = 'doubt:resubmitted', updated_at = ? WHERE state = 'in_doubt'",
                (stamp, stamp, stamp),
            )
        return cursor.rowcount

    # -- reading ------------------------------------------------------------------------------

    def due(self, limit: int, at: str) -> list[Job]:
        """Up to ``limit`` jobs to submit now, by rank then plan order: planned ones and waiting ones whose
        back-off ended."""
        if limit <= 0:
            return []
        columns = ", ".join(JOB_COLUMNS)
        cursor = self._db.execute(
            f"SELECT {columns} FROM ("
            f" SELECT * FROM (SELECT * FROM jobs WHERE state = 'planned' ORDER BY rank, seq LIMIT ?)"
            f" UNION ALL"
            f" SELECT * FROM (SELECT * FROM jobs WHERE state = 'waiting' AND retry_at <= ? ORDER BY rank, seq LIMIT ?)"
            ") ORDER BY rank, seq LIMIT ?",
            (limit, at, limit, limit),
        )
        return [_job(row) for row in cursor.fetchall()]

    def unnotified(self, limit: int = 1000) -> list[Job]:
        """Up to ``limit`` jobs that ended (collected or failed) and whose end was not yet told, with their
        tiles, in plan order (see :meth:`mark_notified`)."""
        cursor = self._db.execute(
            f"SELECT {_JOINED} FROM jobs JOIN tiles USING (tile_id) WHERE notified_at IS NULL "
            "AND state IN ('collected', 'failed') ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [_job(row, with_tile=True) for row in cursor.fetchall()]

    def mark_notified(self, job_id: str) -> bool:
        """Record that a job's end is being told, once: True for the one caller that marks it first."""
        self._writer()
        cursor = self._db.execute(
            "UPDATE jobs SET notified_at = ? WHERE job_id = ? AND notified_at IS NULL "
            "AND state IN ('collected', 'failed')",
            (now(), job_id),
        )
        return cursor.rowcount == 1

    def next_retry(self) -> str | None:
        """The earliest end of a back-off among waiting jobs, or None."""
        return self._db.execute("SELECT min(retry_at) FROM jobs WHERE state = 'waiting'").fetchone()[0]

    def active(self) -> list[Job]:
        """Jobs submitted or running, in plan order."""
        return list(self.jobs(*ACTIVE))

    def counts(self) -> list[tuple[str, str | None, int]]:
        """Jobs per (state, backend)."""
        return list(self._db.execute("SELECT state, backend, count(*) FROM jobs GROUP BY state, backend"))

    def counts_per_window(self) -> list[tuple[str, str, str, int]]:
        """Jobs per (window start, window end, state), in window order."""
        return list(
            self._db.execute(
                "SELECT window_start, window_end, state, count(*) FROM jobs GROUP BY window_start, window_end, state"
                " ORDER BY window_start, window_end"
            )
        )

    def tile_states(self, window_start: str | None = None, window_end: str | None = None) -> list[tuple[str, str]]:
        """``(tile id, state)`` of every job (of the window from ``window_start`` to ``window_end``, if given)."""
        if window_start is None:
            return list(self._db.execute("SELECT tile_id, state FROM jobs"))
        return list(
            self._db.execute(
                "SELECT tile_id, state FROM jobs WHERE window_start = ? AND window_end = ?", (window_start, window_end)
            )
        )

    def tile_jobs(self, tile_id: str) -> list[Job]:
        """The jobs of one tile, in plan order."""
        cursor = self._db.execute(
            f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE tile_id = ? ORDER BY seq", (tile_id,)
        )
        return [_job(row) for row in cursor.fetchall()]

    def finished_since(self, since: str) -> tuple[int, str | None]:
        """How many jobs were collected or failed since ``since`` (an ISO timestamp), and when the first did."""
        n, first = self._db.execute(
            "SELECT count(*), min(coalesce(collected_at, failed_at)) FROM jobs"
            " WHERE collected_at >= ?1 OR (state = 'failed' AND failed_at >= ?1)",
            (since,),
        ).fetchone()
        return n, first

    def count(self) -> int:
        """The number of jobs."""
        return self._db.execute("SELECT count(*) FROM jobs").fetchone()[0]

    def get(self, job_id: str) -> Job | None:
        """One job with its tile, or None."""
        cursor = self._db.execute(f"SELECT {_JOINED} FROM jobs JOIN tiles USING (tile_id) WHERE job_id = ?", (job_id,))
        row = cursor.fetchone()
        return None if row is None else _job(row, with_tile=True)

    def jobs(self, *states: State, with_tile: bool = False) -> Iterator[Job]:
        """Jobs in plan order (only those in ``states``, if given), streamed: memory stays flat."""
        if with_tile:
            sql = f"SELECT {_JOINED} FROM jobs JOIN tiles USING (tile_id)"
        else:
            sql = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"
        args: tuple[str, ...] = ()
        if states:
            args = tuple(sorted({s.value for s in states}))
            sql += f" WHERE state IN ({', '.join('?' * len(args))})"
        cursor = self._db.execute(sql + " ORDER BY seq", args)
        while batch := cursor.fetchmany(1000):
            for row in batch:
                yield _job(row, with_tile=with_tile)

    def tiles(self) -> Iterator[TileRecord]:
        """Every tile, in id order."""
        cursor = self._db.execute(f"SELECT {', '.join(TILE_COLUMNS)} FROM tiles ORDER BY tile_id")
        while batch := cursor.fetchmany(1000):
            for t in batch:
                yield TileRecord(t[0], t[1], (t[2], t[3], t[4], t[5]), t[6], t[7], json.loads(t[8]))

    def tile(self, tile_id: str) -> TileRecord | None:
        """One tile, or None."""
        t = self._db.execute(f"SELECT {', '.join(TILE_COLUMNS)} FROM tiles WHERE tile_id = ?", (tile_id,)).fetchone()
        return None if t is None else TileRecord(t[0], t[1], (t[2], t[3], t[4], t[5]), t[6], t[7], json.loads(t[8]))

    def knows_remote(self, remote_id: str) -> bool:
        """Whether any attempt of any job of the store ever held this remote id."""
        return self._db.execute("SELECT 1 FROM remotes WHERE remote_id = ?", (remote_id,)).fetchone() is not None

    def submitted_since(self, backend: str, since: str) -> list[Job]:
        """The jobs last submitted to ``backend`` since ``since``, in the order they were submitted (answered
        ones with their remote id), so a backend can place an unanswered submission among them."""
        cursor = self._db.execute(
            f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE backend = ? AND submitted_at >= ?"
            " ORDER BY submitted_at, seq",
            (backend, since),
        )
        return [_job(row) for row in cursor.fetchall()]

    def check(self) -> str:
        """SQLite's integrity check: ``"ok"`` for an intact store."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    # -- internals ----------------------------------------------------------------------------

    def _remember(self, job_id: str, remote_id: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO remotes (remote_id, job_id, attempt) SELECT ?, job_id, attempts FROM jobs"
            " WHERE job_id = ?",
            (remote_id, job_id),
        )

    def _writer(self) -> None:
        if self._lock_fd is None:
            raise StoreError(f"store {self.path} was opened read-only", hint="open it with JobStore.open to write")

    def _fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - MUTABLE
        if unknown:
            raise ValueError(f"a move cannot set {sorted(unknown)}; settable: {sorted(MUTABLE)}")
        if isinstance(fields.get("outputs"), JobOutputs):
            fields = {**fields, "outputs": fields["outputs"].to_json()}
        return fields

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, nested=self._within is not None)

    def _alone(self, what: str) -> None:
        if self._within:
            raise StoreError(
                f"store {self.path}: {what} cannot begin inside {self._within}", hint="this is a bug; report it"
            )

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise StoreError(
                    f"store {self.path}: a SQLite database that is not a job store",
                    hint="give a new file name for the store",
                )
            self._db.executescript(_SCHEMA)  # one transaction: a crash leaves an empty file, never half a schema
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path}: schema version {version} is newer than this ogc-upscaler's ({SCHEMA_VERSION})",
                hint="upgrade ogc-upscaler",
            )
        for step in range(version, SCHEMA_VERSION):
            self._db.executescript(_MIGRATIONS[step])


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on error; ``nested``, a savepoint of the open plan's or
    batch's transaction."""

    def __init__(self, db: sqlite3.Connection, *, nested: bool = False) -> None:
        self._db = db
        self._nested = nested

    def __enter__(self) -> None:
        self._db.execute("SAVEPOINT part" if self._nested else "BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        if not self._db.in_transaction:  # SQLite rolled back by itself (disk full, I/O error): the error says why
            return
        if not self._nested:
            self._db.execute("ROLLBACK" if kind else "COMMIT")
            return
        if kind:
            self._db.execute("ROLLBACK TO part")
        self._db.execute("RELEASE part")


class Planned(NamedTuple):
    """A job the store holds, as planning compares it with the plan."""

    spec_hash: str
    state: State
    rank: float


class Planning:
    """One plan being written (see :meth:`JobStore.planning`): the jobs it names, and those it no longer does."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._db = store._db
        self._outer = _Transaction(self._db)

    def __enter__(self) -> Planning:
        self._outer.__enter__()
        try:
            self._db.execute("CREATE TEMP TABLE planned_ids (job_id TEXT PRIMARY KEY) WITHOUT ROWID")
        except BaseException as err:
            self._outer.__exit__(type(err), err, None)
            raise
        self._store._within = "a plan"
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        self._store._within = None
        try:
            if self._db.in_transaction:
                self._db.execute("DROP TABLE temp.planned_ids")  # with the transaction: rolled back, it is gone too
        finally:
            self._outer.__exit__(kind, *rest)

    def note_and_find(self, job_ids: list[str]) -> dict[str, Planned]:
        """Note ``job_ids`` as part of the plan, and find those the store holds already (spec hash, state, rank)."""
        ids = json.dumps(job_ids)
        self._db.execute("INSERT OR IGNORE INTO temp.planned_ids SELECT value FROM json_each(?)", (ids,))
        cursor = self._db.execute(
            "SELECT job_id, spec_hash, state, rank FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))", (ids,)
        )
        return {j: Planned(h, State(s), r) for j, h, s, r in cursor}

    def rerank(self, ranks: Iterable[tuple[str, float]], *, only: Iterable[State]) -> int:
        """Give jobs still in one of the ``only`` states a new rank (a changed ``priority``); returns how many."""
        allowed = sorted({s.value for s in only})
        cursor = self._db.executemany(
            f"UPDATE jobs SET rank = ? WHERE job_id = ? AND state IN ({', '.join('?' * len(allowed))})",
            ((rank, job_id, *allowed) for job_id, rank in ranks),
        )
        return cursor.rowcount

    def unnamed(self) -> int:
        """How many jobs of the store the plan has not named."""
        return self._db.execute(
            "SELECT count(*) FROM jobs WHERE job_id NOT IN (SELECT job_id FROM temp.planned_ids)"
        ).fetchone()[0]

    def drop_unnamed(self, *, only_state: State = State.PLANNED) -> int:
        """Remove the jobs the plan has not named that are still in ``only_state``; returns how many."""
        cursor = self._db.execute(
            "DELETE FROM jobs WHERE state = ? AND job_id NOT IN (SELECT job_id FROM temp.planned_ids)",
            (only_state.value,),
        )
        return cursor.rowcount


_JOINED = ", ".join((*JOB_COLUMNS, *TILE_COLUMNS[1:]))
_PUT_TILE = (
    f"INSERT INTO tiles ({', '.join(TILE_COLUMNS)}) VALUES ({', '.join('?' * len(TILE_COLUMNS))}) "
    f"ON CONFLICT (tile_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in TILE_COLUMNS[1:])} "
    f"WHERE {' OR '.join(f'{c} IS NOT excluded.{c}' for c in TILE_COLUMNS[1:])}"
)
_TIMES = [(i, s) for i, s in enumerate(State, start=JOB_COLUMNS.index("planned_at"))]
_N = len(JOB_COLUMNS)


def _job(row: tuple[Any, ...], *, with_tile: bool = False) -> Job:
    tile = None
    if with_tile:
        t = row[_N:]
        tile = TileRecord(row[2], t[0], (t[1], t[2], t[3], t[4]), t[5], t[6], json.loads(t[7]))
    return Job(
        seq=row[0],
        job_id=row[1],
        tile_id=row[2],
        window_start=row[3],
        window_end=row[4],
        params_name=row[5],
        params=json.loads(row[6]),
        inputs=json.loads(row[7]),
        spec_hash=row[8],
        state=State(row[9]),
        backend=row[10],
        remote_id=row[11],
        backend_status=row[12],
        attempts=row[13],
        retry_at=row[14],
        error=row[15],
        error_kind=row[16],
        log_path=row[17],
        outputs=JobOutputs.from_json(row[18]),
        times={s: row[i] for i, s in _TIMES if row[i] is not None},
        updated_at=row[_N - 1],
        tile=tile,
    )


def _create(path: Path) -> None:
    """A new store at ``path`` with its schema, written aside and renamed into place (under the writer lock):
    a reader never finds a store file without its schema, a crash leaves at most a stray ``.new`` file."""
    aside = path.with_name(f".{path.name}.new")
    aside.unlink(missing_ok=True)
    db = sqlite3.connect(aside, isolation_level=None)
    try:
        db.executescript(_SCHEMA)
    finally:
        db.close()
    aside.replace(path)


def _lock(path: Path, *, shown: Path) -> int:
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StoreLocked(
            f"store {shown} is being written by {holder}",
            hint="wait for that run to end or stop it; read-only commands (status, export) work meanwhile",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
    return fd


def writer_pid(path: Path, recorded: tuple[int, str] | EllipsisType | None = ...) -> int | None:
    """The pid of the process on this host that holds the store's writer lock now (from the kernel's lock
    table, ``/proc/locks``, without taking the lock), or None when the table shows no such lock;
    ``recorded`` is what :func:`lock_holder` says, when the caller read it already.

    The table names a file by device and inode. Where ``stat`` reports another device than the table
    (btrfs subvolumes, some overlayfs), a lock on the same inode held by the pid the lock file records
    is taken as the store's too.
    """
    lock = path.resolve().with_name(path.resolve().name + ".lock")
    try:
        stat = os.stat(lock)
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    if recorded is ...:
        recorded = lock_holder(path)
    file_id = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    for line in table.splitlines():
        words = line.split()  # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (a waiter's has "->" second)
        if len(words) < 6 or words[1] != "FLOCK" or words[3] != "WRITE":
            continue
        pid = int(words[4])
        if words[5] == file_id or (words[5].endswith(f":{stat.st_ino}") and recorded and recorded[0] == pid):
            return pid
    return None


def alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_holder(path: Path) -> tuple[int, str] | None:
    """The pid and host recorded by the process holding (or that last held) the store's writer lock."""
    try:
        words = path.resolve().with_name(path.resolve().name + ".lock").read_text().split()
    except OSError:
        return None
    if len(words) == 4 and words[0] == "pid" and words[1].isdigit() and words[2] == "on":
        return int(words[1]), words[3]
    return None
