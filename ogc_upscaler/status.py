"""Status of a campaign read from its store: counts per state and backend, and per-tile states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from ogc_upscaler.maps import tile_states
from ogc_upscaler.store import JobStore, State


@dataclass(frozen=True)
class Status:
    """Job counts of a campaign, as plain records."""

    total: int
    by_state: dict[str, int]
    by_backend: list[dict[str, Any]]

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
        return cls(sum(by_state.values()), by_state, by_backend)

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready values."""
        return {"total": self.total, "states": self.by_state, "by_backend": self.by_backend}

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
        return "\n".join(lines)

    @staticmethod
    def tile_states(store: JobStore) -> tuple[np.ndarray, list[str]]:
        """Each tile's footprint and its state (its least advanced job's, failed first)."""
        footprints: dict[str, bytes] = {}
        ids, states = [], []
        for row in store.rows(("tile_id", "state", "footprint")):
            footprints.setdefault(row["tile_id"], row["footprint"])
            ids.append(row["tile_id"])
            states.append(row["state"])
        per_tile = tile_states(ids, states)
        order = list(footprints)
        return shapely.from_wkb(np.array([footprints[t] for t in order], dtype=object)), [per_tile[t] for t in order]
