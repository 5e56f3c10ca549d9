"""Estimates from finished jobs: runtime per tile and per km², and time left at the configured parallelism."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from ogc_upscaler.store import JobStore, State


@dataclass(frozen=True)
class Estimate:
    """Runtime figures of the finished jobs and what they predict for the rest."""

    finished: int
    remaining: int
    seconds_per_job: float | None
    seconds_per_km2: float | None
    eta_seconds: float | None
    parallel: int

    def summary(self) -> str:
        """A few lines for the terminal."""
        if self.seconds_per_job is None:
            return f"no job has finished yet; {self.remaining:,} to run: run some first, then estimate"
        lines = [
            f"finished: {self.finished:,} jobs, median {self.seconds_per_job:.1f} s per tile"
            + (f", {self.seconds_per_km2 * 1000:.2f} s per 1,000 km²" if self.seconds_per_km2 else ""),
            f"remaining: {self.remaining:,} jobs; at {self.parallel} in parallel about "
            f"{_duration(self.eta_seconds or 0)}",
        ]
        return "\n".join(lines)


def estimate(store: JobStore, parallel: int) -> Estimate:
    """Median runtime (running or submitted → succeeded) of collected jobs; ETA of the jobs still to run."""
    per_job, per_km2 = [], []
    for job in store.jobs(State.SUCCEEDED, State.COLLECTED, with_tile=True):
        ended, began = job.at(State.SUCCEEDED), job.at(State.RUNNING) or job.at(State.SUBMITTED)
        if ended is None or began is None:
            continue
        seconds = (_time(ended) - _time(began)).total_seconds()
        per_job.append(seconds)
        if job.tile is not None and job.tile.area_km2:
            per_km2.append(seconds / job.tile.area_km2)
    counts = {state: n for state, _, n in store.counts()}
    remaining = sum(counts.get(s, 0) for s in ("planned", "waiting", "submitted", "running"))
    if not per_job:
        return Estimate(0, remaining, None, None, None, parallel)
    median = statistics.median(per_job)
    return Estimate(
        len(per_job),
        remaining,
        median,
        statistics.median(per_km2) if per_km2 else None,
        remaining * median / max(1, parallel),
        parallel,
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
