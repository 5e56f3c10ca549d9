"""What the watch page shows, read from a campaign's store alongside the manager that writes it.

Each answer is computed once per change of the store (its files' sizes and times) and kept until
the next change, so a page polling every two seconds costs the store nothing while nothing moves.
Tiles are numbered by their place in the store's id order; the page draws them from one binary
answer (:meth:`StoreView.geometry`) and colours them from another, one byte per tile
(:meth:`StoreView.states`).
"""

from __future__ import annotations

import dataclasses
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ogc_upscaler.causes import job_cause
from ogc_upscaler.control import Requests
from ogc_upscaler.errors import InvalidInput
from ogc_upscaler.states import TERMINAL, State
from ogc_upscaler.status import Attachment
from ogc_upscaler.store import Job, JobStore
from ogc_upscaler.tile_states import COLOURS, ORDER, per_tile

#: The first four bytes of the geometry answer, so the page knows it reads the right thing.
MAGIC = 0x57415443
#: Completions over this many seconds give the rate and the time left.
RATE_WINDOW_S = 600.0
#: Most of a log sent to the page (its end).
LOG_TAIL = 64 * 1024
#: Footprints are simplified for the map within this many degrees (about 10 m): a UTM tile's densified
#: edges are straight at any zoom a person uses, and each point saved is one the browser does not fill.
SIMPLIFY_DEG = 1e-4
#: Failures are grouped again at most this often (seconds): grouping 30,000 failed jobs takes seconds.
FAILURES_FRESH_S = 5.0
#: Job ids listed with each cause of failure.
CAUSE_JOBS = 20

T = TypeVar("T")


@dataclass(frozen=True)
class CauseGroup:
    """Failed jobs that share a cause: the cause, how many, one job's own error, and the first jobs."""

    cause: str
    count: int
    example: str
    job_ids: tuple[str, ...]


@dataclass(frozen=True)
class Summary:
    """Counts, rate, time left, the manager's attachment and whether submissions are paused."""

    campaign: str
    version: str
    counts: dict[str, int]
    per_window: dict[str, dict[str, int]]  # by window, as ``START/END``
    windows: list[tuple[str, str]]
    per_backend: dict[str, dict[str, int]]
    total: int
    done: int
    rate_per_hour: float | None
    seconds_left: float | None
    attachment: Attachment
    paused: bool
    states: tuple[str, ...] = ORDER
    colours: dict[str, str] = field(default_factory=lambda: dict(COLOURS))


@dataclass(frozen=True)
class TileJob:
    """One job of a tile as the page lists it."""

    job_id: str
    window: str
    params: str
    state: str
    attempts: int
    backend: str | None
    error: str | None
    cause: str | None
    has_log: bool


