"""Status of a campaign read from its store: counts per state and backend, and per-tile states."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from ogc_upscaler.durations import duration
from ogc_upscaler.errors import UpscalerError
from ogc_upscaler.store import ACTIVE, JobStore, State, alive, lock_holder, writer_pid
from ogc_upscaler.tile_states import per_tile

RECORD_COLUMNS = (
    "job_id",
    "tile_id",
    "window_start",
    "window_end",
    "params_name",
    "state",
    "backend",
    "remote_id",
    "backend_status",
    "attempts",
    "error",
    "error_kind",
    "log_path",
    "planned_at",
    "submitted_at",
    "running_at",
    "succeeded_at",
    "collected_at",
    "failed_at",
    "in_doubt_at",
    "updated_at",
)


@dataclass(frozen=True)
class Attachment:
    """Whether a manager writes the store now (the kernel's lock table says so, on this host), which one
    wrote it last, and when the store last changed."""

    attached: bool | None  # None: cannot tell (the last writer ran on another host, or is alive unseen)
    pid: int | None
    host: str | None
    changed_at: float  # epoch seconds of the store's last write

    @classmethod
    def of(cls, path: Path) -> Attachment:
        """The manager of the store at ``path``."""
        real = path.resolve()
        last = lock_holder(path)
        now = writer_pid(path, last)
        changed = max((f.stat().st_mtime for f in (real, Path(f"{real}-wal")) if f.exists()), default=0.0)
        if now is not None:
            return cls(True, now, socket.gethostname(), changed)
        if last is None:
            return cls(False, None, None, changed)
        pid, host = last
        if host != socket.gethostname() or alive(pid):  # elsewhere, or alive where the lock table shows nothing
            return cls(None, pid, host, changed)
        return cls(False, pid, host, changed)

    def line(self, active: int) -> str:
        """One line for the terminal; ``active`` is how many jobs the store has submitted or running."""
        ago = duration(time.time() - self.changed_at)
        if self.attached:
            return f"manager: attached (pid {self.pid} on {self.host}); the store changed {ago} ago"
        if self.attached is None:
            return (
                f"manager: cannot tell whether the last one (pid {self.pid} on {self.host}) still writes the store; "
                f"it changed {ago} ago"
            )
        stopped = (
            f"; {active:,} jobs were submitted or running when it stopped: `run` re-attaches them" if active else ""
        )
        return f"manager: none attached; the store changed {ago} ago{stopped}"

    def as_dict(self) -> dict[str, Any]:
        """The manager as JSON-ready values."""
        return {"attached": self.attached, "pid": self.pid, "host": self.host, "changed_at": self.changed_at}


@dataclass(frozen=True)
class Status:
    """Job counts of a campaign, as plain records, and whether a manager is attached."""

    total: int
    by_state: dict[str, int]
    by_backend: list[dict[str, Any]]
    manager: Attachment | None = None

    @classmethod
    def of(cls, store: JobStore) -> Status:
        """Count the store's jobs per state and per (state, backend), in one indexed query."""
        rows = store.counts()
        by_state = {s.value: 0 for s in State}
        for state, _, n in rows:
            by_state[state] = by_state.get(state, 0) + n
        by_backend = [
            {"state": s, "backend": b, "jobs": n} for s, b, n in sorted(rows, key=lambda r: (r[0], r[1] or ""))
        ]
        return cls(sum(by_state.values()), by_state, by_backend, Attachment.of(store.path))

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready values."""
        manager = None if self.manager is None else self.manager.as_dict()
        return {"total": self.total, "states": self.by_state, "by_backend": self.by_backend, "manager": manager}

    def table(self) -> str:
        """A small table for the terminal."""
        width = max(len(s) for s in self.by_state)
        lines = [f"{self.total:,} jobs"]
        for state, n in self.by_state.items():
            if n:
                backends = [
                    f"{r['backend']}: {r['jobs']:,}" for r in self.by_backend if r["state"] == state and r["backend"]
                ]
                extra = f"   ({', '.join(backends)})" if backends else ""
                lines.append(f"  {state:<{width}} {n:>10,}{extra}")
        if self.manager is not None:
            lines.append(self.manager.line(sum(self.by_state.get(s.value, 0) for s in ACTIVE)))
        return "\n".join(lines)

    @staticmethod
    def records(store: JobStore, state: State | None = None) -> list[dict[str, Any]]:
        """One plain record per job (no geometry): ids, window, state, backend, attempts, error, times."""
        jobs = store.jobs(state) if state is not None else store.jobs()
        return [_record(job.columns()) for job in jobs]

    @staticmethod
    def dataframe(store: JobStore, state: State | None = None) -> Any:
        """:meth:`records` as a pandas DataFrame (needs pandas), times parsed as UTC."""
        try:
            import pandas as pd
        except ImportError:
            raise UpscalerError(
                "Status.dataframe needs pandas", hint="pip install pandas, or use Status.records"
            ) from None
        frame = pd.DataFrame.from_records(Status.records(store, state), columns=list(RECORD_COLUMNS))
        for column in (c for c in RECORD_COLUMNS if c.endswith("_at") or c.startswith("window_")):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    @staticmethod
    def tile_states(store: JobStore) -> tuple[np.ndarray, list[str]]:
        """Each tile's footprint and its state (its least advanced job's, failed first)."""
        footprints: dict[str, bytes] = {}
        ids, states = [], []
        for tile in store.tiles():
            footprints[tile.tile_id] = tile.footprint
        for job in store.jobs():
            ids.append(job.tile_id)
            states.append(job.state.value)
        footprints = {t: footprints[t] for t in dict.fromkeys(ids)}  # the tiles that have jobs, in plan order
        shown = per_tile(zip(ids, states, strict=True))
        order = list(footprints)
        return shapely.from_wkb(np.array([footprints[t] for t in order], dtype=object)), [shown[t] for t in order]


def _record(row: dict[str, Any]) -> dict[str, Any]:
    return {column: row[column] for column in RECORD_COLUMNS}