class StoreView:
    """The watch page's reading of one store."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.requests = Requests(store)
        self._cache: dict[str, tuple[Any, Any, float]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # -- reading, once per change ----------------------------------------------------------------

    def version(self) -> str:
        """A name of the store's current content: it changes with every commit of the manager."""
        parts = []
        for path in (self.store, Path(f"{self.store}-wal")):
            try:
                st = path.stat()
                parts.append(f"{st.st_mtime_ns:x}.{st.st_size:x}")
            except FileNotFoundError:
                parts.append("-")
        return "-".join(parts)

    def _kept(self, name: str, key: Any, make: Callable[[JobStore], T], *, fresh_for: float = 0.0) -> T:
        """The value ``make`` gives for ``key``, made once per key: pages asking meanwhile wait for it and share
        it. Within ``fresh_for`` seconds of the last one, a value made for an older key is good enough."""
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            held = self._cache.get(name)
            if held is not None and (held[0] == key or time.monotonic() - held[2] < fresh_for):
                return held[1]
            with JobStore.read(self.store) as store:
                value = make(store)
            self._cache[name] = (key, value, time.monotonic())
            return value

    def summary(self) -> Summary:
        """The campaign's counts and progress now."""
        version = self.version()
        summary = self._kept("summary", version, lambda s: self._summary(s, version))
        # the manager's attachment, the rate and the time left move with the clock, not only with the store
        now = time.time()
        with JobStore.read(self.store) as store:
            finished, first = store.finished_since(_iso(now - RATE_WINDOW_S))
        rate = finished / max(60.0, now - _epoch(first)) if finished and first is not None else None
        left = (summary.total - summary.done) / rate if rate else None
        return dataclasses.replace(
            summary,
            attachment=Attachment.of(self.store),
            rate_per_hour=rate * 3600 if rate else None,
            seconds_left=left,
        )

    def _summary(self, store: JobStore, version: str) -> Summary:
        counts: Counter[str] = Counter()
        per_backend: dict[str, dict[str, int]] = {}
        for state, backend, n in store.counts():
            counts[state] += n
            if backend is not None:
                per_backend.setdefault(backend, {})[state] = per_backend.get(backend, {}).get(state, 0) + n
        per_window: dict[str, dict[str, int]] = {}
        windows: list[tuple[str, str]] = []
        for start, end, state, n in store.counts_per_window():
            if not windows or windows[-1] != (start, end):
                windows.append((start, end))
            per_window.setdefault(f"{start}/{end}", {})[state] = n
        total = sum(counts.values())
        done = sum(n for s, n in counts.items() if State(s) in TERMINAL or s == State.IN_DOUBT.value)
        return Summary(
            campaign=store.get_meta("campaign") or self.store.stem,
            version=version,
            counts=dict(counts),
            per_window=per_window,
            windows=windows,
            per_backend=per_backend,
            total=total,
            done=done,
            rate_per_hour=None,
            seconds_left=None,
            attachment=Attachment(False, None, None, 0.0),
            paused=bool(store.get_meta("paused")),
        )

    def geometry(self) -> bytes:
        """Every tile's footprint rings in longitude/latitude, as the page reads them.

        Little-endian: ``uint32`` magic, tiles, rings, points; ``uint32`` tile of each ring;
        ``uint32`` first point of each ring (and one past the last); ``float32`` longitude,
        latitude of each point.
        """
        return self._kept("geometry", self._plan_key(), self._geometry)[0]

    def _plan_key(self) -> Any:
        """What names the plan: its tiles change only when it does."""
        return self._kept(
            "plan", self.version(), lambda s: (s.get_meta("fingerprint"), s.get_meta("windows"), s.count())
        )

    def _geometry(self, store: JobStore) -> tuple[bytes, list[str]]:
        import shapely

        ids, wkb = [], []
        for tile in store.tiles():
            ids.append(tile.tile_id)
            wkb.append(tile.footprint)
        footprints = shapely.simplify(shapely.from_wkb(np.array(wkb, dtype=object)), SIMPLIFY_DEG)
        parts, tile_of_part = shapely.get_parts(footprints, return_index=True)
        polygons = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
        rings = shapely.get_exterior_ring(parts[polygons])
        ring_tile = tile_of_part[polygons].astype("<u4")
        coords, ring_of_point = shapely.get_coordinates(rings, return_index=True)
        starts = np.zeros(len(rings) + 1, dtype="<u4")
        starts[1:] = np.cumsum(np.bincount(ring_of_point, minlength=len(rings)))
        header = struct.pack("<4I", MAGIC, len(ids), len(rings), len(coords))
        return header + ring_tile.tobytes() + starts.tobytes() + coords.astype("<f4").tobytes(), ids

    def aoi(self) -> Any:
        """The campaign's area of interest as GeoJSON, as it was planned (None before a plan)."""
        return self._kept("aoi", self._plan_key(), lambda store: store.get_meta("aoi"))

    def tile_ids(self) -> list[str]:
        """Tile ids in the order the page numbers them (those of the tiles :meth:`geometry` gives)."""
        return self._kept("geometry", self._plan_key(), self._geometry)[1]

    def states(self, window: str | None) -> bytes:
        """One byte per tile: 0 if it has no job (in ``window``, ``START/END``, when given), else 1 + its
        state's place in :data:`~ogc_upscaler.tile_states.ORDER`. An unknown window is refused."""
        version = self.version()
        if window and window not in self._kept("summary", version, lambda s: self._summary(s, version)).per_window:
            raise InvalidInput(f"no window {window!r} in this campaign", hint="give START/END of one of its windows")
        ids = self.tile_ids()
        return self._kept(f"states:{window}", (self.version(), id(ids)), lambda s: self._states(s, window, ids))

    @staticmethod
    def _states(store: JobStore, window: str | None, ids: list[str]) -> bytes:
        place = {state: i + 1 for i, state in enumerate(ORDER)}
        index = {tile_id: i for i, tile_id in enumerate(ids)}
        codes = np.zeros(len(ids), dtype=np.uint8)
        start, end = window.split("/", 1) if window else (None, None)
        for tile_id, state in per_tile(store.tile_states(start, end)).items():
            if (i := index.get(tile_id)) is not None:
                codes[i] = place[state]
        return codes.tobytes()

    def failures(self) -> list[CauseGroup]:
        """Failed jobs grouped by cause, most frequent first."""
        return self._kept("failures", self.version(), self._failures, fresh_for=FAILURES_FRESH_S)

    @staticmethod
    def _failures(store: JobStore) -> list[CauseGroup]:
        groups: dict[str, list[Job]] = {}
        counts: Counter[str] = Counter()
        for job in store.jobs(State.FAILED):
            key = job_cause(job)
            counts[key] += 1
            held = groups.setdefault(key, [])
            if len(held) < CAUSE_JOBS:
                held.append(job)
        return [
            CauseGroup(key, n, groups[key][0].error or "", tuple(j.job_id for j in groups[key]))
            for key, n in counts.most_common()
        ]

    # -- one tile, one job -----------------------------------------------------------------------

    def tile(self, index: int) -> tuple[str, dict[str, Any], list[TileJob]] | None:
        """The tile at ``index``: its id, its attributes and its jobs; None past the last tile."""
        ids = self.tile_ids()
        if not 0 <= index < len(ids):
            return None
        with JobStore.read(self.store) as store:
            jobs = store.tile_jobs(ids[index])
            record = store.tile(ids[index])
        props = record.props if record is not None else {}
        listed = [
            TileJob(
                j.job_id,
                f"{j.window_start}/{j.window_end}",
                j.params_name,
                j.state.value,
                j.attempts,
                j.backend,
                j.error,
                job_cause(j) if j.state is State.FAILED else None,
                bool(j.log_path),
            )
            for j in jobs
        ]
        return ids[index], props, listed

    def locate(self, tile_id: str) -> int | None:
        """The page's number of a tile, or None."""
        try:
            return self.tile_ids().index(tile_id)
        except ValueError:
            return None

    def log(self, job_id: str) -> tuple[str, str] | None:
        """The end of a job's log, and its path; None when the store knows no such job."""
        with JobStore.read(self.store) as store:
            job = store.get(job_id)
        if job is None:
            return None
        if not job.log_path:
            return "", "no log recorded for this job yet"
        path = Path(job.log_path)
        try:
            with path.open("rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - LOG_TAIL))
                text = f.read().decode("utf-8", errors="replace")
        except OSError as err:
            return job.log_path, f"the log {path} cannot be read: {err.strerror}"
        if size > LOG_TAIL:
            text = f"… (the last {LOG_TAIL // 1024} KiB of {size:,} bytes)\n" + text.split("\n", 1)[-1]
        return job.log_path, text


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
